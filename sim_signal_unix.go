//go:build unix && !linux

package quorum

import (
	"github.com/corosync-go/quorum/internal/cs"
	"golang.org/x/sys/unix"
)

// simSignal is a simulated connection's descriptor: readable while
// notifications are queued or the connection is lost. Without eventfd, the
// read end of a non-blocking pipe.
type simSignal struct{ r, w int }

func newSimSignal() (simSignal, error) {
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		return simSignal{}, newError("quorum_initialize", cs.ErrNoResources, err)
	}
	for _, fd := range p {
		unix.CloseOnExec(fd)
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(p[0])
			unix.Close(p[1])
			return simSignal{}, newError("quorum_initialize", cs.ErrNoResources, err)
		}
	}
	return simSignal{p[0], p[1]}, nil
}

func (s simSignal) fd() int { return s.r }

func (s simSignal) raise() { _, _ = unix.Write(s.w, []byte{1}) }

func (s simSignal) clear() {
	var buf [64]byte
	for {
		if n, _ := unix.Read(s.r, buf[:]); n <= 0 {
			return
		}
	}
}

func (s simSignal) close() error {
	unix.Close(s.w)
	return unix.Close(s.r)
}
