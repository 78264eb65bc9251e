//go:build (unix && !linux) || (linux && quorum_portable)

package quorum

import (
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// poller waits with poll(2) on the backend's fd and on the read end of a
// pipe that wake writes to. The wait holds the pump's thread in the system
// call (the netpoller is not involved), which costs an OS thread per Client
// but no wake-up while idle.
type poller struct {
	wakeR, wakeW int           // the pipe; wake writes a byte, wait drains it
	conns        []int         // the backend's fds, none while disconnected
	fds          []unix.PollFd // wait's, kept to reuse its array
}

func newPoller() (*poller, error) {
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		return nil, fmt.Errorf("quorum: pipe: %w", err)
	}
	for _, fd := range p {
		unix.CloseOnExec(fd)
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(p[0])
			unix.Close(p[1])
			return nil, fmt.Errorf("quorum: pipe: %w", err)
		}
	}
	return &poller{wakeR: p[0], wakeW: p[1]}, nil
}

func (p *poller) setConns(fds ...int) error {
	p.conns = p.conns[:0]
	for _, fd := range fds {
		if fd >= 0 && !slices.Contains(p.conns, fd) {
			p.conns = append(p.conns, fd)
		}
	}
	return nil
}

func (p *poller) wake() {
	// EAGAIN means the pipe is full: a wake-up is pending anyway.
	_, _ = unix.Write(p.wakeW, []byte{1})
}

func (p *poller) wait(deadline time.Time) (waitResult, error) {
	var r waitResult
	for {
		timeout := -1
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				r.timedOut = true
				return r, nil
			}
			timeout = int((d + time.Millisecond - 1) / time.Millisecond)
		}
		fds := append(p.fds[:0], unix.PollFd{Fd: int32(p.wakeR), Events: unix.POLLIN})
		for _, fd := range p.conns {
			fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		}
		p.fds = fds
		n, err := unix.Poll(fds, timeout)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return r, fmt.Errorf("quorum: poll: %w", err)
		}
		if n == 0 {
			continue // the deadline is checked above
		}
		if fds[0].Revents != 0 {
			r.woken = true
			var buf [64]byte
			for {
				if k, _ := unix.Read(p.wakeR, buf[:]); k <= 0 {
					break
				}
			}
		}
		for _, fd := range fds[1:] {
			if fd.Revents != 0 {
				r.conn = true
			}
		}
		return r, nil
	}
}

func (p *poller) close() {
	unix.Close(p.wakeR)
	unix.Close(p.wakeW)
}
