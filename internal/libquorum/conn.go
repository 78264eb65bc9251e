//go:build libquorum && cgo && linux

package libquorum

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
)

// corosync's CS_TRACK_CURRENT and CS_TRACK_CHANGES.
const (
	trackCurrentFlag = 0x01
	trackChangesFlag = 0x02
)

// The quorum models a Conn can speak.
const (
	// ModelV0 is quorum_initialize's model, the only one of corosync 2.4
	// and 3.0: one callback with the quorate flag, the ring's sequence
	// number and the members.
	ModelV0 = 0
	// ModelV1 is quorum_model_initialize's QUORUM_MODEL_V1 (corosync 3.1
	// and later): a nodelist callback with the joined and left lists, and a
	// quorum callback, both with the full ring id.
	ModelV1 = 1
)

// Operation names, as they appear in errors.
const (
	opInit       = "quorum_initialize"
	opGetQuorate = "quorum_getquorate"
	opTrackStart = "quorum_trackstart"
	opTrackStop  = "quorum_trackstop"
	opDispatch   = "quorum_dispatch"
	opFinalize   = "quorum_finalize"
)

// The notification is model's, which both real backends share: a model V1
// callback, or one of those a model V0 callback is translated into (see
// Conn.Model). Its slices are copies owned by the receiver; Members is never
// nil, and Joined and Left of a nodelist notification are never nil with
// model V1 and always nil with model V0, which has no such lists.
type (
	Kind         = model.Kind
	Notification = model.Notification
)

const (
	KindNodeList = model.KindNodeList
	KindQuorum   = model.KindQuorum
)

// Conn is one libquorum handle, speaking model V1 where libquorum has it
// (corosync 3.1 and later) and model V0 otherwise (see Model).
//
// Requests (Quorate, TrackStart, TrackStop) are serialised on the handle; one
// of them may run concurrently with Dispatch. Close may be called while a
// request whose context ended is still blocked in C: it then wakes that call
// and leaves the quorum_finalize to it, so Close itself never waits for
// corosync.
type Conn struct {
	h           cHandle // immutable after Dial
	fd          int     // libquorum's; never closed or modified here
	wake        []int   // libquorum's sockets that Close shuts down under a blocked call
	hangup      int     // socket mode: libqb's setup socket, to see the server exit; else -1
	pollFd      int     // socket mode: our epoll set of event and setup sockets; else -1
	hasProvider bool
	model       int        // ModelV0 or ModelV1
	self        cgo.Handle // the context given to libquorum; deleted at finalize

	// reqs holds one token while a request is on the handle, including the
	// time it keeps running in C after its caller gave up.
	reqs chan struct{}

	mu        sync.Mutex
	active    int  // C calls in progress on h
	closed    bool // Close was called
	finalized bool // quorum_finalize was called or is being called

	// batch collects the callbacks of one quorum_dispatch, and badCount the
	// size of a list too long to be real. Only the goroutine inside Dispatch
	// touches them.
	batch    []Notification
	badCount uint64

	// v0 turns model V0 callbacks into model V1 notifications.
	v0 model.V0
}

// forceV0 makes Dial use model V0 even when libquorum has model V1. Tests
// set it to check the translation against a corosync 3.1.
var forceV0 atomic.Bool

// Dial connects to corosync's quorum service and checks that the server
// runs as root or as one of trustedUIDs. It uses model V1 when the libquorum
// loaded at run time has quorum_model_initialize (corosync 3.1 and later),
// whatever headers the program was built with, and model V0 otherwise.
//
// It uses the network namespace of the calling OS thread, so a caller that
// locked its thread into another namespace connects to the corosync there.
// If ctx ends before libquorum answers, Dial returns an error wrapping
// ctx.Err(); the connection attempt keeps running in the background until
// corosync answers or goes away, and is then released.
//
// Errors are *cs.Error: CS_ERR_LIBRARY when corosync is not running,
// CS_ERR_TRY_AGAIN while it starts, CS_ERR_ACCESS when it refuses this user,
// CS_ERR_SECURITY when the server is not trusted (see CheckPeer).
func Dial(ctx context.Context, trustedUIDs []uint32) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxError(opInit, err)
	}
	c := &Conn{reqs: make(chan struct{}, 1), fd: -1, hangup: -1, pollFd: -1}
	c.self = cgo.NewHandle(c)
	if ctx.Done() == nil {
		if err := c.initialize(trustedUIDs); err != nil {
			c.self.Delete()
			return nil, err
		}
		return c, nil
	}

	ns, nsErr := callerNetns()
	var (
		mu        sync.Mutex
		abandoned bool
		done      = make(chan error, 1)
	)
	go func() {
		err := nsErr
		if err == nil {
			err = ns.enter()
		}
		if err == nil {
			err = c.initialize(trustedUIDs)
		}
		ns.close()
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			// Nobody will use this handle: release it here.
			if err == nil {
				c.finalize()
			} else {
				c.self.Delete()
			}
			return
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			c.self.Delete()
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		abandoned = true
		select {
		case err := <-done:
			// The attempt finished as the context ended; honour the context.
			if err == nil {
				c.finalize()
			} else {
				c.self.Delete()
			}
		default:
		}
		return nil, ctxError(opInit, ctx.Err())
	}
}

// initialize connects and checks the server. It runs on a thread in the
// caller's network namespace, which sock_diag needs in socket IPC mode. On
// error no handle is left open.
func (c *Conn) initialize(trustedUIDs []uint32) error {
	before := socketInodes()
	h, qtype, fd, model, rc := cInit(uintptr(c.self), !forceV0.Load())
	if err := initError(opInit, rc); err != nil {
		return err
	}
	s, err := inspect(fd, before)
	if err != nil {
		err = untrusted(err)
	} else if err = s.check(trustedUIDs); err == nil && s.hangup >= 0 {
		err = c.makePollFd(fd, s.hangup)
	}
	if err != nil {
		cFinalize(h)
		return err
	}
	c.h, c.fd, c.hasProvider, c.wake, c.hangup = h, fd, qtype == quorumSet, s.wake, s.hangup
	c.model = model
	return nil
}

// makePollFd builds, for socket IPC mode, the descriptor Fd returns: an
// epoll set of the event socket and of the setup socket, so that it turns
// readable on events and on the server's exit alike.
func (c *Conn) makePollFd(event, setup int) error {
	ep, err := pollSet(opInit, event, setup)
	if err != nil {
		return err
	}
	c.pollFd = ep
	return nil
}

// Fd returns a descriptor that is readable when notifications are queued or
// corosync hung up, valid until Close. With corosync's default shared-memory
// IPC it is libquorum's own (libqb's setup socket); with qb_ipc_type: socket,
// where libquorum's descriptor is a datagram socket that never sees the
// server exit, it is an epoll set of the Conn's holding that socket and the
// setup socket. Either way it belongs to the Conn: do not read, close or
// change its flags, and do not wrap it in an *os.File, which would take
// ownership of the number and eventually close it under libquorum's feet.
func (c *Conn) Fd() int {
	if c.pollFd >= 0 {
		return c.pollFd
	}
	return c.fd
}

// HasProvider reports whether corosync has a quorum provider configured
// (QUORUM_SET). Without one, corosync reports every partition as quorate.
func (c *Conn) HasProvider() bool { return c.hasProvider }

// Model is the quorum model the connection speaks: ModelV1, or ModelV0 when
// libquorum has no quorum_model_initialize (corosync 2.4 and 3.0). With
// ModelV0 each V0 callback is handed on as the V1 notifications corosync
// would have sent for the same change, as far as V0 tells: a nodelist
// notification (with nil Joined and Left) then a quorum notification for a
// trackstart's snapshot and for each new ring, a quorum notification alone
// when the ring did not change. The ring node id is the lowest member id.
func (c *Conn) Model() int { return c.model }

// HasModelV1 reports whether the libquorum loaded in this process has
// quorum_model_initialize, which Dial then uses.
func HasModelV1() bool { return cHasModelV1() }

// Dispatch runs quorum_dispatch(CS_DISPATCH_ALL), which returns without
// waiting, then hands every notification it produced to fn, in order. fn is
// called after the C call has returned, so it may take its time. It returns a
// *cs.Error with Code cs.ErrLibrary once corosync is gone; the Conn is then
// dead and should be closed.
func (c *Conn) Dispatch(fn func(Notification)) error {
	if !c.enter() {
		return closedError(opDispatch)
	}
	c.batch, c.badCount = c.batch[:0], 0
	rc := cDispatchAll(c.h)
	if cs.Code(rc) == cs.OK && c.hangup >= 0 && hungUp(c.hangup) {
		// Socket mode: libqb sees no error on the datagram socket, so the
		// exit shows only here. Without this the level-triggered Fd
		// would stay readable with nothing to dispatch.
		rc = int32(cs.ErrLibrary)
	}
	c.leave()
	batch := c.batch
	c.batch = nil
	for _, n := range batch {
		fn(n)
	}
	clear(batch)
	c.batch = batch[:0]
	if c.badCount != 0 && cs.Code(rc) == cs.OK {
		return &cs.Error{Op: opDispatch, Code: cs.ErrMessageError, Err: fmt.Errorf(
			"corosync sent a notification with %d list entries, more than fit in a message; it was dropped", c.badCount)}
	}
	return codeError(opDispatch, rc)
}

// Quorate is quorum_getquorate. If ctx ends first it returns an error
// wrapping ctx.Err(), and the call finishes in the background.
func (c *Conn) Quorate(ctx context.Context) (bool, error) {
	var q bool
	err := c.request(ctx, opGetQuorate, func(h cHandle) int32 {
		var rc int32
		q, rc = cGetQuorate(h)
		return rc
	})
	if err != nil {
		return false, err
	}
	return q, nil
}

// TrackStart is quorum_trackstart with corosync's CS_TRACK_* flags. With
// CS_TRACK_CURRENT or CS_TRACK_CHANGES the snapshot is queued before it
// returns, even when it returns CS_ERR_EXIST.
//
// With model V0 the first notification dispatched after such a call is
// taken for its snapshot. Only a TrackStart on a handle that already tracks
// changes can be wrong there: a change queued just before the request is
// then taken for the snapshot, and the snapshot, on the same ring, comes as
// a quorum notification alone.
func (c *Conn) TrackStart(ctx context.Context, flags uint32) error {
	snapshot := c.model == ModelV0 && flags&(trackCurrentFlag|trackChangesFlag) != 0
	if snapshot {
		c.v0.ExpectSnapshot()
	}
	return c.request(ctx, opTrackStart, func(h cHandle) int32 {
		rc := cTrackStart(h, flags)
		if snapshot && cs.Code(rc) != cs.OK && cs.Code(rc) != cs.ErrExist {
			c.v0.NoSnapshot()
		}
		return rc
	})
}

// TrackStop is quorum_trackstop.
func (c *Conn) TrackStop(ctx context.Context) error {
	return c.request(ctx, opTrackStop, cTrackStop)
}

// request runs one blocking C call on the handle without making the caller
// wait past ctx.
func (c *Conn) request(ctx context.Context, op string, call func(cHandle) int32) error {
	if err := ctx.Err(); err != nil {
		return ctxError(op, err)
	}
	select {
	case c.reqs <- struct{}{}:
	case <-ctx.Done():
		return ctxError(op, ctx.Err())
	}
	if !c.enter() {
		<-c.reqs
		return closedError(op)
	}
	if ctx.Done() == nil {
		// Nothing to give up on: stay on the caller's goroutine.
		rc := call(c.h)
		c.leave()
		<-c.reqs
		return codeError(op, rc)
	}
	done := make(chan int32, 1)
	go func() {
		rc := call(c.h)
		c.leave()
		<-c.reqs
		done <- rc
	}()
	select {
	case rc := <-done:
		return codeError(op, rc)
	case <-ctx.Done():
		return ctxError(op, ctx.Err())
	}
}

// enter registers a C call on the handle; it fails once Close was called.
func (c *Conn) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.active++
	return true
}

// leave ends a C call, and finalizes the handle if Close came meanwhile.
func (c *Conn) leave() {
	c.mu.Lock()
	c.active--
	fin := c.closed && c.active == 0 && !c.finalized
	if fin {
		c.finalized = true
	}
	c.mu.Unlock()
	if fin {
		c.finalize()
	}
}

func (c *Conn) finalize() int32 {
	rc := cFinalize(c.h)
	c.self.Delete()
	if c.pollFd >= 0 {
		unix.Close(c.pollFd)
	}
	return rc
}

// hungUp reports whether the stream socket fd saw its peer go away.
func hungUp(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 1 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
}

// Close releases the handle. If a C call is still running on it (a request
// whose caller gave up on a hung corosync), Close shuts the socket down, which
// makes libqb's liveness check fail that call within about two seconds even
// if corosync stays hung, and the call's goroutine then finalizes the handle;
// Close returns at once either way. Close is idempotent.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.active > 0 {
		// The descriptors are still open: finalize has not run, and cannot
		// before active drops to 0 under mu.
		var err error
		for _, fd := range c.wake {
			if e := unix.Shutdown(fd, unix.SHUT_RDWR); e != nil && !errors.Is(e, unix.ENOTCONN) {
				err = &cs.Error{Op: opFinalize, Code: cs.ErrLibrary,
					Err: fmt.Errorf("shutting down the socket under a blocked call: %w", e)}
			}
		}
		c.mu.Unlock()
		return err
	}
	c.finalized = true
	c.mu.Unlock()
	return codeError(opFinalize, c.finalize())
}

func codeError(op string, rc int32) error {
	if cs.Code(rc) == cs.OK {
		return nil
	}
	return &cs.Error{Op: op, Code: cs.Code(rc)}
}

func closedError(op string) error {
	return &cs.Error{Op: op, Code: cs.ErrBadHandle, Err: errors.New("connection closed")}
}

// ctxError wraps a context's error so that errors.Is finds it, with the code
// a caller of libquorum would expect for it.
func ctxError(op string, err error) error {
	code := cs.ErrInterrupt
	if errors.Is(err, context.DeadlineExceeded) {
		code = cs.ErrTimeout
	}
	return &cs.Error{Op: op, Code: code, Err: fmt.Errorf("waiting for corosync's answer: %w", err)}
}

// netnsRef is the network namespace of the thread that called Dial, so that
// the goroutine running the C call connects from the same namespace: abstract
// unix sockets are per network namespace.
type netnsRef struct {
	fd  int // open /proc/thread-self/ns/net of the caller, or -1
	ino uint64
	dev uint64
}

func callerNetns() (netnsRef, error) {
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		// Without /proc there is no way to tell; assume one namespace.
		return netnsRef{fd: -1}, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return netnsRef{fd: -1}, nil
	}
	return netnsRef{fd: fd, ino: st.Ino, dev: st.Dev}, nil
}

// enter moves the current goroutine's thread into the namespace if it is in
// another one. The thread then stays locked, so that it is discarded when the
// goroutine exits instead of serving other goroutines from the wrong
// namespace.
func (n netnsRef) enter() error {
	if n.fd < 0 {
		return nil
	}
	runtime.LockOSThread()
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err == nil && st.Ino == n.ino && st.Dev == n.dev {
		runtime.UnlockOSThread()
		return nil
	}
	if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
		return &cs.Error{Op: opInit, Code: cs.ErrLibrary,
			Err: fmt.Errorf("entering the caller's network namespace: %w", err)}
	}
	return nil
}

func (n netnsRef) close() {
	if n.fd >= 0 {
		unix.Close(n.fd)
	}
}
