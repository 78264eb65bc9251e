package quorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/corosync-go/quorum/internal/model"
)

// Client is one connection to corosync's quorum service, shared by any
// number of subscribers. It tracks changes from the moment it opens, so it
// always knows the current state: a subscriber that joins later with
// TrackCurrent gets its snapshot from that state, with no round trip, and
// State reads it.
//
// A Client is safe for use by many goroutines. Close releases it. A Client
// must be made by Open: the methods of a zero Client return an error
// matching ErrInvalidParam (Close returns nil), and never panic.
type Client struct {
	// Set when the Client is made, then only read.
	set     settings
	private bool               // made by the package-level Subscribe: ends with its one subscription
	poll    *poller            // the pump's place to wait; the pump closes it as it exits
	stopCtx context.Context    // ends the pump's connection attempts
	stop    context.CancelFunc // called by Close and by the pump as it exits
	done    chan struct{}      // closed by the pump, last, once everything is released

	// The pump's callbacks for Dispatch, made once so that a dispatch
	// allocates no method value.
	notifyFn     func(Notification)
	voteNotifyFn func(model.VoteEvent)

	// mu guards the fields below. The pump holds it while it dispatches and
	// fans out, which never blocks, so nobody waits on corosync for it.
	mu      sync.Mutex
	life    lifecycle
	err     error                       // the terminal error the Client stopped with; nil if closed
	sess    *session                    // the pump's current connection; nil while disconnected
	down    error                       // why corosync cannot be reached, once subscribers were told
	view    view                        // the state as corosync last described it
	subs    map[*subscriber]struct{}    // the live subscriptions
	pic     Picture                     // WithPicture: the picture as last published
	picSubs map[*picSubscriber]struct{} // the live picture subscriptions
	ended   []channelCloser             // ended subscriptions whose channels the pump has still to close
	attempt context.CancelFunc          // the pump's: ends its connection attempt in progress
	batch   []QuorumEvent               // the pump's: events of the dispatch in progress
	woken   bool                        // a wake-up is on its way to the pump, which clears it
}

// lifecycle is where a Client is in its life. It only moves forward.
type lifecycle uint8

const (
	// running: connected, or connecting.
	running lifecycle = iota
	// closing: Close was called, the private subscription ended, or the
	// Client failed (err says why); the pump is releasing everything.
	closing
	// exited: the pump has released everything and closed every channel;
	// nothing may wake it any more.
	exited
)

// view is the state as corosync last described it.
type view struct {
	quorate bool
	ring    RingID
	members []uint32  // shared by the engine only: subscribers get copies
	time    time.Time // when corosync last reported; zero before the first report
}

var (
	errNilContext = fmt.Errorf("%w: nil context: pass context.Background() or a context of your own", ErrInvalidParam)
	errZeroClient = fmt.Errorf("%w: this Client was not made by Open", ErrInvalidParam)
)

// Open connects to corosync with the backend chosen by WithBackend (or the
// default backend) and starts tracking. While corosync is starting or not
// running, Open keeps trying with backoff until it succeeds or ctx ends,
// unless WithoutReconnect is given. An access error (ErrAccess), an
// untrusted or unsupported server is returned at once. When ctx ends first,
// the error matches ctx.Err() and says what Open was waiting for.
//
// ctx bounds only the connecting: the Client lives until Close.
func Open(ctx context.Context, opts ...OpenOption) (*Client, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	set, err := buildSettings(openOptions(opts))
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := newClient(set, false)
	if err != nil {
		return nil, err
	}
	sess, err := c.firstConnect(ctx)
	if err != nil {
		c.poll.close()
		c.stop()
		return nil, err
	}
	c.sess = sess
	go c.run(sess)
	return c, nil
}

// newClient makes a Client whose pump has not started.
func newClient(set settings, private bool) (*Client, error) {
	if set.backend == nil {
		set.backend = defaultBackend()
	}
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	c := &Client{
		set:     set,
		private: private,
		poll:    p,
		done:    make(chan struct{}),
		subs:    make(map[*subscriber]struct{}),
		picSubs: make(map[*picSubscriber]struct{}),
	}
	c.notifyFn, c.voteNotifyFn = c.notify, c.voteNotify
	c.stopCtx, c.stop = context.WithCancel(context.Background())
	return c, nil
}

// firstConnect is Open's connecting, on the caller's goroutine.
func (c *Client) firstConnect(ctx context.Context) (*session, error) {
	var last error // the last failure that was not the context's
	for attempt := 0; ; attempt++ {
		sess, err := c.connect(ctx)
		switch {
		case err == nil:
			return sess, nil
		case ctx.Err() != nil:
			return nil, giveUp(ctx, last, err)
		case !c.set.reconnect || !retryable(err):
			return nil, err
		}
		last = err
		t := time.NewTimer(c.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, giveUp(ctx, last, nil)
		case <-t.C:
		}
	}
}

// giveUp says why Open (or Subscribe) stopped trying: the context's end,
// what it was waiting for (final, the attempt in progress, or nil between
// two attempts), and the last failed attempt before it, so that errors.Is
// finds the context's error and the last failure.
func giveUp(ctx context.Context, last, final error) error {
	var waiting string
	switch {
	case final == nil:
		// Between two attempts: the backoff after last's failure.
		waiting = "waiting to try again"
	case final.Error() == ctx.Err().Error():
		waiting = "corosync did not answer (is it frozen or overloaded?)"
	case errors.Is(final, ctx.Err()):
		waiting = strings.TrimPrefix(final.Error(), "quorum: ") + " (is corosync frozen or overloaded?)"
	default:
		waiting = strings.TrimPrefix(final.Error(), "quorum: ")
	}
	return &gaveUpError{ctx: ctx.Err(), waiting: waiting, last: last}
}

// gaveUpError is Open's error when its context ended first.
type gaveUpError struct {
	ctx     error  // the context's error
	waiting string // what the attempt in progress was waiting for
	last    error  // the attempt before, if one failed
}

func (e *gaveUpError) Error() string {
	s := "quorum: gave up connecting to corosync: " + e.ctx.Error() + "; " + e.waiting
	if e.last != nil {
		s += "; the attempt before failed: " + strings.TrimPrefix(e.last.Error(), "quorum: ")
	}
	return s
}

func (e *gaveUpError) Unwrap() []error {
	if e.last == nil {
		return []error{e.ctx}
	}
	return []error{e.ctx, e.last}
}

// Subscribe tries to connect once, within ctx, and returns:
//   - when corosync answers: the channel, with tracking started, so that
//     every change from then on is delivered;
//   - when corosync is not running or still starting: the channel all the
//     same, whose first event is EventDisconnected (Err matches
//     ErrConnectionLost: the state is unknown, report not-ready and wait
//     for corosync); the engine keeps trying in the background, then sends
//     EventReconnected and the snapshot. With WithoutReconnect it returns
//     the error instead;
//   - when corosync refuses this process (ErrAccess), or the server is
//     untrusted or not supported (ErrNotSupported): the error.
//
// What the channel delivers follows corosync's quorum_trackstart:
//   - TrackCurrent or TrackChanges: first a snapshot, a nodelist event then
//     a quorum event, both Initial.
//   - TrackChanges or TrackChangesOnly: then every change, each a nodelist
//     event followed by a quorum event for the same ring.
//   - TrackCurrent alone: the snapshot, then the channel closes.
//   - Zero or unknown flag bits: an error, before anything starts.
//
// After a lost connection every subscriber receives EventDisconnected, then
// (when the engine has reconnected) EventReconnected and a fresh snapshot.
//
// The engine owns the channel and closes it exactly once, after releasing
// everything the subscription holds (the connection included): when ctx is
// cancelled (promptly, with no further event), after a one-shot snapshot,
// or after a last event whose Err says why the stream ended (EventError, or
// EventDisconnected with WithoutReconnect).
//
// The engine never waits for a subscriber. One that does not keep up has its
// undelivered events coalesced into the newest one (state from the newest,
// Joined and Left accumulated, Coalesced counting what was merged); with
// WithLossless it gets every event or, once its buffer is full, a last event
// with ErrSlowConsumer.
func Subscribe(ctx context.Context, flags TrackFlags, opts ...Option) (<-chan QuorumEvent, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	if err := flags.validate(); err != nil {
		return nil, err
	}
	set, err := buildSettings(opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := newClient(set, true)
	if err != nil {
		return nil, err
	}
	sess, err := c.connect(ctx)
	switch {
	case err == nil:
		c.sess = sess
	case ctx.Err() != nil:
		err = giveUp(ctx, nil, err)
	case c.set.reconnect && retryable(err):
		// Not reachable now: the stream says so and the pump retries.
		c.down, err, sess = err, nil, nil
	}
	var ch <-chan QuorumEvent
	if err == nil {
		ch, err = c.subscribe(ctx, flags, set.lossless)
	}
	if err != nil {
		if sess != nil {
			sess.close()
		}
		c.poll.close()
		c.stop()
		return nil, err
	}
	go c.run(sess)
	return ch, nil
}

// Subscribe starts a subscription on the shared connection. See the
// package-level Subscribe for what the channel delivers. A subscription made
// while corosync cannot be reached starts with EventDisconnected, then gets
// EventReconnected and a snapshot (whatever its flags) once the Client has
// reconnected; its first snapshot, like every first snapshot, has empty
// Joined and Left. Cancelling ctx ends this subscription only; Close ends
// them all.
func (c *Client) Subscribe(ctx context.Context, flags TrackFlags, opts ...SubscribeOption) (<-chan QuorumEvent, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	if c.done == nil {
		return nil, errZeroClient
	}
	if err := flags.validate(); err != nil {
		return nil, err
	}
	set, err := buildSettings(subscribeOptions(opts))
	if err != nil {
		return nil, err
	}
	return c.subscribe(ctx, flags, set.lossless)
}

func (c *Client) subscribe(ctx context.Context, flags TrackFlags, lossless int) (<-chan QuorumEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stoppedLocked(); err != nil {
		return nil, err
	}
	s := newSubscriber(flags, lossless, c.sess == nil)
	c.subs[s] = struct{}{}
	s.stop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.end(s, nil)
		c.mu.Unlock()
	})
	switch {
	case c.sess == nil && c.down != nil:
		// corosync cannot be reached: say at once that the state is
		// unknown, and give the snapshot after reconnecting.
		s.snap = subWaiting
		c.push(s, c.unknownEvent(EventDisconnected, c.down))
	case c.sess != nil && c.sess.snap == snapDone && flags.wantsSnapshot():
		now := time.Now()
		c.push(s, c.snapshotEvent(EventNodeList, now))
		c.push(s, c.snapshotEvent(EventQuorum, now))
		s.snap = subLive
		if !flags.wantsChanges() {
			c.end(s, nil)
		}
	case c.sess != nil && c.sess.snap == snapDone:
		s.snap = subLive
	case flags.wantsSnapshot(): // a snapshot, or the first connection, is under way
		s.snap = subWaiting
	default:
		s.snap = subSkipping // corosync sends no snapshot for TrackChangesOnly
	}
	return s.ch, nil
}

// snapshotEvent builds a snapshot event from the current view.
func (c *Client) snapshotEvent(kind EventKind, now time.Time) QuorumEvent {
	return QuorumEvent{Time: now, Kind: kind, Initial: true, Quorate: c.view.quorate,
		RingID: c.view.ring, Members: c.view.members}
}

// unknownEvent builds an event the engine makes when corosync's state is not
// known (EventDisconnected, EventReconnected, EventError): Quorate is false,
// the ring and members are the last known.
func (c *Client) unknownEvent(kind EventKind, err error) QuorumEvent {
	return QuorumEvent{Time: time.Now(), Kind: kind, RingID: c.view.ring, Members: c.view.members, Err: err}
}

// stoppedLocked returns the error for calls on a Client that is no longer
// running: its terminal error, or ErrClosed.
func (c *Client) stoppedLocked() error {
	switch {
	case c.life == running:
		return nil
	case c.err != nil:
		return c.err
	}
	return ErrClosed
}

// Quorate asks corosync whether this node's partition is quorate
// (quorum_getquorate): a round trip, not the cached state (see State). It
// returns ctx's error if ctx ends first, even when corosync hangs; an error
// matching ErrConnectionLost while the Client is reconnecting or when the
// connection is lost during the call; ErrClosed after Close, also for a
// call that Close cut off.
func (c *Client) Quorate(ctx context.Context) (bool, error) {
	if ctx == nil {
		return false, errNilContext
	}
	if c.done == nil {
		return false, errZeroClient
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	c.mu.Lock()
	sess, err := c.sess, c.stoppedLocked()
	c.mu.Unlock()
	switch {
	case err != nil:
		return false, err
	case sess == nil:
		return false, fmt.Errorf("%w: reconnecting to corosync", ErrConnectionLost)
	}
	q, err := sess.conn.Quorate(ctx)
	if err == nil {
		return q, nil
	}
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return false, err
	}
	// Close and a lost connection end a request in flight by closing its
	// connection; what the backend then says is about the handle, not why.
	c.mu.Lock()
	stopped, lost := c.stoppedLocked(), c.sess != sess
	c.mu.Unlock()
	switch {
	case stopped != nil:
		return false, fmt.Errorf("quorum_getquorate was cut off: %w", stopped)
	case lost:
		return false, fmt.Errorf("quorum_getquorate was cut off: %w", ErrConnectionLost)
	}
	return false, fromInternal(err)
}

// State is a Client's view of corosync, as State returns it.
type State struct {
	// Connected reports that the Client is connected to corosync and has its
	// current state. When false the state is unknown: Quorate is false, and
	// RingID and Members are the last known (zero before the first).
	Connected bool
	// Quorate reports whether this node's partition has quorum.
	Quorate bool
	// RingID and Members describe the membership.
	RingID  RingID
	Members []uint32
	// Time is when corosync last reported a change (or the snapshot); zero
	// before the first report.
	Time time.Time
	// Err says why the state is unknown while corosync cannot be reached
	// (it matches ErrConnectionLost); nil otherwise.
	Err error
}

// State returns the Client's cached view of corosync: no round trip, and it
// never waits for corosync, so a health check may call it per request. The
// returned Members belong to the caller. After Close it returns ErrClosed,
// after a terminal failure that failure.
func (c *Client) State() (State, error) {
	if c.done == nil {
		return State{}, errZeroClient
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stoppedLocked(); err != nil {
		return State{}, err
	}
	st := State{RingID: c.view.ring, Members: slices.Clone(c.view.members), Time: c.view.time, Err: c.down}
	if st.Members == nil {
		st.Members = []uint32{}
	}
	if c.sess != nil && c.sess.snap == snapDone {
		st.Connected, st.Quorate = true, c.view.quorate
	}
	return st, nil
}

// Close ends every subscription (each gets a last EventError event whose Err
// is ErrClosed), closes the connection and waits for the pump to finish, so
// that everything is released when it returns. A request in flight returns
// an error matching ErrClosed. Close does not wait for a hung corosync. It
// is idempotent and safe from any goroutine; it always returns nil.
func (c *Client) Close() error {
	if c.done == nil {
		return nil
	}
	c.mu.Lock()
	if c.life == running {
		c.life = closing
		c.wakeLocked()
	}
	c.mu.Unlock()
	c.stop()
	<-c.done
	return nil
}

// wakeLocked makes the pump look at the Client's state. One wake-up at a
// time is enough: ten thousand cancelled subscriptions cost one system call.
func (c *Client) wakeLocked() {
	if c.life != exited && !c.woken {
		c.woken = true
		c.poll.wake()
	}
}
