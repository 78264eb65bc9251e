//go:build linux

package quorum_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corosync-go/quorum"
	"github.com/corosync-go/quorum/internal/testcluster"
)

// The conformance suite runs one table of scenarios against the simulated
// cluster and against every real backend on a real 5-node corosync cluster,
// and asserts the same event sequence on each: kinds, quorate, members,
// joined and left, with ring ids checked by order and by their node (the
// lowest member), never by value. Where the simulation and corosync differ,
// the simulation is what gets fixed.

const conformanceNodes = 5

// env is a cluster the scenarios drive: the simulated one or a real one.
type env interface {
	// backend connects a client to node i's corosync.
	backend(i int) quorum.Backend
	kill(t *testing.T, i int)
	start(t *testing.T, i int)
	// cut isolates node i from every other node; heal undoes it.
	cut(t *testing.T, i int)
	heal(t *testing.T, i int)
	freeze(t *testing.T, i int)
	thaw(t *testing.T, i int)
	// view is node i's view as corosync-quorumtool -s shows it.
	view(t *testing.T, i int) (quorate bool, members []uint32)
	// restart kills node i's corosync and starts it again before the
	// others notice.
	restart(t *testing.T, i int)
	// reform makes the cluster form a new ring with the same members, by
	// holding node i until the others lose the token.
	reform(t *testing.T, i int)
	// setExpected is corosync-quorumtool -e on node i.
	setExpected(t *testing.T, i int, votes uint32)
	// wait is how long a change may take to show up before it is a failure.
	wait() time.Duration
	// asUser checks access for a user that corosync does not list, then
	// lists it and checks again.
	asUser(t *testing.T)
	// modelV0 reports whether clients get quorum model V0 (corosync before
	// 3.1), which has no joined and left lists.
	modelV0() bool
}

type scenario struct {
	name string
	run  func(t *testing.T, e env)
}

// stream reads one subscription and checks each event against what the
// scenario expects.
type stream struct {
	t    *testing.T
	ch   <-chan quorum.QuorumEvent
	wait time.Duration
	seq  uint64
	ring quorum.RingID // of the last nodelist or quorum event
	// reforms skips rings re-formed with unchanged members (see
	// testcluster.Reformed), which a real corosync forms at times. The
	// simulation forms one only on SimCluster.Reform, so its streams stay
	// strict.
	reforms  bool
	last     quorum.QuorumEvent // the last nodelist or quorum event read
	reformed quorum.RingID      // the last ring skipped as a re-formation
}

func subscribe(t *testing.T, e env, i int, flags quorum.TrackFlags, opts ...quorum.Option) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts = append([]quorum.Option{quorum.WithBackend(e.backend(i)), quorum.WithLossless(64), fast}, opts...)
	ch, err := quorum.Subscribe(ctx, flags, opts...)
	if err != nil {
		cancel()
		t.Fatalf("Subscribe on node %d: %v", i, err)
	}
	s := newStream(t, e, ch)
	t.Cleanup(func() {
		cancel()
		for range ch {
		}
	})
	return s
}

func newStream(t *testing.T, e env, ch <-chan quorum.QuorumEvent) *stream {
	_, real := e.(*realEnv)
	return &stream{t: t, ch: ch, wait: e.wait(), reforms: real}
}

// next reads the next event, skipping re-formed rings where they are
// allowed. A scenario that waits for such a ring turns skipping off, so a
// skip never hides an event a scenario waits for.
func (s *stream) next() quorum.QuorumEvent {
	s.t.Helper()
	deadline := time.After(s.wait)
	for {
		select {
		case ev, ok := <-s.ch:
			if !ok {
				s.t.Fatal("the stream closed; want an event")
			}
			s.seq++
			if ev.Seq != s.seq {
				s.t.Fatalf("seq %d, want %d: %v", ev.Seq, s.seq, ev)
			}
			if s.reformation(ev) {
				s.t.Logf("skipped a ring re-formed with the same members: %v", ev)
				continue
			}
			if ev.Kind == quorum.EventNodeList || ev.Kind == quorum.EventQuorum {
				s.last = ev
			}
			return ev
		case <-deadline:
			s.t.Fatalf("no event within %v", s.wait)
		}
		return quorum.QuorumEvent{}
	}
}

func (s *stream) expect(kind quorum.EventKind, initial, quorate bool, members, joined, left []uint32) quorum.QuorumEvent {
	s.t.Helper()
	ev := s.next()
	want(s.t, ev, kind, initial, quorate, members, joined, left)
	s.checkRing(ev)
	return ev
}

// reformation tells whether ev belongs to a ring that changed nothing: its
// nodelist event with nothing joined or left, then its quorum event with
// quorate unchanged.
func (s *stream) reformation(ev quorum.QuorumEvent) bool {
	if !s.reforms || ev.Initial || ev.Quorate != s.last.Quorate {
		return false
	}
	switch ev.Kind {
	case quorum.EventNodeList:
		if testcluster.Reformed(s.last.Members, ev.Members, ev.Joined, ev.Left) {
			s.reformed = ev.RingID
			return true
		}
	case quorum.EventQuorum:
		return ev.RingID == s.reformed && slices.Equal(ev.Members, s.last.Members)
	}
	return false
}

// checkRing: a ring is named after its lowest member, a quorum event
// belongs to the ring of the nodelist before it, and a new ring's sequence
// number is larger than the last one's.
func (s *stream) checkRing(ev quorum.QuorumEvent) {
	s.t.Helper()
	if ev.Kind != quorum.EventNodeList && ev.Kind != quorum.EventQuorum {
		return
	}
	if len(ev.Members) > 0 && ev.RingID.NodeID != slices.Min(ev.Members) {
		s.t.Fatalf("ring %v is not named after the lowest member: %v", ev.RingID, ev)
	}
	switch {
	case ev.Kind == quorum.EventQuorum && s.ring != (quorum.RingID{}) && ev.RingID != s.ring && !ev.Initial:
		s.t.Fatalf("quorum event for ring %v after nodelist of ring %v", ev.RingID, s.ring)
	case ev.Kind == quorum.EventNodeList && !ev.Initial && ev.RingID.Seq <= s.ring.Seq:
		s.t.Fatalf("ring seq went from %v to %v", s.ring, ev.RingID)
	}
	s.ring = ev.RingID
}

func (s *stream) closed() {
	s.t.Helper()
	select {
	case ev, ok := <-s.ch:
		if ok {
			s.t.Fatalf("want the stream closed, got %v", ev)
		}
	case <-time.After(s.wait):
		s.t.Fatal("the stream did not close")
	}
}

// snapshot expects the snapshot of a full, quorate cluster.
func (s *stream) snapshot() {
	s.t.Helper()
	s.expect(quorum.EventNodeList, true, true, all5, none, none)
	s.expect(quorum.EventQuorum, true, true, all5, none, none)
}

func ids(v ...uint32) []uint32 { return v }

var scenarios = []scenario{
	{"snapshot flags", func(t *testing.T, e env) {
		for _, f := range []quorum.TrackFlags{quorum.TrackCurrent, quorum.TrackChanges, quorum.TrackCurrent | quorum.TrackChanges,
			quorum.TrackCurrent | quorum.TrackChangesOnly} {
			s := subscribe(t, e, 1, f)
			s.snapshot()
			if f == quorum.TrackCurrent {
				s.closed()
			}
		}
	}},
	{"changes only", func(t *testing.T, e env) {
		s := subscribe(t, e, 1, quorum.TrackChangesOnly)
		e.kill(t, 5)
		s.expect(quorum.EventNodeList, false, true, ids(1, 2, 3, 4), none, ids(5))
		s.expect(quorum.EventQuorum, false, true, ids(1, 2, 3, 4), none, none)
	}},
	{"leave, quorum loss, rejoin", func(t *testing.T, e env) {
		s := subscribe(t, e, 1, quorum.TrackCurrent|quorum.TrackChanges)
		s.snapshot()
		e.kill(t, 5)
		s.expect(quorum.EventNodeList, false, true, ids(1, 2, 3, 4), none, ids(5))
		s.expect(quorum.EventQuorum, false, true, ids(1, 2, 3, 4), none, none)
		e.kill(t, 4)
		s.expect(quorum.EventNodeList, false, true, ids(1, 2, 3), none, ids(4))
		s.expect(quorum.EventQuorum, false, true, ids(1, 2, 3), none, none)
		e.kill(t, 3)
		s.expect(quorum.EventNodeList, false, true, ids(1, 2), none, ids(3))
		s.expect(quorum.EventQuorum, false, false, ids(1, 2), none, none)
		// Lowering expected votes regains quorum with no membership
		// change: a quorum event comes alone.
		e.setExpected(t, 1, 2)
		s.expect(quorum.EventQuorum, false, true, ids(1, 2), none, none)
		e.start(t, 3)
		s.expect(quorum.EventNodeList, false, true, ids(1, 2, 3), ids(3), none)
		s.expect(quorum.EventQuorum, false, true, ids(1, 2, 3), none, none)
	}},
	{"expected votes stay in their partition", func(t *testing.T, e env) {
		// corosync-quorumtool -e is a cluster message: it reaches the
		// issuing node's partition and no other, so two partitions of one
		// vote each cannot both become quorate.
		s4 := subscribe(t, e, 4, quorum.TrackCurrent|quorum.TrackChanges)
		s5 := subscribe(t, e, 5, quorum.TrackCurrent|quorum.TrackChanges)
		s4.snapshot()
		s5.snapshot()
		e.cut(t, 4)
		s4.expect(quorum.EventNodeList, false, true, ids(4), none, ids(1, 2, 3, 5))
		s4.expect(quorum.EventQuorum, false, false, ids(4), none, none)
		s5.expect(quorum.EventNodeList, false, true, ids(1, 2, 3, 5), none, ids(4))
		s5.expect(quorum.EventQuorum, false, true, ids(1, 2, 3, 5), none, none)
		e.cut(t, 5)
		s5.expect(quorum.EventNodeList, false, true, ids(5), none, ids(1, 2, 3))
		s5.expect(quorum.EventQuorum, false, false, ids(5), none, none)
		e.setExpected(t, 4, 1)
		s4.expect(quorum.EventQuorum, false, true, ids(4), none, none)
		if q, _ := e.view(t, 5); q {
			t.Fatal("node 5 became quorate with the expected votes set in node 4's partition")
		}
		// Merged, the partitions agree on the votes present: 5 of 5.
		e.heal(t, 4)
		s4.expect(quorum.EventNodeList, false, true, ids(1, 2, 3, 4), ids(1, 2, 3), none)
		s4.expect(quorum.EventQuorum, false, true, ids(1, 2, 3, 4), none, none)
		e.heal(t, 5)
		s5.expect(quorum.EventNodeList, false, false, all5, ids(1, 2, 3, 4), none)
		s5.expect(quorum.EventQuorum, false, true, all5, none, none)
		s4.expect(quorum.EventNodeList, false, true, all5, ids(5), none)
		s4.expect(quorum.EventQuorum, false, true, all5, none, none)
		// Had the merged cluster kept 1 expected vote, a lone node would
		// still be quorate; with 5 it is not.
		e.cut(t, 4)
		s4.expect(quorum.EventNodeList, false, true, ids(4), none, ids(1, 2, 3, 5))
		s4.expect(quorum.EventQuorum, false, false, ids(4), none, none)
	}},
	{"partition and heal", func(t *testing.T, e env) {
		s1 := subscribe(t, e, 1, quorum.TrackCurrent|quorum.TrackChanges)
		s4 := subscribe(t, e, 4, quorum.TrackCurrent|quorum.TrackChanges)
		s1.snapshot()
		s4.snapshot()
		e.cut(t, 4)
		s1.expect(quorum.EventNodeList, false, true, ids(1, 2, 3, 5), none, ids(4))
		s1.expect(quorum.EventQuorum, false, true, ids(1, 2, 3, 5), none, none)
		s4.expect(quorum.EventNodeList, false, true, ids(4), none, ids(1, 2, 3, 5))
		s4.expect(quorum.EventQuorum, false, false, ids(4), none, none)
		e.heal(t, 4)
		s1.expect(quorum.EventNodeList, false, true, all5, ids(4), none)
		s1.expect(quorum.EventQuorum, false, true, all5, none, none)
		s4.expect(quorum.EventNodeList, false, false, all5, ids(1, 2, 3, 5), none)
		s4.expect(quorum.EventQuorum, false, true, all5, none, none)
	}},
	{"ring re-formed, same members", func(t *testing.T, e env) {
		s1 := subscribe(t, e, 1, quorum.TrackCurrent|quorum.TrackChanges)
		s5 := subscribe(t, e, 5, quorum.TrackCurrent|quorum.TrackChanges)
		s1.snapshot()
		s5.snapshot()
		s1.reforms, s5.reforms = false, false // this ring is the point
		e.reform(t, 5)
		for _, s := range []*stream{s1, s5} {
			nl := s.expect(quorum.EventNodeList, false, true, all5, none, none)
			q := s.expect(quorum.EventQuorum, false, true, all5, none, none)
			if q.RingID != nl.RingID {
				t.Fatalf("quorum event of ring %v after the nodelist of %v", q.RingID, nl.RingID)
			}
		}
	}},
	{"restarted before noticed", func(t *testing.T, e env) {
		s1 := subscribe(t, e, 1, quorum.TrackCurrent|quorum.TrackChanges)
		s5 := subscribe(t, e, 5, quorum.TrackCurrent|quorum.TrackChanges)
		s1.snapshot()
		s5.snapshot()
		e.restart(t, 5)
		if e.modelV0() {
			// V0 cannot tell that node 5 left and came back: the new
			// ring has the same members and nothing joined or left.
			s1.reforms = false
			s1.expect(quorum.EventNodeList, false, true, all5, none, none)
		} else {
			s1.expect(quorum.EventNodeList, false, true, all5, ids(5), ids(5))
		}
		s1.expect(quorum.EventQuorum, false, true, all5, none, none)
		if ev := s5.next(); ev.Kind != quorum.EventDisconnected || !errors.Is(ev.Err, quorum.ErrConnectionLost) {
			t.Fatalf("node 5's subscriber after its corosync restarted: %v", ev)
		}
		want(t, s5.next(), quorum.EventReconnected, false, false, all5, none, none)
		settles(t, e, s5, 5)
	}},
	{"second trackstart", func(t *testing.T, e env) {
		ctx, cancel := context.WithTimeout(context.Background(), e.wait())
		defer cancel()
		conn, err := e.backend(1).Connect(ctx, quorum.ConnectParams{})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.TrackStart(ctx, quorum.TrackChanges); err != nil {
			t.Fatal(err)
		}
		err = conn.TrackStart(ctx, quorum.TrackCurrent)
		var qe *quorum.Error
		if !errors.Is(err, quorum.ErrExist) || !errors.As(err, &qe) || qe.Code.String() != "CS_ERR_EXIST" {
			t.Fatalf("second trackstart: %v", err)
		}
		// Both snapshots arrive all the same.
		got := dispatchN(t, conn, 4, e.wait())
		for i, kind := range []quorum.EventKind{quorum.EventNodeList, quorum.EventQuorum, quorum.EventNodeList, quorum.EventQuorum} {
			if got[i].Kind != kind || !slices.Equal(got[i].Members, all5) {
				t.Fatalf("notification %d: %+v", i, got[i])
			}
		}
	}},
	{"slow subscriber", func(t *testing.T, e env) {
		cl, err := quorum.Open(context.Background(), quorum.WithBackend(e.backend(1)))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		slow, _ := cl.Subscribe(context.Background(), quorum.TrackCurrent|quorum.TrackChanges)
		ch, _ := cl.Subscribe(context.Background(), quorum.TrackCurrent|quorum.TrackChanges, quorum.WithLossless(64))
		witness := newStream(t, e, ch)
		witness.snapshot()
		e.kill(t, 5)
		witness.expect(quorum.EventNodeList, false, true, ids(1, 2, 3, 4), none, ids(5))
		witness.expect(quorum.EventQuorum, false, true, ids(1, 2, 3, 4), none, none)
		e.kill(t, 4)
		witness.expect(quorum.EventNodeList, false, true, ids(1, 2, 3), none, ids(4))
		witness.expect(quorum.EventQuorum, false, true, ids(1, 2, 3), none, none)
		// The slow subscriber read nothing. Its channel holds two events:
		// whenever a third came, everything was merged into one, so the
		// first stands for all but the last of what the witness read
		// (re-formed rings included). The witness may have its events
		// while the engine still hands them to the slow one: State waits
		// for the engine's lock, which the hand-out holds.
		if _, err := cl.State(); err != nil {
			t.Fatal(err)
		}
		first, second := <-slow, <-slow
		if first.Seq != 1 || !first.Initial || first.Kind != quorum.EventNodeList || !first.Quorate ||
			!slices.Equal(first.Members, ids(1, 2, 3)) || !slices.Equal(first.Left, ids(5, 4)) ||
			len(first.Joined) != 0 || uint64(first.Coalesced) != witness.seq-2 {
			t.Fatalf("slow subscriber's first event: %v", first)
		}
		if second.Seq != 2 || second.Kind != quorum.EventQuorum || !second.Quorate ||
			!slices.Equal(second.Members, ids(1, 2, 3)) || second.Coalesced != 0 {
			t.Fatalf("slow subscriber's second event: %v", second)
		}
	}},
	{"local corosync restarted", func(t *testing.T, e env) {
		s := subscribe(t, e, 1, quorum.TrackCurrent|quorum.TrackChanges)
		s.snapshot()
		e.kill(t, 1)
		ev := s.next()
		if ev.Kind != quorum.EventDisconnected || ev.Quorate || !errors.Is(ev.Err, quorum.ErrConnectionLost) {
			t.Fatalf("after kill: %v", ev)
		}
		e.start(t, 1)
		want(t, s.next(), quorum.EventReconnected, false, false, all5, none, none)
		settles(t, e, s, 1)
	}},
	{"corosync not yet running", func(t *testing.T, e env) {
		e.kill(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := quorum.Open(ctx, quorum.WithBackend(e.backend(1)), fast)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, quorum.ErrConnectionLost) {
			t.Fatalf("Open while corosync is down: %v", err)
		}
		_, err = quorum.Open(context.Background(), quorum.WithBackend(e.backend(1)), quorum.WithoutReconnect())
		if !errors.Is(err, quorum.ErrConnectionLost) {
			t.Fatalf("Open without reconnect while corosync is down: %v", err)
		}
		// Subscribe returns at once, with a stream that says corosync
		// cannot be reached, and follows it once it is there.
		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		ch, err := quorum.Subscribe(ctx, quorum.TrackCurrent|quorum.TrackChanges,
			quorum.WithBackend(e.backend(1)), quorum.WithLossless(64), fast)
		if err != nil {
			t.Fatal(err)
		}
		s := newStream(t, e, ch)
		if ev := s.next(); ev.Kind != quorum.EventDisconnected || ev.Known() || !errors.Is(ev.Err, quorum.ErrConnectionLost) {
			t.Fatalf("first event while corosync is down: %v", ev)
		}
		e.start(t, 1)
		if ev := s.next(); ev.Kind != quorum.EventReconnected {
			t.Fatalf("after corosync started: %v", ev)
		}
		settles(t, e, s, 1)
		cancel()
		for range ch {
		}
	}},
	{"corosync frozen", func(t *testing.T, e env) {
		cl, err := quorum.Open(context.Background(), quorum.WithBackend(e.backend(1)))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close() // on failure; the check below closes it first
		e.freeze(t, 1)
		thawed := false
		defer func() {
			if !thawed {
				e.thaw(t, 1)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err = cl.Quorate(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Quorate on a frozen corosync: %v", err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err = quorum.Open(ctx, quorum.WithBackend(e.backend(1)))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for") {
			t.Fatalf("Open on a frozen corosync: %v; want the deadline and what it waited for", err)
		}
		t.Logf("Open on a frozen corosync: %v", err)
		closed := make(chan struct{})
		go func() { cl.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(hang):
			t.Fatal("Close waited for a frozen corosync")
		}
		e.thaw(t, 1)
		thawed = true
		// What was stuck in corosync finishes now; goleak checks at the
		// end of the run that nothing stayed behind.
	}},
	{"user without uidgid entry", func(t *testing.T, e env) { e.asUser(t) }},
}

// settles follows node i's stream after a (re)connection: the snapshot must
// match what corosync-quorumtool showed at the time (or a state the stream
// reaches next), and the stream must reach the full, quorate cluster.
func settles(t *testing.T, e env, s *stream, i int) {
	t.Helper()
	nl := s.next()
	q := s.next()
	if nl.Kind != quorum.EventNodeList || !nl.Initial || q.Kind != quorum.EventQuorum || !q.Initial ||
		!slices.Equal(nl.Members, q.Members) {
		t.Fatalf("fresh snapshot: %v / %v", nl, q)
	}
	toolQuorate, toolMembers := e.view(t, i)
	seen := []quorum.QuorumEvent{q}
	last := q
	deadline := time.Now().Add(e.wait())
	for !(last.Quorate && slices.Equal(last.Members, all5)) {
		if time.Now().After(deadline) {
			t.Fatalf("node %d did not get back to the full cluster: %v", i, seen)
		}
		last = s.next()
		seen = append(seen, last)
	}
	if !slices.ContainsFunc(seen, func(ev quorum.QuorumEvent) bool {
		return ev.Kind == quorum.EventQuorum && ev.Quorate == toolQuorate && slices.Equal(ev.Members, toolMembers)
	}) {
		t.Fatalf("corosync-quorumtool showed quorate=%v members %v; the stream showed %v", toolQuorate, toolMembers, seen)
	}
}

// dispatchN reads n notifications straight from a backend connection.
func dispatchN(t *testing.T, conn quorum.Conn, n int, wait time.Duration) []quorum.Notification {
	t.Helper()
	var got []quorum.Notification
	deadline := time.Now().Add(wait)
	for len(got) < n {
		ms := int(time.Until(deadline) / time.Millisecond)
		if ms <= 0 {
			t.Fatalf("got %d of %d notifications: %+v", len(got), n, got)
		}
		fds := []unix.PollFd{{Fd: int32(conn.Fd()), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, ms); err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		if err := conn.Dispatch(func(n quorum.Notification) { got = append(got, n) }); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// simEnv drives the simulated cluster.
type simEnv struct {
	c    *quorum.SimCluster
	cuts map[int]bool
}

func newSimEnv(t *testing.T) *simEnv {
	return &simEnv{c: sim(t, conformanceNodes), cuts: map[int]bool{}}
}

func (e *simEnv) backend(i int) quorum.Backend { return e.c.Backend(uint32(i)) }
func (e *simEnv) wait() time.Duration          { return hang }
func (e *simEnv) kill(t *testing.T, i int)     { must(t, e.c.Stop(uint32(i))) }
func (e *simEnv) start(t *testing.T, i int)    { must(t, e.c.Start(uint32(i))) }
func (e *simEnv) freeze(t *testing.T, i int)   { must(t, e.c.Freeze(uint32(i))) }
func (e *simEnv) thaw(t *testing.T, i int)     { must(t, e.c.Thaw(uint32(i))) }
func (e *simEnv) cut(t *testing.T, i int)      { e.cuts[i] = true; e.partition(t) }
func (e *simEnv) heal(t *testing.T, i int)     { delete(e.cuts, i); e.partition(t) }

// partition isolates each cut node on its own, as a link set down does.
func (e *simEnv) partition(t *testing.T) {
	var groups [][]uint32
	for i := range e.cuts {
		groups = append(groups, []uint32{uint32(i)})
	}
	must(t, e.c.Partition(groups...))
}

func (e *simEnv) restart(t *testing.T, i int) { must(t, e.c.Restart(uint32(i))) }
func (e *simEnv) modelV0() bool               { return false }
func (e *simEnv) reform(t *testing.T, i int)  { must(t, e.c.Reform(uint32(i))) }
func (e *simEnv) setExpected(t *testing.T, i int, v uint32) {
	must(t, e.c.SetExpectedVotes(uint32(i), v))
}

func (e *simEnv) view(t *testing.T, i int) (bool, []uint32) {
	q, _, m, err := e.c.View(uint32(i))
	must(t, err)
	return q, m
}

func (e *simEnv) asUser(t *testing.T) {
	must(t, e.c.FailConnects(1, 1, quorum.ErrAccess))
	_, err := quorum.Open(context.Background(), quorum.WithBackend(e.backend(1)))
	if !errors.Is(err, quorum.ErrAccess) {
		t.Fatalf("without access: %v", err)
	}
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(e.backend(1)))
	if err != nil {
		t.Fatalf("with access: %v", err)
	}
	cl.Close()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// realEnv drives a real cluster; its backends connect from inside the node.
type realEnv struct {
	cl     *testcluster.Cluster
	inner  quorum.Backend
	name   string // the backend's name for the helper process
	mu     sync.Mutex
	frozen map[int]bool
	cuts   map[int]bool
}

func (e *realEnv) backend(i int) quorum.Backend { return nodeBackend(e.cl, i, e.inner) }
func (e *realEnv) wait() time.Duration          { return 60 * time.Second }
func (e *realEnv) kill(t *testing.T, i int)     { must(t, e.cl.Kill(i)) }
func (e *realEnv) start(t *testing.T, i int)    { must(t, e.cl.Start(i)) }

func (e *realEnv) freeze(t *testing.T, i int) {
	must(t, e.cl.Freeze(i))
	e.mu.Lock()
	e.frozen[i] = true
	e.mu.Unlock()
}

func (e *realEnv) thaw(t *testing.T, i int) {
	must(t, e.cl.Thaw(i))
	e.mu.Lock()
	delete(e.frozen, i)
	e.mu.Unlock()
}

func (e *realEnv) cut(t *testing.T, i int) {
	must(t, e.cl.Cut(i))
	e.cuts[i] = true
}

func (e *realEnv) heal(t *testing.T, i int) {
	must(t, e.cl.Heal(i))
	delete(e.cuts, i)
}

// restart relies on corosync starting (about 0.4 s) well inside the token
// timeout (2.95 s with 5 nodes).
func (e *realEnv) restart(t *testing.T, i int) { e.kill(t, i); e.start(t, i) }
func (e *realEnv) reform(t *testing.T, i int)  { must(t, e.cl.Reform(i)) }
func (e *realEnv) modelV0() bool               { return !e.cl.Install().Version.AtLeast(3, 1, 0) }
func (e *realEnv) setExpected(t *testing.T, i int, v uint32) {
	must(t, e.cl.SetExpectedVotes(i, v))
}

func (e *realEnv) view(t *testing.T, i int) (bool, []uint32) {
	st, err := e.cl.Quorumtool(i)
	must(t, err)
	return st.Quorate, st.Members
}

// reset brings every node back up, connected and thawed, and waits until
// each sees the whole cluster.
func (e *realEnv) reset(t *testing.T) {
	t.Helper()
	for i := 1; i <= conformanceNodes; i++ {
		if e.frozen[i] {
			e.thaw(t, i)
		}
		if e.cuts[i] {
			e.heal(t, i)
		}
		if !e.cl.Running(i) {
			e.start(t, i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*e.wait())
	defer cancel()
	for i := 1; i <= conformanceNodes; i++ {
		if err := e.cl.WaitMembers(ctx, i, all5); err != nil {
			t.Fatal(err)
		}
	}
}

// asUser runs this test binary as an unprivileged user inside node 1 (see
// TestHelperQuorate), before and after that user is granted access.
func (e *realEnv) asUser(t *testing.T) {
	const uid = 65534
	run := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), e.wait())
		defer cancel()
		return e.cl.RerunAs(ctx, t, 1, uid, "TestHelperQuorate", "QUORUM_HELPER_BACKEND="+e.name)
	}
	out, err := run()
	if err == nil || !strings.Contains(out, "access-denied") || !strings.Contains(out, "uidgid") {
		t.Fatalf("as uid %d without a uidgid entry: %v\n%s", uid, err, out)
	}
	must(t, e.cl.GrantUID(1, uid))
	if out, err := run(); err != nil || !strings.Contains(out, "quorate=true") {
		t.Fatalf("as uid %d with a uidgid entry: %v\n%s", uid, err, out)
	}
}

// TestHelperQuorate is not a test: realEnv.asUser runs it as a separate,
// unprivileged process inside a node.
func TestHelperQuorate(t *testing.T) {
	name := os.Getenv("QUORUM_HELPER_BACKEND")
	if name == "" {
		t.Skip("runs only as the helper process of the conformance suite")
	}
	var b quorum.Backend
	for _, v := range realVariants() {
		if v.name == name {
			b = v.backend
		}
	}
	if b == nil {
		t.Fatalf("no backend %q in this build", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := quorum.Open(ctx, quorum.WithBackend(b), quorum.WithoutReconnect())
	if errors.Is(err, quorum.ErrAccess) {
		fmt.Println("access-denied:", err)
		t.FailNow()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	q, err := cl.Quorate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("quorate=%v\n", q)
}

// nodeBackend connects inner from inside node i's network namespace, the
// picture's connections included.
func nodeBackend(cl *testcluster.Cluster, i int, inner quorum.Backend) quorum.Backend {
	return quorum.InNamespace(inner, func(f func()) error {
		return cl.InNode(i, func() error { f(); return nil })
	})
}

// variant is a real backend on a real cluster in one IPC mode.
type variant struct {
	name    string
	backend quorum.Backend
	opts    []testcluster.Option
}

// realVariants are the real backends built into this test binary, each in
// the IPC modes it supports: corosync's default shared memory, and sockets.
func realVariants() []variant {
	var vs []variant
	for _, v := range []variant{
		{"libquorum", quorum.LibquorumBackend(), nil},
		{"native", quorum.NativeBackend(), nil},
		{"native-socket", quorum.NativeBackend(), []testcluster.Option{testcluster.SocketIPC()}},
	} {
		_, err := v.backend.Connect(canceled(), quorum.ConnectParams{})
		if !errors.Is(err, quorum.ErrNotSupported) {
			vs = append(vs, v)
		}
	}
	return vs
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestConformance(t *testing.T) {
	for _, sc := range scenarios {
		t.Run("sim/"+sc.name, func(t *testing.T) { sc.run(t, newSimEnv(t)) })
	}
	variants := realVariants()
	if len(variants) == 0 {
		t.Log("no real backend is built in: only the simulated cluster was checked")
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			cl := testcluster.Start(t, conformanceNodes, v.opts...)
			e := &realEnv{cl: cl, inner: v.backend, name: v.name, frozen: map[int]bool{}, cuts: map[int]bool{}}
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					e.reset(t)
					sc.run(t, e)
				})
			}
		})
	}
}

// TestConformanceTwoNode: two_node implies wait_for_all. A lone survivor of
// a two-node cluster keeps quorum, but a node that starts alone waits until
// it has seen the other, on a real 2-node cluster and on the simulated one.
func TestConformanceTwoNode(t *testing.T) {
	run := func(t *testing.T, e env) {
		s := subscribe(t, e, 1, quorum.TrackCurrent|quorum.TrackChanges)
		s.expect(quorum.EventNodeList, true, true, ids(1, 2), none, none)
		s.expect(quorum.EventQuorum, true, true, ids(1, 2), none, none)
		e.kill(t, 2)
		s.expect(quorum.EventNodeList, false, true, ids(1), none, ids(2))
		s.expect(quorum.EventQuorum, false, true, ids(1), none, none)
		e.kill(t, 1)
		e.start(t, 1)
		fresh := subscribe(t, e, 1, quorum.TrackCurrent|quorum.TrackChanges)
		fresh.expect(quorum.EventNodeList, true, false, ids(1), none, none)
		fresh.expect(quorum.EventQuorum, true, false, ids(1), none, none)
		e.start(t, 2)
		fresh.expect(quorum.EventNodeList, false, false, ids(1, 2), ids(2), none)
		fresh.expect(quorum.EventQuorum, false, true, ids(1, 2), none, none)
	}
	t.Run("sim", func(t *testing.T) {
		c, err := quorum.NewSimClusterN(2)
		must(t, err)
		c.SetTwoNode(true)
		run(t, &simEnv{c: c, cuts: map[int]bool{}})
	})
	for _, v := range realVariants() {
		t.Run(v.name, func(t *testing.T) {
			cl := testcluster.Start(t, 2, append([]testcluster.Option{testcluster.TwoNode()}, v.opts...)...)
			run(t, &realEnv{cl: cl, inner: v.backend, name: v.name, frozen: map[int]bool{}, cuts: map[int]bool{}})
		})
	}
}
