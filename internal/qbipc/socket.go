//go:build linux

package qbipc

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The SOCKET transport's control file holds one struct ipc_us_control
// {int32 sent; int32 flow_control} per direction.
const (
	ctlRequest  = 0
	ctlResponse = 8
	ctlEvent    = 16
	ctlSize     = 24
)

// sockTransport is QB_IPC_SOCKET: one datagram per message on two unix
// datagram sockets (requests and responses share one), with counters in a
// small shared control file.
type sockTransport struct {
	ctl      []byte
	ctlPath  string
	reqSock  int // bound to <base>-response, connected to <base>-request
	evSock   int // bound to <base>-event, connected to <base>-event-tx
	wakeFd   int // eventfd that interrupts waitResponse
	epollFd  int // what pollFd returns: evSock and the setup socket
	maxMsg   uint32
	evMu     sync.Mutex
	closeOne sync.Once
}

func openSocket(setup int, r connResponse, maxMsg uint32, dir string) (t *sockTransport, err error) {
	// The control file is a file; the socket base only names abstract
	// sockets, relative (libqb up to 1.0.3) or not.
	ctlPath, err := shmPath(r.Request, dir)
	if err != nil {
		return nil, err
	}
	t = &sockTransport{reqSock: -1, evSock: -1, wakeFd: -1, epollFd: -1, maxMsg: maxMsg}
	defer func() {
		if err != nil {
			t.close()
			t = nil
		}
	}()
	t.ctlPath = ctlPath
	if t.ctl, err = mapFile(ctlPath, ctlSize, ctlSize); err != nil {
		return t, fmt.Errorf("control file: %w", err)
	}
	if t.reqSock, err = dgramConnect(r.Response+"-response", r.Response+"-request", maxMsg); err != nil {
		return t, fmt.Errorf("request socket: %w", err)
	}
	if t.evSock, err = dgramConnect(r.Response+"-event", r.Response+"-event-tx", maxMsg); err != nil {
		return t, fmt.Errorf("event socket: %w", err)
	}
	if t.wakeFd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return t, fmt.Errorf("eventfd: %w", err)
	}
	// The event socket alone does not report the server's death: a
	// datagram socket is not told when its peer closes. So callers wait on
	// an epoll set that adds the setup socket's hang-up.
	if t.epollFd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return t, fmt.Errorf("epoll: %w", err)
	}
	if err = unix.EpollCtl(t.epollFd, unix.EPOLL_CTL_ADD, t.evSock,
		&unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(t.evSock)}); err != nil {
		return t, fmt.Errorf("epoll: %w", err)
	}
	if err = unix.EpollCtl(t.epollFd, unix.EPOLL_CTL_ADD, setup,
		&unix.EpollEvent{Events: unix.EPOLLRDHUP, Fd: int32(setup)}); err != nil {
		return t, fmt.Errorf("epoll: %w", err)
	}
	return t, nil
}

// dgramConnect makes a datagram socket bound to local and connected to
// remote, both abstract names, sized for maxMsg messages.
func dgramConnect(local, remote string, maxMsg uint32) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := bindAbstract(fd, local); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", local, err)
	}
	if err := connectAbstract(fd, remote); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect %s: %w", remote, err)
	}
	// As libqb does; the kernel caps the sizes, which is fine.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, int(maxMsg))
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, int(maxMsg))
	return fd, nil
}

func (t *sockTransport) counter(off int) *int32 { return (*int32)(unsafe.Pointer(&t.ctl[off])) }

func (t *sockTransport) send(msg []byte) (err error) {
	defer unguard(&err, faultGuard())
	if fc := atomic.LoadInt32(t.counter(ctlRequest + 4)); fc > 0 && fc <= fcEnableMax {
		return errAgain
	}
	for {
		err = unix.Sendto(t.reqSock, msg, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, nil)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.EAGAIN || err == unix.ENOBUFS {
		return errAgain
	}
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	atomic.AddInt32(t.counter(ctlRequest), 1)
	return nil
}

// recv takes one datagram without waiting. A datagram too large for the
// agreed maximum or shorter than a header is consumed and reported.
func (t *sockTransport) recv(fd, ctlOff int) (msg []byte, ok bool, err error) {
	defer unguard(&err, faultGuard())
	return t.recvUnguarded(fd, ctlOff)
}

// recvUnguarded is recv for callers that guard against faults themselves.
func (t *sockTransport) recvUnguarded(fd, ctlOff int) (msg []byte, ok bool, err error) {
	var peek [ResponseHeaderSize]byte
	n, err := recvRaw(fd, peek[:], unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT)
	if err == unix.EAGAIN {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("recv: %w", err)
	}
	if n < ResponseHeaderSize || uint64(n) > uint64(t.maxMsg) {
		_, _ = recvRaw(fd, peek[:], unix.MSG_DONTWAIT)
		return nil, false, fmt.Errorf("%w: datagram of %d bytes", errMalformed, n)
	}
	// qb_ipc_us_recv_at_most reads hdr.size bytes; a datagram is one
	// message, so the two must agree.
	if size := int32(binary.NativeEndian.Uint32(peek[8:])); int64(size) != int64(n) {
		_, _ = recvRaw(fd, peek[:], unix.MSG_DONTWAIT)
		return nil, false, fmt.Errorf("%w: datagram of %d bytes has header size %d", errMalformed, n, size)
	}
	msg = make([]byte, n)
	m, err := recvRaw(fd, msg, unix.MSG_DONTWAIT)
	if err != nil {
		return nil, false, fmt.Errorf("recv: %w", err)
	}
	if m != n {
		return nil, false, fmt.Errorf("%w: datagram shrank from %d to %d bytes", errMalformed, n, m)
	}
	atomic.AddInt32(t.counter(ctlOff), -1)
	return msg, true, nil
}

// recvRaw is recv(2), retried on EINTR. x/sys's Recvfrom asks for the
// sender's address and makes its buffers escape, which allocates on every
// look, including the many that find nothing while a response is awaited.
func recvRaw(fd int, p []byte, flags int) (int, error) {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))),
			uintptr(len(p)), uintptr(flags), 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}

func (t *sockTransport) waitResponse(d time.Duration) ([]byte, bool, error) {
	msg, ok, err := t.recv(t.reqSock, ctlResponse)
	if ok || err != nil || d <= 0 {
		return msg, ok, err
	}
	pfd := []unix.PollFd{{Fd: int32(t.reqSock), Events: unix.POLLIN}, {Fd: int32(t.wakeFd), Events: unix.POLLIN}}
	if _, err := unix.Poll(pfd, int(d/time.Millisecond)); err != nil && err != unix.EINTR {
		return nil, false, err
	}
	if pfd[1].Revents != 0 {
		return nil, false, nil
	}
	return t.recv(t.reqSock, ctlResponse)
}

// spinResponse retries a non-blocking receive until deadline. Each look is
// a system call, but still cheaper than poll's sleep and wake-up and, for a
// caller that may leave, a hand-off to a waiting goroutine.
func (t *sockTransport) spinResponse(deadline time.Time) (msg []byte, ok bool, err error) {
	defer unguard(&err, faultGuard())
	for {
		msg, ok, err = t.recvUnguarded(t.reqSock, ctlResponse)
		if ok || err != nil || !time.Now().Before(deadline) {
			return msg, ok, err
		}
	}
}

// poke has nothing to do: datagrams need no doorbell.
func (t *sockTransport) poke() error { return nil }

func (t *sockTransport) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(t.wakeFd, one[:])
}

func (t *sockTransport) readEvent() ([]byte, bool, error) {
	t.evMu.Lock()
	defer t.evMu.Unlock()
	return t.recv(t.evSock, ctlEvent)
}

func (t *sockTransport) pollFd() int { return t.epollFd }

// close releases the sockets and the mapping. The control file has no
// reference count: the server removes it, or Close does once the server
// died.
func (t *sockTransport) close() []string {
	t.closeOne.Do(func() {
		for _, fd := range []int{t.epollFd, t.reqSock, t.evSock, t.wakeFd} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
		if t.ctl != nil {
			_ = unix.Munmap(t.ctl)
			t.ctl = nil
		}
	})
	return nil
}

func (t *sockTransport) files() []string { return []string{t.ctlPath} }
