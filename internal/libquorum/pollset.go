//go:build libquorum && cgo && linux

package libquorum

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/corosync-go/quorum/internal/cs"
)

// pollSet builds, for libqb's socket IPC mode, the descriptor a connection
// hands out instead of its library's: an epoll set of the event datagram
// socket and of the setup stream socket, so that it turns readable on events
// and on the server's exit alike (a datagram socket sees no hang-up). The
// caller owns the set and closes it after the library's finalize. op names
// the initialize the errors are reported for.
func pollSet(op string, event, setup int) (int, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return -1, &cs.Error{Op: op, Code: cs.ErrLibrary, Err: fmt.Errorf("epoll_create1: %w", err)}
	}
	for _, m := range []struct {
		fd     int
		events uint32
	}{{event, unix.EPOLLIN}, {setup, unix.EPOLLRDHUP}} {
		ev := unix.EpollEvent{Events: m.events, Fd: int32(m.fd)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, m.fd, &ev); err != nil {
			unix.Close(ep)
			return -1, &cs.Error{Op: op, Code: cs.ErrLibrary, Err: fmt.Errorf("epoll_ctl: %w", err)}
		}
	}
	return ep, nil
}
