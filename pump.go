package quorum

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// session is what the pump keeps of one connection: made when the
// connection is up and tracking, dropped when it is lost. The pump writes it
// with the Client's mu held; Subscribe, Quorate and State read it there.
type session struct {
	conn   Conn
	votes  voteConn    // WithPicture: votequorum and cmap; nil otherwise
	snap   snapState   // how far trackstart's snapshot has come
	resync bool        // the snapshot follows a loss: a view was known before it
	held   QuorumEvent // the snapshot's nodelist event, while snap is snapQuorum
	pic    picSession  // WithPicture: how far the picture is read
}

// snapState follows the snapshot that trackstart queues on a connection:
// first a nodelist, then a quorum notification.
type snapState uint8

const (
	snapNodelist snapState = iota // awaiting the snapshot's nodelist
	snapQuorum                    // awaiting the snapshot's quorum notification
	snapDone                      // the view is corosync's current state
)

// close releases the session's connections; it may run concurrently with
// requests on them, which it ends.
func (s *session) close() {
	if s.votes != nil {
		s.votes.Close()
	}
	s.conn.Close()
}

// run is the pump: the one goroutine that waits on the connection, reads
// it, reconnects, feeds every subscriber and closes every channel. sess is
// the connection made on the caller's goroutine, or nil when corosync could
// not be reached there.
func (c *Client) run(sess *session) {
	defer c.exit()
	for {
		if sess == nil {
			if sess = c.reconnect(); sess == nil {
				return
			}
		}
		err := c.serve(sess)
		c.mu.Lock()
		c.sess = nil // before Close, so that a request it cuts off knows why
		if c.life == running {
			c.loseLocked(err)
		}
		stop := c.life != running
		c.mu.Unlock()
		_ = c.poll.setConns()
		sess.close()
		if stop {
			return
		}
		sess = nil
	}
}

// serve dispatches sess until it fails (returning why) or the Client stops
// running (returning nil). With a picture, it re-reads votequorum between
// waits whenever the picture is stale and the connection's state settled.
func (c *Client) serve(sess *session) error {
	for {
		r, err := c.poll.wait(c.picDeadline(sess))
		if err != nil {
			return err
		}
		c.mu.Lock() // once per wake-up: the state check, the dispatch, the closing
		c.woken = false
		if c.life != running {
			c.mu.Unlock()
			return nil
		}
		if r.conn {
			err = c.dispatchLocked(sess)
		}
		if r.timedOut {
			c.picTimerLocked(sess)
		}
		c.closeEndedLocked()
		refresh := err == nil && c.picDueLocked(sess)
		c.mu.Unlock()
		// A re-read may find new notifications that make the picture
		// stale again (a new ring overtook it): then read again before
		// waiting, since nothing else would wake the pump for it.
		for refresh && err == nil {
			err = c.refreshPicture(sess)
			c.mu.Lock()
			c.closeEndedLocked() // a subscription that ended may have cut the re-read short
			refresh = c.life == running && c.picDueLocked(sess)
			c.mu.Unlock()
		}
		if err != nil {
			return err
		}
	}
}

// dispatchLocked reads what is queued on the session's connections and
// hands the events to the subscribers.
func (c *Client) dispatchLocked(sess *session) error {
	err := sess.conn.Dispatch(c.notifyFn)
	if err == nil && sess.votes != nil {
		err = fromInternal(sess.votes.Dispatch(c.voteNotifyFn))
	}
	if n := len(c.batch); n > 0 && sess.votes != nil {
		// A change whose quorum event has not come yet is half delivered.
		c.viewChangedLocked(sess, c.batch[n-1].Kind == EventNodeList)
	}
	c.flush()
	return err
}

// reconnect tries, after a backoff each time, until it has a tracking
// connection (returned) or the Client stops running (nil).
func (c *Client) reconnect() *session {
	for attempt := 0; ; {
		if !c.sleep(c.backoff(attempt)) {
			return nil
		}
		sess, interrupted, err := c.tryConnect()
		c.mu.Lock()
		switch {
		case c.life != running:
			c.mu.Unlock()
			if sess != nil {
				_ = c.poll.setConns()
				sess.close()
			}
			return nil
		case interrupted:
			// A subscription ended: close its channel, then try again
			// (after the shortest backoff).
			c.closeEndedLocked()
			c.mu.Unlock()
			attempt = 0
			continue
		case err == nil:
			sess.resync = !c.view.time.IsZero()
			c.sess = sess
			if c.down != nil {
				c.broadcast(c.unknownEvent(EventReconnected, nil))
				c.down = nil
			}
			c.mu.Unlock()
			return sess
		case !retryable(err):
			c.failLocked(err, EventError)
			c.mu.Unlock()
			return nil
		}
		c.downLocked(err)
		c.mu.Unlock()
		attempt++
	}
}

// tryConnect makes one connection attempt under a context that Close, and
// the end of a subscription, can cut short (then interrupted is set).
func (c *Client) tryConnect() (sess *session, interrupted bool, err error) {
	ctx, cancel := context.WithCancel(c.stopCtx)
	defer cancel()
	c.mu.Lock()
	c.attempt = cancel
	c.mu.Unlock()
	sess, err = c.connect(ctx)
	c.mu.Lock()
	c.attempt = nil
	c.mu.Unlock()
	return sess, err != nil && ctx.Err() != nil && c.stopCtx.Err() == nil, err
}

// sleep waits for d on the poller, closing the channels of subscriptions
// that end meanwhile. It returns false when the Client stops running.
func (c *Client) sleep(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		r, err := c.poll.wait(deadline)
		c.mu.Lock()
		c.woken = false
		if err != nil && c.life == running {
			c.failLocked(err, EventError)
		}
		ok := c.life == running
		c.closeEndedLocked()
		c.mu.Unlock()
		if !ok {
			return false
		}
		if r.timedOut {
			return true
		}
	}
}

// connect opens a connection, starts tracking on it (the snapshot is then
// queued on it) and makes the poller watch it; WithPicture, the same for
// votequorum and cmap.
func (c *Client) connect(ctx context.Context) (*session, error) {
	conn, err := c.set.backend.Connect(ctx, ConnectParams{TrustedUIDs: c.set.trustedUIDs})
	if err != nil {
		return nil, fromInternal(err)
	}
	sess := &session{conn: conn}
	if err = conn.TrackStart(ctx, TrackCurrent|TrackChanges); err == nil && c.set.picture {
		err = c.connectVotes(ctx, sess)
	}
	if err == nil {
		fds := []int{conn.Fd()}
		if sess.votes != nil {
			fds = append(fds, sess.votes.Fds()...)
		}
		err = c.poll.setConns(fds...)
	}
	if err != nil {
		sess.close()
		return nil, fromInternal(err)
	}
	return sess, nil
}

func retryable(err error) bool {
	return errors.Is(err, ErrTryAgain) || errors.Is(err, ErrConnectionLost)
}

// backoff returns the delay before retry n (from 0): doubling from the
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

// loseLocked handles the loss of the connection: the state is unknown from
// now on, and every subscriber is told.
func (c *Client) loseLocked(err error) {
	if !errors.Is(err, ErrConnectionLost) {
		err = fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	c.downLocked(err)
}

// downLocked records why corosync cannot be reached. The first time since
// the state was last known, every subscriber gets EventDisconnected; without
// reconnection that is the end.
func (c *Client) downLocked(err error) {
	c.view.quorate = false // unknown is never reported as quorate
	if c.set.picture {
		c.picDownLocked(err)
	}
	if !c.set.reconnect {
		c.failLocked(err, EventDisconnected)
		return
	}
	if c.down == nil {
		c.broadcast(c.unknownEvent(EventDisconnected, err))
		// After the outage every subscriber gets a snapshot, even one
		// that asked for changes only and so has none yet.
		for s := range c.subs {
			if s.snap == subSkipping {
				s.snap = subWaiting
			}
		}
	}
	c.down = err
}

// failLocked stops the Client for good: every subscription ends with an
// event of kind carrying err.
func (c *Client) failLocked(err error, kind EventKind) {
	c.err = err
	c.life = closing
	ev := c.unknownEvent(kind, err)
	for s := range c.subs {
		c.end(s, &ev)
	}
	c.endPicsLocked(err)
}

// closeEndedLocked closes the channels of the subscriptions that ended. A
// private Client's one channel waits for exit: it closes once the connection
// is released.
func (c *Client) closeEndedLocked() {
	if c.private {
		return
	}
	for i, s := range c.ended {
		s.closeCh()
		c.ended[i] = nil
	}
	c.ended = c.ended[:0]
}

// exit ends what is left and releases what the pump holds; the channels
// close last, so that a reader whose range loop ends finds everything
// released. It runs on the pump, as it returns.
func (c *Client) exit() {
	c.mu.Lock()
	if c.err == nil {
		final := c.unknownEvent(EventError, ErrClosed)
		for s := range c.subs {
			c.end(s, &final)
		}
		c.endPicsLocked(ErrClosed)
	}
	c.life = exited
	ended := c.ended
	c.ended = nil
	c.mu.Unlock()
	c.poll.close()
	c.stop()
	for _, s := range ended {
		s.closeCh()
	}
	close(c.done)
}

// notify handles one notification: it updates the view and queues the
// event for flush. It runs inside conn.Dispatch, with c.mu held, so it must
// never block.
func (c *Client) notify(n Notification) {
	s := c.sess
	initial := false
	switch {
	case s.snap == snapNodelist && n.Kind == EventNodeList:
		initial, s.snap = true, snapQuorum
	case s.snap != snapDone && n.Kind == EventQuorum:
		initial, s.snap = true, snapDone
	}
	now := time.Now()
	ev := QuorumEvent{Time: now, Kind: n.Kind, Initial: initial, Quorate: c.view.quorate,
		RingID: n.RingID, Members: n.Members}
	if n.Kind == EventQuorum {
		ev.Quorate = n.Quorate
	}
	switch {
	case initial && !s.resync:
		// corosync's own snapshot: nothing joined or left.
	case n.Kind == EventNodeList && !initial && (n.Joined != nil || n.Left != nil):
		ev.Joined, ev.Left = n.Joined, n.Left
	default:
		ev.Joined, ev.Left = diff(c.view.members, n.Members)
	}
	c.view = view{quorate: ev.Quorate, ring: n.RingID, members: n.Members, time: now}
	switch {
	case !initial:
		c.batch = append(c.batch, ev)
	case n.Kind == EventNodeList:
		// Held back until the snapshot's quorum notification, which
		// corosync queues right behind it, so that the snapshot's nodelist
		// event reports quorate like one served from the cached view.
		s.held = ev
	default:
		s.resync = false
		if s.held.Kind != 0 {
			s.held.Quorate = ev.Quorate
			c.batch = append(c.batch, s.held)
			s.held = QuorumEvent{}
		}
		c.batch = append(c.batch, ev)
	}
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
