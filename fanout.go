package quorum

// subscriber is one subscription's end of the engine. All its fields are
// guarded by the Client's mutex. Its channel is sent to, with that mutex
// held, by the pump and by Subscribe (a snapshot from the cached view), and
// closed by the pump alone, after end removed the subscriber; the user only
// reads it. A send never blocks: the engine checks room first, and only it
// can fill the channel.
type subscriber struct {
	ch    chan QuorumEvent
	flags TrackFlags
	limit int     // lossless buffer size; 0 coalesces
	next  uint64  // Seq of the next event delivered
	snap  subSnap // where it stands with the connection's snapshots
	ended bool    // removed from the Client; gets no more events

	stop func() bool // unregisters the context's AfterFunc
}

// subSnap says what a subscriber gets of a snapshot.
type subSnap uint8

const (
	// subWaiting: it has had no snapshot yet, and gets the next one with
	// Joined and Left empty; changes before it are not for it.
	subWaiting subSnap = iota
	// subSkipping: TrackChangesOnly, joined while the connection's
	// snapshot was under way; that snapshot is not for it.
	subSkipping
	// subLive: it has the view; it gets changes (if its flags ask) and the
	// snapshot after a reconnection, with Joined and Left against the view
	// before it.
	subLive
)

// Channel sizes of a coalescing subscriber: room for one change (a nodelist
// and a quorum event) before anything is merged, or, for one that joined
// while corosync was out of reach, for the disconnection, the reconnection
// and the snapshot, so that its first snapshot is never merged into them.
const (
	coalesceCap       = 2
	coalesceCapOutage = 4
)

func newSubscriber(flags TrackFlags, lossless int, outage bool) *subscriber {
	n := coalesceCap
	switch {
	case lossless > 0:
		// One more slot than the limit, so that the last event of the
		// stream (ErrSlowConsumer or another error) always fits.
		n = lossless + 1
	case outage:
		n = coalesceCapOutage
	}
	return &subscriber{ch: make(chan QuorumEvent, n), flags: flags, limit: lossless, next: 1}
}

// wants reports whether ev, an event of the connection, is for s.
func (s *subscriber) wants(ev *QuorumEvent) bool {
	if ev.Initial {
		return s.snap != subSkipping
	}
	return s.snap == subLive && s.flags.wantsChanges()
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
	for i := range c.batch {
		ev := &c.batch[i]
		words += len(ev.Members) + len(ev.Joined) + len(ev.Left)
	}
	for s := range c.subs {
		// One allocation per subscriber for all the lists of the batch.
		arena := make([]uint32, words)
		for i := range c.batch {
			ev := &c.batch[i]
			if s.wants(ev) {
				own := ev.ownIn(&arena)
				if ev.Initial && s.snap == subWaiting {
					own.Joined, own.Left = own.Joined[:0], own.Left[:0]
				}
				c.pushOwned(s, own)
			}
			if ev.Initial && ev.Kind == EventQuorum && !s.ended {
				// The snapshot is complete: a one-shot ends with it.
				s.snap = subLive
				if !s.flags.wantsChanges() {
					c.end(s, nil)
				}
			}
		}
	}
	clear(c.batch) // drop the references to the members arrays
	c.batch = c.batch[:0]
}

func (c *Client) broadcast(ev QuorumEvent) {
	for s := range c.subs {
		c.push(s, ev)
	}
}

// push delivers ev to s without ever blocking.
func (c *Client) push(s *subscriber, ev QuorumEvent) {
	c.pushOwned(s, ev.own())
}

// pushOwned is push for an event whose lists already belong to s.
func (c *Client) pushOwned(s *subscriber, ev QuorumEvent) {
	if s.ended {
		return
	}
	if s.limit == 0 {
		s.coalesce(ev)
		return
	}
	if len(s.ch) >= s.limit {
		// The newest state, but the stream ends here: not known any more.
		ev.Kind, ev.Err, ev.Quorate = EventError, ErrSlowConsumer, false
		c.end(s, &ev)
		return
	}
	ev.Seq = s.next
	s.next++
	s.ch <- ev
}

// end removes s from the Client and delivers final (if any) as its last
// event. The pump closes the channel: at its next wake-up, or for a private
// Client once the connection is released, which ending its one subscription
// starts. end runs with c.mu held.
func (c *Client) end(s *subscriber, final *QuorumEvent) {
	if s.ended {
		return
	}
	s.ended = true
	delete(c.subs, s)
	if s.stop != nil {
		s.stop()
	}
	if final != nil {
		ev := final.own()
		if s.limit == 0 {
			s.coalesce(ev)
		} else {
			ev.Seq = s.next
			s.next++
			s.ch <- ev // the reserved slot: len(s.ch) <= s.limit here
		}
	}
	c.retireLocked(s)
}

// channelCloser is an ended subscription whose channel the pump closes.
type channelCloser interface{ closeCh() }

func (s *subscriber) closeCh() { close(s.ch) }

// retireLocked queues the channel of s, just ended, for the pump to close,
// and makes the pump do it promptly.
func (c *Client) retireLocked(s channelCloser) {
	c.ended = append(c.ended, s)
	if c.private && c.life == running {
		c.life = closing
	}
	if c.attempt != nil {
		c.attempt() // a connection attempt must not hold the channel open
	}
	c.wakeLocked()
}

// coalesce sends ev, or, when the channel is full, replaces what it holds by
// one event merging all of it with ev.
func (s *subscriber) coalesce(ev QuorumEvent) {
	ev.Seq = s.next
	select {
	case s.ch <- ev:
		s.next++
		return
	default:
	}
	var acc QuorumEvent
	n := 0
drain:
	for {
		select {
		case old := <-s.ch:
			if n == 0 {
				acc = old
			} else {
				acc = merge(acc, old)
			}
			n++
		default:
			break drain
		}
	}
	if n == 0 { // the reader emptied it meanwhile
		s.ch <- ev
		s.next++
		return
	}
	acc = merge(acc, ev)
	s.ch <- acc
	s.next = acc.Seq + 1
}

// merge folds b, the newer event, into a: the state is b's (so an unknown
// state stays unknown), Joined and Left accumulate, and a's place in the
// sequence is kept.
func merge(a, b QuorumEvent) QuorumEvent {
	m := b
	m.Seq = a.Seq
	m.Initial = a.Initial || b.Initial
	m.Coalesced = a.Coalesced + b.Coalesced + 1
	m.Joined = union(a.Joined, b.Joined)
	m.Left = union(a.Left, b.Left)
	return m
}

func union(a, b []uint32) []uint32 {
	u := make([]uint32, len(a), len(a)+len(b))
	copy(u, a)
	for _, id := range b {
		if !contains(u, id) {
			u = append(u, id)
		}
	}
	return u[:len(u):len(u)]
}

// own returns ev with its lists copied into one new array, so that no two
// subscribers, nor the engine, share memory the receiver might modify.
func (ev QuorumEvent) own() QuorumEvent {
	buf := make([]uint32, len(ev.Members)+len(ev.Joined)+len(ev.Left))
	return ev.ownIn(&buf)
}

// ownIn is own with the lists copied to the front of *arena, which must be
// large enough; *arena is advanced past them. Each list is capped, so that
// an append by the receiver reallocates instead of overwriting the next.
func (ev *QuorumEvent) ownIn(arena *[]uint32) QuorumEvent {
	out := *ev
	m, j, l := len(ev.Members), len(ev.Joined), len(ev.Left)
	buf := (*arena)[:m+j+l]
	*arena = (*arena)[m+j+l:]
	copy(buf, ev.Members)
	copy(buf[m:], ev.Joined)
	copy(buf[m+j:], ev.Left)
	out.Members, out.Joined, out.Left = buf[:m:m], buf[m:m+j:m+j], buf[m+j:]
	return out
}
