//go:build linux

package quorum

import (
	"github.com/corosync-go/quorum/internal/cs"
	"golang.org/x/sys/unix"
)

// simSignal is a simulated connection's descriptor: readable while
// notifications are queued or the connection is lost. On Linux, an eventfd.
type simSignal struct{ efd int }

func newSimSignal() (simSignal, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return simSignal{}, newError("quorum_initialize", cs.ErrNoResources, err)
	}
	return simSignal{efd}, nil
}

func (s simSignal) fd() int { return s.efd }

func (s simSignal) raise() {
	one := [8]byte{1}
	_, _ = unix.Write(s.efd, one[:])
}

func (s simSignal) clear() {
	var buf [8]byte
	_, _ = unix.Read(s.efd, buf[:])
}

func (s simSignal) close() error { return unix.Close(s.efd) }
