package quorum

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Client is one connection to corosync's quorum service, shared by any
// number of subscribers. It tracks changes from the moment it opens, so it
// always knows the current state: a subscriber that joins later with
// TrackCurrent gets its snapshot from that state, with no round trip.
//
// A Client is safe for use by many goroutines. Close releases it.
type Client struct {
	set     settings
	private bool // owned by one package-level Subscribe: ends with it

	reqSem chan struct{} // serialises Quorate calls on the connection, honouring contexts

	poll    *poller
	stopCtx context.Context // ends the pump's own connection attempts on Close
	stop    context.CancelFunc
	done    chan struct{} // closed once the pump has released everything

	mu      sync.Mutex
	conn    Conn // nil while disconnected
	closing bool // Close was called, or the private subscription ended
	exited  bool // the pump has finished; poll is closed
	failed  error
	subs    map[*subscriber]struct{}
	view    view
	snap    snapState
	resync  bool          // the snapshot in progress follows a reconnection
	ended   []*subscriber // private Client: ended, channel still to close
	held    QuorumEvent   // the snapshot's nodelist event, until its quorum event
	holding bool
	batch   []queued // events of the dispatch in progress
}

// view is the state as corosync last described it.
type view struct {
	quorate bool
	ring    RingID
	members []uint32 // shared by the engine only: subscribers get copies
}

// snapState follows the snapshot that trackstart queued on the current
// connection: first a nodelist, then a quorum notification.
type snapState uint8

const (
	snapNone     snapState = iota // not connected
	snapNodelist                  // awaiting the snapshot's nodelist
	snapQuorum                    // awaiting the snapshot's quorum
	snapDone                      // the view is known
)

// Open connects to corosync with the backend chosen by WithBackend (or the
// default backend) and starts tracking. While corosync is starting or not
// running, Open keeps trying with backoff until it succeeds or ctx ends,
// unless WithoutReconnect is given. An access error (ErrAccess) or an
// untrusted server is returned at once.
//
// ctx bounds only the connecting: the Client lives until Close.
func Open(ctx context.Context, opts ...Option) (*Client, error) {
	set, err := buildSettings(opts, forOpen)
	if err != nil {
		return nil, err
	}
	return open(ctx, set, false)
}

func open(ctx context.Context, set settings, private bool) (*Client, error) {
	if set.backend == nil {
		set.backend = defaultBackend()
		if set.backend == nil {
			return nil, fmt.Errorf("%w: no corosync backend is built into this program "+
				"for this platform: choose one with WithBackend", ErrNotSupported)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &Client{
		set:     set,
		private: private,
		reqSem:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		subs:    make(map[*subscriber]struct{}),
	}
	conn, err := c.firstConnect(ctx)
	if err != nil {
		return nil, err
	}
	if c.poll, err = newPoller(); err == nil {
		err = c.poll.setConn(conn.Fd())
		if err != nil {
			c.poll.close()
		}
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.conn = conn
	c.snap = snapNodelist
	c.stopCtx, c.stop = context.WithCancel(context.Background())
	go c.run(conn)
	return c, nil
}

func (c *Client) firstConnect(ctx context.Context) (Conn, error) {
	var last error // the last failure that was not the context's
	for attempt := 0; ; attempt++ {
		conn, err := c.connect(ctx)
		switch {
		case err == nil:
			return conn, nil
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

// giveUp reports both the context's end and why corosync could not be
// reached before it, so that errors.Is finds either.
func giveUp(ctx context.Context, last, final error) error {
	if last == nil {
		if final != nil {
			return final
		}
		return ctx.Err()
	}
	return fmt.Errorf("quorum: gave up connecting to corosync: %w; last attempt: %w", ctx.Err(), last)
}

// connect opens a connection and starts tracking on it; the snapshot is
// then queued on it.
func (c *Client) connect(ctx context.Context) (Conn, error) {
	conn, err := c.set.backend.Connect(ctx, ConnectParams{TrustedUIDs: c.set.trustedUIDs})
	if err != nil {
		return nil, fromInternal(err)
	}
	if err := conn.TrackStart(ctx, TrackCurrent|TrackChanges); err != nil {
		conn.Close()
		return nil, fromInternal(err)
	}
	return conn, nil
}

func retryable(err error) bool {
	return errors.Is(err, ErrTryAgain) || errors.Is(err, ErrConnectionLost)
}

// backoff returns the delay before attempt n (from 0): doubling from the
// minimum up to the maximum, less a random part of up to half, so that many
// clients of a restarted corosync do not retry in step.
func (c *Client) backoff(n int) time.Duration {
	d := c.set.backoffMin
	for i := 0; i < n && d < c.set.backoffMax; i++ {
		d *= 2
	}
	d = min(d, c.set.backoffMax)
	return d - rand.N(d/2+1)
}

// Subscribe starts a subscription on the shared connection. See the
// package-level Subscribe for what the channel delivers; only subscription
// options (WithLossless) are accepted here. Cancelling ctx ends this
// subscription only; Close ends them all.
func (c *Client) Subscribe(ctx context.Context, flags TrackFlags, opts ...Option) (<-chan QuorumEvent, error) {
	if err := flags.validate(); err != nil {
		return nil, err
	}
	set, err := buildSettings(opts, forClientSubscribe)
	if err != nil {
		return nil, err
	}
	return c.subscribe(ctx, flags, set.lossless)
}

// Subscribe opens a private connection to corosync and returns a channel of
// its events; the connection lives as long as the subscription. It accepts
// every Option.
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
// everything the subscription holds: when ctx is cancelled (promptly, with
// no further event), after a one-shot snapshot, or after a last event whose
// Err says why the stream ended (EventError, or EventDisconnected with
// WithoutReconnect).
//
// The engine never waits for a subscriber. One that does not keep up has its
// undelivered events coalesced into the newest one (state from the newest,
// Joined and Left accumulated, Coalesced counting what was merged); with
// WithLossless it gets every event or, once its buffer is full, a last event
// with ErrSlowConsumer.
func Subscribe(ctx context.Context, flags TrackFlags, opts ...Option) (<-chan QuorumEvent, error) {
	if err := flags.validate(); err != nil {
		return nil, err
	}
	set, err := buildSettings(opts, forSubscribe)
	if err != nil {
		return nil, err
	}
	c, err := open(ctx, set, true)
	if err != nil {
		return nil, err
	}
	ch, err := c.subscribe(ctx, flags, set.lossless)
	if err != nil {
		c.Close()
		return nil, err
	}
	return ch, nil
}

func (c *Client) subscribe(ctx context.Context, flags TrackFlags, lossless int) (<-chan QuorumEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := newSubscriber(flags, lossless)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return nil, ErrClosed
	}
	if c.failed != nil {
		return nil, c.failed
	}
	c.subs[s] = struct{}{}
	s.stop = context.AfterFunc(ctx, func() { c.cancel(s) })
	switch {
	case flags.wantsSnapshot() && c.snap == snapDone:
		now := time.Now()
		c.push(s, c.snapshotEvent(EventNodeList, now))
		c.push(s, c.snapshotEvent(EventQuorum, now))
		if !flags.wantsChanges() {
			c.end(s, nil)
		}
	case flags.wantsSnapshot():
		s.needSnapshot = true
	case c.snap == snapNodelist || c.snap == snapQuorum:
		s.skipSnapshot = true // corosync sends no snapshot for TrackChangesOnly
	}
	return s.ch, nil
}

// snapshotEvent builds a snapshot event from the current view.
func (c *Client) snapshotEvent(kind EventKind, now time.Time) QuorumEvent {
	return QuorumEvent{Time: now, Kind: kind, Initial: true, Quorate: c.view.quorate,
		RingID: c.view.ring, Members: c.view.members}
}

// cancel runs when a subscriber's context ends.
func (c *Client) cancel(s *subscriber) {
	c.mu.Lock()
	c.end(s, nil)
	c.mu.Unlock()
}

// Quorate asks corosync whether this node's partition is quorate
// (quorum_getquorate): a round trip, not the cached state. It returns
// ctx's error if ctx ends first, even when corosync hangs; an error
// matching ErrConnectionLost while the engine is reconnecting; ErrClosed
// after Close.
func (c *Client) Quorate(ctx context.Context) (bool, error) {
	c.mu.Lock()
	conn, closing, failed := c.conn, c.closing, c.failed
	c.mu.Unlock()
	switch {
	case closing:
		return false, ErrClosed
	case failed != nil:
		return false, failed
	case conn == nil:
		return false, fmt.Errorf("%w: reconnecting to corosync", ErrConnectionLost)
	}
	select {
	case c.reqSem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-c.reqSem }()
	q, err := conn.Quorate(ctx)
	return q, fromInternal(err)
}

// Close ends every subscription (each gets a last EventError event whose Err
// is ErrClosed), closes the connection and waits for the pump to finish. It
// does not wait for a hung corosync. Close is idempotent and safe from any
// goroutine; it always returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		c.wakeLocked()
	}
	c.mu.Unlock()
	c.stop()
	<-c.done
	return nil
}

func (c *Client) wakeLocked() {
	if !c.exited {
		c.poll.wake()
	}
}

// run is the pump: the one goroutine that waits on the connection, reads
// it, reconnects, and feeds every subscriber.
func (c *Client) run(conn Conn) {
	defer c.shutdown()
	for conn != nil {
		err := c.serve(conn)
		c.mu.Lock()
		c.conn = nil
		c.mu.Unlock()
		if perr := c.poll.setConn(-1); perr != nil && err == nil {
			err = perr
		}
		conn.Close()
		if c.isClosing() {
			return
		}
		c.mu.Lock()
		c.lostLocked(err)
		c.mu.Unlock()
		if !c.set.reconnect {
			return
		}
		conn = c.reconnect()
	}
}

// serve dispatches conn until it fails (returning why) or the client closes
// (returning nil).
func (c *Client) serve(conn Conn) error {
	notify := c.notify // one method value, not one per dispatch
	for {
		r, err := c.poll.wait(time.Time{})
		if err != nil {
			return err
		}
		c.mu.Lock() // once per wake-up: the closing check and the dispatch
		if c.closing {
			c.mu.Unlock()
			return nil
		}
		if r.conn {
			err = conn.Dispatch(notify)
			c.flush()
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

func (c *Client) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// reconnect tries until it has a tracking connection (returned) or the
// client closes or fails for good (nil).
func (c *Client) reconnect() Conn {
	for attempt := 0; ; attempt++ {
		deadline := time.Now().Add(c.backoff(attempt))
		for {
			r, err := c.poll.wait(deadline)
			if err != nil {
				c.mu.Lock()
				c.failLocked(err)
				c.mu.Unlock()
				return nil
			}
			if c.isClosing() {
				return nil
			}
			if r.timedOut {
				break
			}
		}
		conn, err := c.connect(c.stopCtx)
		if err == nil {
			if err = c.poll.setConn(conn.Fd()); err != nil {
				conn.Close()
			}
		}
		c.mu.Lock()
		switch {
		case c.closing:
			c.mu.Unlock()
			if conn != nil && err == nil {
				c.poll.setConn(-1)
				conn.Close()
			}
			return nil
		case err == nil:
			c.conn = conn
			c.snap = snapNodelist
			c.resync = true
			c.broadcast(QuorumEvent{Time: time.Now(), Kind: EventReconnected,
				RingID: c.view.ring, Members: c.view.members})
			c.mu.Unlock()
			return conn
		case !retryable(err):
			c.failLocked(err)
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
	}
}

// lostLocked tells every subscriber that the connection is gone.
func (c *Client) lostLocked(err error) {
	if !errors.Is(err, ErrConnectionLost) {
		err = fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	c.snap = snapNone
	c.holding = false
	c.view.quorate = false // unknown is never reported as quorate
	ev := QuorumEvent{Time: time.Now(), Kind: EventDisconnected, RingID: c.view.ring,
		Members: c.view.members, Err: err}
	if !c.set.reconnect {
		c.failed = err
		for s := range c.subs {
			c.end(s, &ev)
		}
		return
	}
	c.broadcast(ev)
}

// failLocked ends every subscription with a terminal error.
func (c *Client) failLocked(err error) {
	c.failed = err
	ev := QuorumEvent{Time: time.Now(), Kind: EventError, RingID: c.view.ring,
		Members: c.view.members, Err: err}
	for s := range c.subs {
		c.end(s, &ev)
	}
}

func (c *Client) broadcast(ev QuorumEvent) {
	for s := range c.subs {
		c.push(s, ev)
	}
}

// shutdown releases what the pump holds and closes the channels that are
// still open. It runs on the pump goroutine, last.
func (c *Client) shutdown() {
	c.mu.Lock()
	c.exited = true
	c.private = false // from here on, end closes channels itself
	final := QuorumEvent{Time: time.Now(), Kind: EventError, RingID: c.view.ring,
		Members: c.view.members, Err: ErrClosed}
	for s := range c.subs {
		c.end(s, &final)
	}
	for _, s := range c.ended {
		if !s.closed {
			s.closed = true
			close(s.ch)
		}
	}
	c.ended = nil
	c.mu.Unlock()
	c.poll.close()
	c.stop()
	close(c.done)
}

// notify handles one notification: it updates the view and queues the
// event for flush. It runs inside conn.Dispatch, with c.mu held, so it must
// never block.
func (c *Client) notify(n Notification) {
	initial := false
	switch {
	case c.snap == snapNodelist && n.Kind == EventNodeList:
		initial, c.snap = true, snapQuorum
	case (c.snap == snapNodelist || c.snap == snapQuorum) && n.Kind == EventQuorum:
		initial, c.snap = true, snapDone
	}
	ev := QuorumEvent{Time: time.Now(), Kind: n.Kind, Initial: initial, Quorate: c.view.quorate,
		RingID: n.RingID, Members: n.Members}
	if n.Kind == EventQuorum {
		ev.Quorate = n.Quorate
	}
	switch {
	case initial && !c.resync:
		// corosync's own snapshot: nothing joined or left.
	case n.Kind == EventNodeList && !initial && (n.Joined != nil || n.Left != nil):
		ev.Joined, ev.Left = n.Joined, n.Left
	default:
		ev.Joined, ev.Left = diff(c.view.members, n.Members)
	}
	c.view = view{quorate: ev.Quorate, ring: n.RingID, members: n.Members}
	if !initial {
		c.deliver(ev, false)
		return
	}
	if n.Kind == EventNodeList {
		// Held back until the snapshot's quorum notification, which
		// corosync queues right behind it, so that the snapshot's nodelist
		// event reports quorate like one served from the cached view.
		c.held, c.holding = ev, true
		return
	}
	c.resync = false
	if c.holding {
		c.held.Quorate = ev.Quorate
		c.deliver(c.held, false)
		c.holding = false
	}
	c.deliver(ev, true)
}

// queued is an event awaiting fan-out. snapEnd marks the last event of a
// snapshot: one-shot subscriptions end after it.
type queued struct {
	ev      QuorumEvent
	snapEnd bool
}

// deliver queues ev for fan-out at the end of the current dispatch.
func (c *Client) deliver(ev QuorumEvent, snapEnd bool) {
	c.batch = append(c.batch, queued{ev, snapEnd})
}

// flush hands the events of one dispatch to every subscriber they are for.
// It goes subscriber by subscriber rather than event by event, so that a
// change's nodelist and quorum events reach a waiting reader together and
// wake it once.
func (c *Client) flush() {
	if len(c.batch) == 0 {
		return
	}
	words := 0
	for _, q := range c.batch {
		words += len(q.ev.Members) + len(q.ev.Joined) + len(q.ev.Left)
	}
	for s := range c.subs {
		// One allocation per subscriber for all the lists of the batch.
		arena := make([]uint32, words)
		for _, q := range c.batch {
			ev := q.ev
			switch {
			case ev.Initial && s.skipSnapshot, !ev.Initial && s.needSnapshot,
				!ev.Initial && !s.flags.wantsChanges():
			default:
				c.pushOwned(s, ev.ownIn(&arena))
			}
			if q.snapEnd && !s.ended {
				s.needSnapshot, s.skipSnapshot = false, false
				if !s.flags.wantsChanges() {
					c.end(s, nil)
				}
			}
		}
	}
	clear(c.batch) // drop the references to the members arrays
	c.batch = c.batch[:0]
}

// diff returns the ids in b but not a, and in a but not b, in their order.
func diff(a, b []uint32) (joined, left []uint32) {
	for _, id := range b {
		if !contains(a, id) {
			joined = append(joined, id)
		}
	}
	for _, id := range a {
		if !contains(b, id) {
			left = append(left, id)
		}
	}
	return joined, left
}

func contains(s []uint32, id uint32) bool {
	for _, x := range s {
		if x == id {
			return true
		}
	}
	return false
}
