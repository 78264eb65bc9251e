//go:build linux

package qbipc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corosync-go/quorum/internal/cs"
	"golang.org/x/sys/unix"
)

// transport is the part of a connection that differs between SHM and SOCKET.
// Its methods never block longer than asked.
type transport interface {
	// send queues one request; errAgain means flow control or a full queue.
	send(msg []byte) error
	// waitResponse returns the next response, sleeping up to d for one
	// (d = 0: not at all). It returns early, with none, after wake.
	waitResponse(d time.Duration) ([]byte, bool, error)
	// spinResponse busy-waits until deadline for the next response and
	// never sleeps; a transport where checking costs a system call
	// returns none at once.
	spinResponse(deadline time.Time) ([]byte, bool, error)
	// wake makes a waitResponse in progress return.
	wake()
	// poke retries any notification of the server that could not be
	// sent yet (SHM doorbells on a full socket); never concurrent with send.
	poke() error
	// readEvent returns the next queued event without waiting, and
	// acknowledges it to the server as libqb's client does.
	readEvent() ([]byte, bool, error)
	// pollFd is readable when an event is queued (or the server is gone).
	pollFd() int
	// close releases the transport and returns the server's files whose
	// last reference it dropped: removing those falls to the client.
	close() (last []string)
	// files are the server's files behind the connection, for removal
	// when the server died without removing them.
	files() []string
}

// responseSlice bounds each sleep while waiting for a response, so that the
// waiter notices a server that hung up or a Close (libqb uses 2 s slices).
const responseSlice = 100 * time.Millisecond

// Conn is one libqb IPC connection. Request may run concurrently with
// ReadEvent; requests are serialised among themselves. Close may be called
// at any time and makes a waiting Request return.
type Conn struct {
	setup  int
	tr     transport
	typ    Transport
	maxMsg uint32
	peer   unix.Ucred
	// files are the server's files for this connection, and connDir the
	// directory of the connection's own that holds them ("" when they lie
	// directly in /dev/shm, as up to libqb 1.0.3).
	files   []string
	connDir string

	// reqs holds one token; a Request owns the request path while holding
	// it, including pending.
	reqs chan struct{}
	// pending is the call of a request that was abandoned when its
	// context ended; its response must be consumed before the next one.
	pending *call

	// hooks tell tests where a request stands (OnSent); nil outside
	// them, and set while no request is in flight.
	hooks struct {
		sent    func() // a request was sent and waits for its response
		stalled func() // a send met flow control or a full ring or socket
	}

	closed    atomic.Bool
	waiters   sync.WaitGroup
	life      sync.RWMutex // exclusive in Close while releasing resources
	closeOnce sync.Once
}

type call struct {
	done chan struct{}
	resp []byte
	err  error
}

// OnSent makes the Conn call fn each time a request has been sent and starts
// waiting for its response: for tests elsewhere that must act while a request
// is in flight (this package's own tests set its hooks directly). Call it
// while no request is in flight.
func (c *Conn) OnSent(fn func()) { c.hooks.sent = fn }

// Transport reports the transport the server chose.
func (c *Conn) Transport() Transport { return c.typ }

// MaxMsgSize is the largest message the server accepts or sends.
func (c *Conn) MaxMsgSize() uint32 { return c.maxMsg }

// Peer is the server's pid, uid and gid, from the handshake's credentials.
func (c *Conn) Peer() (pid int32, uid, gid uint32) { return c.peer.Pid, c.peer.Uid, c.peer.Gid }

// Fd returns a descriptor that is readable while an event is queued or after
// the server hung up: the setup socket for SHM, and for SOCKET an epoll
// descriptor holding the event socket and the setup socket. It stays owned
// by the Conn; callers may poll it but must not read, close or change it.
func (c *Conn) Fd() int { return c.tr.pollFd() }

// Request sends msg, a complete request whose header the caller filled in,
// and returns the first response for which match returns true. Responses
// that do not match are stale answers to earlier abandoned requests and are
// dropped.
//
// If ctx ends first, Request returns ctx.Err(); the response is consumed by
// a later Request, and the connection stays usable. Flow control from the
// server is waited out, within ctx.
//
// After sending, Request watches for the response without sleeping for at
// most spinFor (40 µs), which is when an idle server answers; then it sleeps
// in bounded slices. With a ctx that has no Done channel it sleeps on the
// calling goroutine, otherwise on a goroutine of its own so that it can
// return when ctx ends. Close ends either wait. An idle Conn does not spin.
func (c *Conn) Request(ctx context.Context, msg []byte, match func(ResponseHeader) bool) ([]byte, error) {
	const op = "qb_ipcc_sendv_recv"
	if len(msg) < RequestHeaderSize || uint64(len(msg)) > uint64(c.maxMsg) {
		return nil, &cs.Error{Op: op, Code: cs.ErrInvalidParam,
			Err: fmt.Errorf("request of %d bytes: must hold a header and be at most %d bytes", len(msg), c.maxMsg)}
	}
	// A context that has already ended must not send anything: select
	// below would pick at random between it and a free token.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case c.reqs <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.reqs }()
	if c.closed.Load() {
		return nil, &cs.Error{Op: op, Code: cs.ErrBadHandle, Err: ErrClosed}
	}
	if p := c.pending; p != nil {
		select {
		case <-p.done:
			c.pending = nil
			if p.err != nil {
				// The connection failed while draining.
				return nil, p.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := c.send(ctx, msg); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return nil, wrapErr(op, err)
	}
	// Registering the waiter under the read lock orders it before Close's
	// Wait, or lets it see closed: the waiter must not outlive the mappings.
	c.life.RLock()
	if c.closed.Load() {
		c.life.RUnlock()
		return nil, &cs.Error{Op: op, Code: cs.ErrBadHandle, Err: ErrClosed}
	}
	c.waiters.Add(1)
	c.life.RUnlock()
	if c.hooks.sent != nil {
		c.hooks.sent()
	}
	// Most responses arrive within microseconds: catching them here, on the
	// caller's goroutine, saves a futex sleep and wake and a goroutine
	// hand-off, which cost more than the round trip itself.
	var cl call
	if c.spin(&cl, match) {
		c.waiters.Done()
		return cl.resp, cl.err
	}
	if ctx.Done() == nil {
		// Nothing can abandon this wait but Close, which the wait
		// notices, so it needs no goroutine of its own.
		c.await(&cl, match)
		c.waiters.Done()
		return cl.resp, cl.err
	}
	pc := &call{done: make(chan struct{})}
	go func() {
		defer c.waiters.Done()
		defer close(pc.done)
		c.await(pc, match)
	}()
	select {
	case <-pc.done:
		return pc.resp, pc.err
	case <-ctx.Done():
		c.pending = pc
		return nil, fmt.Errorf("waiting for the server's response: %w", ctx.Err())
	}
}

// spinFor bounds the busy wait for a response right after a request is
// sent: long enough for an idle corosync to answer, short enough that a
// slow one costs little CPU before the waiter sleeps.
const spinFor = 40 * time.Microsecond

// spin waits for the response without sleeping, at most spinFor; it reports
// whether cl now holds the outcome. Transports where checking for a
// response costs a system call do not spin.
func (c *Conn) spin(cl *call, match func(ResponseHeader) bool) bool {
	const op = "qb_ipcc_recv"
	deadline := time.Now().Add(spinFor)
	for {
		msg, ok, err := c.tr.spinResponse(deadline)
		switch {
		case err != nil:
			cl.err = wrapErr(op, err)
			return true
		case !ok:
			return false
		}
		h, err := ParseResponseHeader(msg)
		if err != nil {
			cl.err = wrapErr(op, err)
			return true
		}
		if match(h) {
			cl.resp = msg
			return true
		}
	}
}

// send retries through flow control with a short backoff.
func (c *Conn) send(ctx context.Context, msg []byte) error {
	backoff := time.Millisecond
	for {
		err := c.sendOnce(msg)
		if !errors.Is(err, errAgain) {
			return err
		}
		if hungUp(c.setup) {
			return lostErr("qb_ipcc_send")
		}
		if c.hooks.stalled != nil {
			c.hooks.stalled()
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		if backoff < 20*time.Millisecond {
			backoff *= 2
		}
	}
}

func (c *Conn) sendOnce(msg []byte) error {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed.Load() {
		return &cs.Error{Op: "qb_ipcc_send", Code: cs.ErrBadHandle, Err: ErrClosed}
	}
	return c.tr.send(msg)
}

// await waits for the response in bounded futex or poll sleeps, on the
// caller's goroutine or, when the caller may leave as its context ends, on
// one of its own. The caller registered it in c.waiters, and Close waits for
// it before unmapping anything it touches.
func (c *Conn) await(cl *call, match func(ResponseHeader) bool) {
	const op = "qb_ipcc_recv"
	for {
		if c.closed.Load() {
			cl.err = &cs.Error{Op: op, Code: cs.ErrBadHandle, Err: ErrClosed}
			return
		}
		msg, ok, err := c.tr.waitResponse(responseSlice)
		if err != nil {
			cl.err = wrapErr(op, err)
			return
		}
		if ok {
			h, err := ParseResponseHeader(msg)
			if err != nil {
				cl.err = wrapErr(op, err)
				return
			}
			if match(h) {
				cl.resp = msg
				return
			}
			continue
		}
		if hungUp(c.setup) {
			cl.err = lostErr(op)
			return
		}
		if err := c.tr.poke(); err != nil {
			cl.err = wrapErr(op, err)
			return
		}
	}
}

// ReadEvent returns the next queued event (a complete message, header
// included) without waiting; ok is false when none is queued. Once the
// server has hung up and nothing is left, it returns an error with code
// cs.ErrLibrary. Events queued before a hang-up are still returned.
func (c *Conn) ReadEvent() (msg []byte, ok bool, err error) {
	const op = "qb_ipcc_event_recv"
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed.Load() {
		return nil, false, &cs.Error{Op: op, Code: cs.ErrBadHandle, Err: ErrClosed}
	}
	msg, ok, err = c.tr.readEvent()
	if err != nil {
		return nil, false, wrapErr(op, err)
	}
	if ok {
		if _, err := ParseResponseHeader(msg); err != nil {
			return nil, false, wrapErr(op, err)
		}
		return msg, true, nil
	}
	if hungUp(c.setup) {
		return nil, false, lostErr(op)
	}
	return nil, false, nil
}

// Close ends the connection: a waiting Request returns, references to the
// shared memory are dropped and sockets closed, after which the server
// removes its files. It does not wait for the server. Later calls return nil.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.life.Lock()
		c.closed.Store(true)
		c.life.Unlock()
		c.tr.wake()
		// Waiters sleep at most responseSlice once woken or not.
		c.waiters.Wait()
		c.life.Lock()
		defer c.life.Unlock()
		orphaned := hungUp(c.setup) && c.serverGone()
		remove := c.tr.close()
		_ = unix.Shutdown(c.setup, unix.SHUT_RDWR)
		_ = unix.Close(c.setup)
		if orphaned {
			// The server died (SIGKILL, crash) without removing its
			// files; like libqb's client, remove them so that /dev/shm
			// does not fill up.
			remove = c.files
		}
		// Their names were checked at connect.
		for _, f := range remove {
			_ = unix.Unlink(f)
		}
		if len(remove) > 0 && c.connDir != "" {
			_ = unix.Rmdir(c.connDir)
		}
	})
	return nil
}

// serverGone reports whether the server process no longer exists, giving a
// process that is just exiting a few milliseconds, as libqb does.
func (c *Conn) serverGone() bool {
	if c.peer.Pid <= 0 {
		return false
	}
	for i := 0; i < 3; i++ {
		if unix.Kill(int(c.peer.Pid), 0) == unix.ESRCH {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// ServerFiles are the shared-memory files the server created for this
// connection (ring bases or the control file), for diagnostics: the server
// removes them when the connection ends, and Close does if the server died.
func (c *Conn) ServerFiles() []string { return append([]string(nil), c.files...) }
