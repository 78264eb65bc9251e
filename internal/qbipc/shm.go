//go:build linux

package qbipc

import (
	"fmt"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// shmTransport is QB_IPC_SHM: three rings, the setup socket as a doorbell
// for requests (one byte per request) and for events (one byte per event,
// which the client reads back as its acknowledgement).
type shmTransport struct {
	setup               int
	req, resp, ev       *ring
	doorbellsOwed       int // request doorbells not yet written (socket full)
	evMu                sync.Mutex
	acksOwed            int // event doorbells not yet read
	closeOnce           sync.Once
	doorbellBuf, ackBuf [1]byte
}

func openSHM(setup int, r connResponse, maxMsg uint32, dir string) (t *shmTransport, err error) {
	var bases [3]string
	for i, n := range []string{r.Request, r.Response, r.Event} {
		if bases[i], err = shmPath(n, dir); err != nil {
			return nil, err
		}
	}
	t = &shmTransport{setup: setup}
	defer func() {
		if err != nil {
			t.close()
			t = nil
		}
	}()
	if t.req, err = openRing(bases[0], maxMsg); err != nil {
		return t, fmt.Errorf("request ring: %w", err)
	}
	if t.resp, err = openRing(bases[1], maxMsg); err != nil {
		return t, fmt.Errorf("response ring: %w", err)
	}
	if t.ev, err = openRing(bases[2], maxMsg); err != nil {
		return t, fmt.Errorf("event ring: %w", err)
	}
	return t, nil
}

// fcEnableMax is libqb's default: flow-control levels up to it stop sends.
const fcEnableMax = 1

func (t *shmTransport) send(msg []byte) error {
	if err := t.req.admit(); err != nil {
		return err
	}
	if err := t.flushDoorbells(); err != nil {
		return err
	}
	if t.doorbellsOwed > 0 {
		return errAgain
	}
	if err := t.req.write(msg); err != nil {
		return err
	}
	// The server only looks at its rings when the socket is readable.
	t.doorbellBuf[0] = byte(len(msg))
	t.doorbellsOwed++
	return t.flushDoorbells()
}

// poke rings doorbells still owed: the server does not look at its request
// ring without them, so a waiting request could otherwise wait for ever.
func (t *shmTransport) poke() error { return t.flushDoorbells() }

// flushDoorbells writes owed doorbell bytes; a full socket leaves them owed.
func (t *shmTransport) flushDoorbells() error {
	for t.doorbellsOwed > 0 {
		// A plain sendto: the socket is non-blocking, and SendmsgN's
		// generality costs as much as the rest of a request's user time.
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(t.setup), uintptr(unsafe.Pointer(&t.doorbellBuf[0])), 1,
			unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			t.doorbellsOwed--
		case unix.EINTR:
		case unix.EAGAIN:
			return nil
		default:
			return fmt.Errorf("doorbell: %w", e)
		}
	}
	return nil
}

func (t *shmTransport) waitResponse(d time.Duration) ([]byte, bool, error) {
	if d <= 0 {
		return t.resp.read()
	}
	return t.resp.waitRead(d)
}

// spinResponse watches the semaphore: a load from shared memory, with no
// waiter registered, so corosync's sem_post issues no futex wake either.
func (t *shmTransport) spinResponse(deadline time.Time) ([]byte, bool, error) {
	return t.resp.spinRead(deadline)
}

func (t *shmTransport) wake() {
	if t.resp != nil && t.resp.hdr != nil {
		var err error
		func() {
			defer unguard(&err, faultGuard())
			t.resp.sem.wake()
		}()
	}
}

func (t *shmTransport) readEvent() ([]byte, bool, error) {
	t.evMu.Lock()
	defer t.evMu.Unlock()
	t.readAcks()
	msg, ok, err := t.ev.read()
	if err != nil || !ok {
		return nil, false, err
	}
	// The server posts the semaphore before it rings, so the byte may
	// still be on its way; it is then read on a later call.
	t.acksOwed++
	t.readAcks()
	return msg, true, nil
}

// readAcks consumes event doorbells owed, without waiting. End of file is
// left to the caller's hang-up check.
func (t *shmTransport) readAcks() {
	for t.acksOwed > 0 {
		n, _, err := unix.Recvfrom(t.setup, t.ackBuf[:], unix.MSG_DONTWAIT)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n != 1 {
			return
		}
		t.acksOwed--
	}
}

func (t *shmTransport) pollFd() int { return t.setup }

func (t *shmTransport) close() (last []string) {
	t.closeOnce.Do(func() {
		for _, r := range []*ring{t.req, t.resp, t.ev} {
			if r != nil && r.close() {
				last = append(last, r.name+"-header", r.name+"-data")
			}
		}
	})
	return last
}

func (t *shmTransport) files() []string {
	var fs []string
	for _, r := range []*ring{t.req, t.resp, t.ev} {
		if r != nil {
			fs = append(fs, r.name+"-header", r.name+"-data")
		}
	}
	return fs
}
