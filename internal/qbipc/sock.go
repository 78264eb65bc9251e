//go:build linux

package qbipc

import (
	"context"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sunPathLen is sizeof(sockaddr_un.sun_path).
const sunPathLen = 108

// abstractAddr is how libqb names a socket in the abstract namespace: a NUL,
// the name (at most 106 bytes, as its snprintf truncates it), and NULs up to
// the full sun_path, so that the address length is sizeof(sockaddr_un) = 110.
// A shorter address names a different socket. x/sys/unix cannot express a
// 110-byte length, hence the raw sockaddr.
func abstractAddr(name string) *unix.RawSockaddrUnix {
	if len(name) > sunPathLen-2 {
		name = name[:sunPathLen-2]
	}
	sa := &unix.RawSockaddrUnix{Family: unix.AF_UNIX}
	for i := 0; i < len(name); i++ {
		sa.Path[1+i] = int8(name[i])
	}
	return sa
}

func connectAbstract(fd int, name string) error {
	sa := abstractAddr(name)
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(sa)), unix.SizeofSockaddrUnix)
	if e != 0 {
		return e
	}
	return nil
}

func bindAbstract(fd int, name string) error {
	sa := abstractAddr(name)
	_, _, e := unix.Syscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(sa)), unix.SizeofSockaddrUnix)
	if e != 0 {
		return e
	}
	return nil
}

// pollSlice bounds each sleep while waiting on a socket so that a context
// that ends is noticed promptly even though poll(2) knows nothing of it.
const pollSlice = 50 * time.Millisecond

// waitFd waits until fd reports one of events (or a hang-up or error, which
// the following read or write will surface), or ctx ends.
func waitFd(ctx context.Context, fd int, events int16) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := pollSlice
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < d {
				d = left
			}
		}
		ms := int(d / time.Millisecond)
		if ms < 1 {
			ms = 1
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(pfd, ms)
		if err != nil && err != unix.EINTR {
			return err
		}
		if n > 0 && pfd[0].Revents != 0 {
			return nil
		}
	}
}

// hungUp reports whether the peer of a stream socket has closed it, without
// consuming anything queued on it.
func hungUp(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(pfd, 0)
	if err != nil {
		return err != unix.EINTR
	}
	return n > 0 && pfd[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
}

// sendAll writes b to a non-blocking stream socket, waiting as needed.
func sendAll(ctx context.Context, fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.SendmsgN(fd, b, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		switch {
		case err == unix.EAGAIN:
			if err := waitFd(ctx, fd, unix.POLLOUT); err != nil {
				return err
			}
		case err == unix.EINTR:
		case err != nil:
			return err
		default:
			b = b[n:]
		}
	}
	return nil
}
