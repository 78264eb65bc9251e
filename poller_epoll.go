//go:build linux && !quorum_portable

package quorum

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller is the pump's one place to wait. It is an epoll fd of our own,
// made non-blocking and handed to the Go netpoller through os.NewFile, that
// holds an eventfd for wake-ups and, while connected, the backend's fd.
//
// The backend's fd is never wrapped in an os.File: libquorum owns it, and a
// File's finalizer would close it, while a dup would share its O_NONBLOCK flag
// and epoll registrations with the library. Nesting it in our own epoll set
// touches neither. A file deadline on the epoll fd serves as the backoff
// timer, so no timer exists while connected and idle.
type poller struct {
	file   *os.File // owns the epoll fd
	rc     syscall.RawConn
	wakeFd int
	conns  []int // the backend's fds registered, none while disconnected
	events [4]unix.EpollEvent
	dl     time.Time // the deadline currently set on file

	// The state of the wait in progress, and the callback that fills it,
	// made once so that a wait allocates nothing.
	res    waitResult
	werr   error
	readFn func(epfd uintptr) bool
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("quorum: epoll_create1: %w", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("quorum: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &ev); err != nil {
		unix.Close(wfd)
		unix.Close(epfd)
		return nil, fmt.Errorf("quorum: epoll_ctl: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(wfd)
		unix.Close(epfd)
		return nil, fmt.Errorf("quorum: set epoll fd non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(epfd), "quorum-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		unix.Close(wfd)
		return nil, fmt.Errorf("quorum: epoll fd: %w", err)
	}
	p := &poller{file: f, rc: rc, wakeFd: wfd}
	p.readFn = p.check
	return p, nil
}

// check looks, without waiting, for ready fds; it is the callback of the
// netpoller's read loop, which parks until the epoll fd is readable
// whenever check returns false.
func (p *poller) check(epfd uintptr) bool {
	n, err := unix.EpollWait(int(epfd), p.events[:], 0)
	if err == unix.EINTR {
		return false
	}
	if err != nil {
		p.werr = err
		return true
	}
	for _, ev := range p.events[:n] {
		if int(ev.Fd) == p.wakeFd {
			p.res.woken = true
		} else {
			p.res.conn = true
		}
	}
	return n > 0
}

// setConns registers fds (level-triggered: each stays ready until the
// backend has drained it) in place of the previous ones; no fds only
// removes. A descriptor given twice is registered once.
func (p *poller) setConns(fds ...int) error {
	var err error
	cerr := p.rc.Control(func(epfd uintptr) {
		for _, fd := range p.conns {
			// The fd may already be closed by a dying connection; epoll
			// forgets closed fds by itself, so ENOENT/EBADF are fine.
			_ = unix.EpollCtl(int(epfd), unix.EPOLL_CTL_DEL, fd, nil)
		}
		p.conns = p.conns[:0]
		for _, fd := range fds {
			if fd < 0 || slices.Contains(p.conns, fd) {
				continue
			}
			ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
			if err = unix.EpollCtl(int(epfd), unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
				err = fmt.Errorf("quorum: cannot watch the backend's fd %d: %w", fd, err)
				return
			}
			p.conns = append(p.conns, fd)
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// wake makes a wait in progress (or the next one) return. Safe from any
// goroutine; never blocks.
func (p *poller) wake() {
	var one = [8]byte{1}
	// EAGAIN means the counter is already non-zero: a wake-up is pending.
	_, _ = unix.Write(p.wakeFd, one[:])
}

// wait blocks until the backend's fd is ready, wake was called, or the
// deadline (zero for none) passed.
func (p *poller) wait(deadline time.Time) (waitResult, error) {
	var r waitResult
	if !deadline.Equal(p.dl) {
		if err := p.file.SetReadDeadline(deadline); err != nil {
			return r, err
		}
		p.dl = deadline
	}
	p.res, p.werr = waitResult{}, nil
	err := p.rc.Read(p.readFn)
	r = p.res
	if errors.Is(err, os.ErrDeadlineExceeded) {
		r.timedOut = true
		return r, nil
	}
	if err != nil {
		return r, err
	}
	if p.werr != nil {
		return r, fmt.Errorf("quorum: epoll_wait: %w", p.werr)
	}
	if r.woken {
		var buf [8]byte
		_, _ = unix.Read(p.wakeFd, buf[:])
	}
	return r, nil
}

func (p *poller) close() {
	p.file.Close()
	unix.Close(p.wakeFd)
}
