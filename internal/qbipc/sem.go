//go:build linux

package qbipc

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A glibc (>= 2.21, 64-bit) process-shared sem_t starts with struct
// new_sem: a uint64 whose low 32 bits are the value and high 32 bits the
// number of waiters, then an int "private" that is FUTEX_PRIVATE_FLAG (128)
// for a process-shared semaphore, meaning futex calls without that flag.
// libqb's ring headers embed one such semaphore per ring.
const (
	semSize          = 32
	semPrivateOff    = 8
	semSharedPrivate = 128
	semWaiterShift   = 32
	semValueMax      = 1<<31 - 1

	// Values a healthy ring's semaphore cannot reach: the value counts
	// queued chunks and the waiters count blocked threads.
	semSaneValue   = 1 << 24
	semSaneWaiters = 1 << 16
)

// ErrSemaphoreLayout is the cause when a ring's semaphore is not the glibc
// layout this package knows. The libquorum backend works in that case.
var ErrSemaphoreLayout = errors.New("the shared-memory semaphores are not a 64-bit glibc >= 2.21 sem_t " +
	"(supported on linux/amd64 and linux/arm64 only); use the socket IPC type in corosync " +
	"(system { qb_ipc_type: socket }) or the libquorum backend (build with -tags libquorum)")

// sem is a glibc sem_t in shared memory. p points at its first byte, which
// is 8-byte aligned because the header mapping is page-aligned and the
// semaphore's offset is a multiple of 8.
type sem struct {
	p unsafe.Pointer
}

func (s sem) data() *uint64 { return (*uint64)(s.p) }

// word is the futex word: the value half of data (little-endian: first).
func (s sem) word() *uint32 { return (*uint32)(s.p) }

func (s sem) private() int32 { return atomic.LoadInt32((*int32)(unsafe.Add(s.p, semPrivateOff))) }

// check refuses a semaphore that does not look like a freshly used
// process-shared glibc sem_t of the supported layout.
func (s sem) check() error {
	if !semSupported {
		return ErrSemaphoreLayout
	}
	d := atomic.LoadUint64(s.data())
	if s.private() != semSharedPrivate || uint32(d) >= semSaneValue || d>>semWaiterShift >= semSaneWaiters {
		return fmt.Errorf("%w (found value %d, waiters %d, private %d)", ErrSemaphoreLayout,
			uint32(d), d>>semWaiterShift, s.private())
	}
	return nil
}

// value is sem_getvalue: the number of chunks queued in the ring.
func (s sem) value() uint32 { return uint32(atomic.LoadUint64(s.data())) }

// tryWait is sem_trywait: it takes one unit if there is one.
func (s sem) tryWait() bool {
	p := s.data()
	for {
		d := atomic.LoadUint64(p)
		if uint32(d) == 0 {
			return false
		}
		if atomic.CompareAndSwapUint64(p, d, d-1) {
			return true
		}
	}
}

// post is sem_post: it adds one unit and wakes one waiter if any is
// registered, with a shared futex wake so that other processes see it.
func (s sem) post() error {
	p := s.data()
	for {
		d := atomic.LoadUint64(p)
		if uint32(d) >= semValueMax {
			return unix.EOVERFLOW
		}
		if atomic.CompareAndSwapUint64(p, d, d+1) {
			if d>>semWaiterShift > 0 {
				return futexWake(s.word(), 1)
			}
			return nil
		}
	}
}

// wake wakes any thread of ours blocked in timedWait without changing the
// value; they then see no unit and return false.
func (s sem) wake() { _ = futexWake(s.word(), 1<<30) }

// timedWait takes one unit, sleeping at most about d for one to be posted.
// It returns false if none came, so that callers can check for hang-ups and
// cancellation between bounded sleeps. It follows glibc's protocol:
// register as a waiter so that posters issue a wake, sleep while the value
// is 0, then take a unit and unregister in one compare-and-swap.
func (s sem) timedWait(d time.Duration) (bool, error) {
	if s.tryWait() {
		return true, nil
	}
	p := s.data()
	atomic.AddUint64(p, 1<<semWaiterShift)
	slept := false
	for {
		v := atomic.LoadUint64(p)
		if uint32(v) > 0 {
			if atomic.CompareAndSwapUint64(p, v, v-1-(1<<semWaiterShift)) {
				return true, nil
			}
			continue
		}
		if slept {
			atomic.AddUint64(p, ^uint64(1<<semWaiterShift-1))
			return false, nil
		}
		slept = true
		if err := futexWait(s.word(), 0, d); err != nil {
			atomic.AddUint64(p, ^uint64(1<<semWaiterShift-1))
			return false, err
		}
	}
}

// Futex operations without FUTEX_PRIVATE_FLAG, as glibc uses for pshared.
const (
	futexOpWait = 0
	futexOpWake = 1
)

// futexWait sleeps while *addr == val, at most d. A timeout, a signal or a
// changed value are not errors; a bad address is.
func futexWait(addr *uint32, val uint32, d time.Duration) error {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexOpWait,
		uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
	switch e {
	case 0, unix.ETIMEDOUT, unix.EINTR, unix.EAGAIN:
		return nil
	}
	return e
}

func futexWake(addr *uint32, n int) error {
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexOpWake,
		uintptr(n), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
