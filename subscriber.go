package quorum

// subscriber is one subscription's end of the engine. All its fields are
// guarded by the Client's mutex; the channel is written only by the engine
// (with that mutex held) and read only by the user, so a send never blocks:
// the engine checks room first, and only it can fill the channel.
type subscriber struct {
	ch    chan QuorumEvent
	flags TrackFlags
	limit int    // lossless buffer size; 0 coalesces
	next  uint64 // Seq of the next event delivered

	needSnapshot bool // wants a snapshot that has not yet come
	skipSnapshot bool // TrackChangesOnly: the snapshot in progress is not for it
	ended        bool // removed from the Client; gets no more events
	closed       bool // ch is closed

	stop func() bool // unregisters the context's AfterFunc
}

// coalesceCap is the channel size of a coalescing subscriber: room for one
// change (a nodelist and a quorum event) before anything is merged.
const coalesceCap = 2

func newSubscriber(flags TrackFlags, lossless int) *subscriber {
	n := coalesceCap
	if lossless > 0 {
		// One more slot than the limit, so that the last event of the
		// stream (ErrSlowConsumer or another error) always fits.
		n = lossless + 1
	}
	return &subscriber{ch: make(chan QuorumEvent, n), flags: flags, limit: lossless, next: 1}
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
		ev.Kind, ev.Err = EventError, ErrSlowConsumer
		c.end(s, &ev)
		return
	}
	ev.Seq = s.next
	s.next++
	s.ch <- ev
}

// end removes s from the Client, delivers final (if any) as its last event,
// and closes its channel; on a private Client the pump closes the channel
// instead, once the connection is released. end runs with c.mu held.
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
	if c.private {
		c.ended = append(c.ended, s)
		if !c.closing {
			c.closing = true
			c.wakeLocked()
		}
		return
	}
	s.closed = true
	close(s.ch)
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

// merge folds b, the newer event, into a: the state is b's, Joined and Left
// accumulate, and a's place in the sequence is kept.
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
func (ev QuorumEvent) ownIn(arena *[]uint32) QuorumEvent {
	m, j, l := len(ev.Members), len(ev.Joined), len(ev.Left)
	buf := (*arena)[:m+j+l]
	*arena = (*arena)[m+j+l:]
	copy(buf, ev.Members)
	copy(buf[m:], ev.Joined)
	copy(buf[m+j:], ev.Left)
	ev.Members, ev.Joined, ev.Left = buf[:m:m], buf[m:m+j:m+j], buf[m+j:]
	return ev
}
