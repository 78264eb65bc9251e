//go:build linux

package qbipctest

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// abstractRaw builds libqb's abstract address: NUL, name, NUL padding,
// length sizeof(sockaddr_un).
func abstractRaw(name string) *unix.RawSockaddrUnix {
	sa := &unix.RawSockaddrUnix{Family: unix.AF_UNIX}
	for i := 0; i < len(name) && i < 106; i++ {
		sa.Path[1+i] = int8(name[i])
	}
	return sa
}

func bindAbstract(fd int, name string) error {
	_, _, e := unix.Syscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(abstractRaw(name))), unix.SizeofSockaddrUnix)
	if e != 0 {
		return e
	}
	return nil
}

// sendTo sends one datagram to an abstract name in libqb's 110-byte form,
// which x/sys/unix's SockaddrUnix cannot express.
func sendTo(fd int, msg []byte, name string) error {
	var p unsafe.Pointer
	if len(msg) > 0 {
		p = unsafe.Pointer(&msg[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(msg)),
		unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, uintptr(unsafe.Pointer(abstractRaw(name))), unix.SizeofSockaddrUnix)
	if e != 0 {
		return e
	}
	return nil
}

func dgramBind(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := bindAbstract(fd, name); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func atomic32Add(b []byte, off int, d int32) {
	atomic.AddInt32((*int32)(unsafe.Pointer(&b[off])), d)
}

func atomic32Store(b []byte, off int, v int32) {
	atomic.StoreInt32((*int32)(unsafe.Pointer(&b[off])), v)
}
