package quorum_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corosync-go/quorum"
)

// hang is how long a test waits for something that should happen at once
// before calling it a hang. It is a failure guard, not a timing claim.
const hang = 10 * time.Second

// fast keeps reconnection tests quick.
var fast = quorum.WithBackoff(time.Millisecond, 5*time.Millisecond)

func sim(t *testing.T, n int) *quorum.SimCluster {
	t.Helper()
	c, err := quorum.NewSimClusterN(n)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func next(t *testing.T, ch <-chan quorum.QuorumEvent) quorum.QuorumEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("channel closed; want an event")
		}
		return ev
	case <-time.After(hang):
		t.Fatal("no event")
	}
	return quorum.QuorumEvent{}
}

func closed(t *testing.T, ch <-chan quorum.QuorumEvent) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("want the channel closed, got %v", ev)
		}
	case <-time.After(hang):
		t.Fatal("channel not closed")
	}
}

// want checks an event's kind, members, joined, left and flags.
func matches(ev quorum.QuorumEvent, kind quorum.EventKind, initial, quorate bool, members, joined, left []uint32) bool {
	return ev.Kind == kind && ev.Initial == initial && ev.Quorate == quorate &&
		slices.Equal(ev.Members, members) && slices.Equal(ev.Joined, joined) && slices.Equal(ev.Left, left)
}

func want(t *testing.T, ev quorum.QuorumEvent, kind quorum.EventKind, initial, quorate bool, members, joined, left []uint32) {
	t.Helper()
	if !matches(ev, kind, initial, quorate, members, joined, left) {
		t.Fatalf("got  %v\nwant %s initial=%v quorate=%v members %v joined %v left %v",
			ev, kind, initial, quorate, members, joined, left)
	}
	if ev.Members == nil || ev.Joined == nil || ev.Left == nil {
		t.Fatalf("nil list in %v", ev)
	}
}

var (
	all5 = []uint32{1, 2, 3, 4, 5}
	none = []uint32{}
)

func TestFlagCombinations(t *testing.T) {
	for _, tc := range []struct {
		flags             quorum.TrackFlags
		snapshot, changes bool
	}{
		{quorum.TrackCurrent, true, false},
		{quorum.TrackChanges, true, true},
		{quorum.TrackChangesOnly, false, true},
		{quorum.TrackCurrent | quorum.TrackChanges, true, true},
		{quorum.TrackCurrent | quorum.TrackChangesOnly, true, true},
		{quorum.TrackChanges | quorum.TrackChangesOnly, true, true},
		{quorum.TrackCurrent | quorum.TrackChanges | quorum.TrackChangesOnly, true, true},
	} {
		for _, shared := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/shared=%v", tc.flags, shared), func(t *testing.T) {
				c := sim(t, 5)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var ch <-chan quorum.QuorumEvent
				var err error
				if shared {
					cl, err := quorum.Open(ctx, quorum.WithBackend(c.Backend(1)))
					if err != nil {
						t.Fatal(err)
					}
					defer cl.Close()
					// Let the client learn the state first, so that the
					// snapshot comes from its cache.
					warm, _ := cl.Subscribe(ctx, quorum.TrackCurrent)
					for range warm {
					}
					ch, err = cl.Subscribe(ctx, tc.flags, quorum.WithLossless(16))
					if err != nil {
						t.Fatal(err)
					}
				} else {
					ch, err = quorum.Subscribe(ctx, tc.flags, quorum.WithBackend(c.Backend(1)), quorum.WithLossless(16))
					if err != nil {
						t.Fatal(err)
					}
				}
				if tc.snapshot {
					want(t, next(t, ch), quorum.EventNodeList, true, true, all5, none, none)
					want(t, next(t, ch), quorum.EventQuorum, true, true, all5, none, none)
				}
				if !tc.changes {
					closed(t, ch)
					return
				}
				// Open returned after trackstart: this change is tracked.
				if err := c.Stop(5); err != nil {
					t.Fatal(err)
				}
				ev := next(t, ch)
				want(t, ev, quorum.EventNodeList, false, true, []uint32{1, 2, 3, 4}, none, []uint32{5})
				want(t, next(t, ch), quorum.EventQuorum, false, true, []uint32{1, 2, 3, 4}, none, none)
				if ev.Seq != map[bool]uint64{true: 3, false: 1}[tc.snapshot] {
					t.Fatalf("seq %d", ev.Seq)
				}
				cancel()
				closed(t, ch)
			})
		}
	}
}

func TestInvalidFlags(t *testing.T) {
	c := sim(t, 3)
	for _, f := range []quorum.TrackFlags{0, 0x08, 0x100, quorum.TrackCurrent | 0x80} {
		_, err := quorum.Subscribe(context.Background(), f, quorum.WithBackend(c.Backend(1)))
		if !errors.Is(err, quorum.ErrInvalidParam) {
			t.Errorf("flags %v: got %v, want ErrInvalidParam", f, err)
		}
	}
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Subscribe(context.Background(), 0); !errors.Is(err, quorum.ErrInvalidParam) || !strings.Contains(err.Error(), "TrackCurrent") {
		t.Errorf("Client.Subscribe(0): %v", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	c := sim(t, 3)
	b := quorum.WithBackend(c.Backend(1))
	for name, opts := range map[string][]quorum.Option{
		"lossless 1":      {b, quorum.WithLossless(1)},
		"lossless -5":     {b, quorum.WithLossless(-5)},
		"backoff 0":       {b, quorum.WithBackoff(0, time.Second)},
		"backoff max<min": {b, quorum.WithBackoff(time.Second, time.Millisecond)},
		"nil backend":     {quorum.WithBackend(nil)},
		"nil option":      {b, nil},
	} {
		if _, err := quorum.Subscribe(context.Background(), quorum.TrackChanges, opts...); !errors.Is(err, quorum.ErrInvalidParam) {
			t.Errorf("%s: got %v, want ErrInvalidParam", name, err)
		}
	}
	// An option where it has no effect does not compile: the package-level
	// Subscribe takes both kinds, Open and (*Client).Subscribe only theirs.
	var (
		_ quorum.OpenOption      = quorum.WithoutReconnect()
		_ quorum.SubscribeOption = quorum.WithLossless(2)
		_ []quorum.Option        = []quorum.Option{quorum.WithoutReconnect(), quorum.WithLossless(2)}
	)
	if _, err := quorum.Open(context.Background(), b, nil); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("nil OpenOption: %v", err)
	}
	cl, err := quorum.Open(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err = cl.Subscribe(context.Background(), quorum.TrackChanges, nil); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("nil SubscribeOption: %v", err)
	}
	if _, err = cl.Subscribe(context.Background(), quorum.TrackChanges, quorum.WithLossless(1)); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("WithLossless(1) on Client.Subscribe: %v", err)
	}
}

func TestCancel(t *testing.T) {
	c := sim(t, 3)
	b := quorum.WithBackend(c.Backend(1))

	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := quorum.Subscribe(ctx, quorum.TrackChanges, b); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("during snapshot", func(t *testing.T) {
		for range 50 {
			ctx, cancel := context.WithCancel(context.Background())
			ch, err := quorum.Subscribe(ctx, quorum.TrackCurrent|quorum.TrackChanges, b)
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			// Whatever was already delivered may be read; then the
			// channel closes, with no error event.
			n := 0
			for ev := range ch {
				if ev.Err != nil || !ev.Initial {
					t.Fatalf("after cancel: %v", ev)
				}
				n++
			}
			if n > 2 {
				t.Fatalf("%d events", n)
			}
		}
	})
	t.Run("after snapshot", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := quorum.Subscribe(ctx, quorum.TrackCurrent|quorum.TrackChanges, b)
		if err != nil {
			t.Fatal(err)
		}
		next(t, ch)
		next(t, ch)
		cancel()
		closed(t, ch)
	})
	t.Run("shared client keeps running", func(t *testing.T) {
		cl, err := quorum.Open(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx1, cancel1 := context.WithCancel(context.Background())
		ch1, _ := cl.Subscribe(ctx1, quorum.TrackChanges)
		ch2, _ := cl.Subscribe(context.Background(), quorum.TrackChanges)
		next(t, ch1)
		cancel1()
		for ev := range ch1 { // what was delivered before the cancel
			if !ev.Initial {
				t.Fatalf("after cancel: %v", ev)
			}
		}
		next(t, ch2)
		next(t, ch2)
		if q, err := cl.Quorate(context.Background()); err != nil || !q {
			t.Fatalf("Quorate after a cancel: %v %v", q, err)
		}
		cl.Close()
		ev := next(t, ch2)
		if ev.Kind != quorum.EventError || !errors.Is(ev.Err, quorum.ErrClosed) {
			t.Fatalf("last event after Close: %v", ev)
		}
		closed(t, ch2)
	})
}

// TestSlowSubscriber: one subscriber never reads while another keeps up.
// Neither the pump nor Close waits for the slow one, and it finds the latest
// state when it finally reads, with every notification accounted for.
func TestSlowSubscriber(t *testing.T) {
	c := sim(t, 5)
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)))
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := cl.Subscribe(context.Background(), quorum.TrackChanges)
	quick, _ := cl.Subscribe(context.Background(), quorum.TrackChanges, quorum.WithLossless(1000))

	const rounds = 100
	for i := range rounds {
		id := uint32(2 + i%4)
		c.Stop(id)
		c.Start(id)
	}
	// 2 snapshot events, then 2 events per Stop and per Start.
	const total = 2 + rounds*2*2
	var last quorum.QuorumEvent
	for i := range total {
		last = next(t, quick)
		if last.Seq != uint64(i+1) || last.Coalesced != 0 {
			t.Fatalf("lossless subscriber: %v", last)
		}
	}
	done := make(chan struct{})
	go func() { cl.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(hang):
		t.Fatal("Close waited for the slow subscriber")
	}

	var got []quorum.QuorumEvent
	for ev := range slow {
		got = append(got, ev)
	}
	final := got[len(got)-1]
	if final.Kind != quorum.EventError || !errors.Is(final.Err, quorum.ErrClosed) {
		t.Fatalf("last event %v", final)
	}
	// An error event reports the last known membership, and never quorate.
	if !slices.Equal(final.Members, last.Members) || final.RingID != last.RingID || final.Quorate {
		t.Fatalf("slow subscriber's state %v, latest is %v", final, last)
	}
	represented := 0
	for i, ev := range got {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("seq gap: %v", got)
		}
		represented += 1 + ev.Coalesced
	}
	if represented != total+1 { // the events plus Close's
		t.Fatalf("the slow subscriber's events stand for %d notifications, want %d", represented, total+1)
	}
	// Every node left and came back: all of them appear in joined and left.
	if !slices.Contains(got[len(got)-1].Left, 5) && !slices.ContainsFunc(got, func(ev quorum.QuorumEvent) bool { return slices.Contains(ev.Left, 5) }) {
		t.Fatalf("node 5's departures were hidden: %v", got)
	}
}

func TestLosslessOverflow(t *testing.T) {
	c := sim(t, 5)
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ch, err := cl.Subscribe(context.Background(), quorum.TrackCurrent|quorum.TrackChanges, quorum.WithLossless(4))
	if err != nil {
		t.Fatal(err)
	}
	// The witness is fed in the same fan-out as ch: once it has an event,
	// ch has had its chance at it too.
	witness, _ := cl.Subscribe(context.Background(), quorum.TrackCurrent|quorum.TrackChanges, quorum.WithLossless(64))
	// The snapshot (2) and one change (2) fill the buffer; the next
	// change overflows it.
	c.Stop(5)
	c.Stop(4)
	for range 6 {
		next(t, witness)
	}
	var got []quorum.QuorumEvent
	for ev := range ch {
		got = append(got, ev)
	}
	if len(got) != 5 {
		t.Fatalf("got %d events: %v", len(got), got)
	}
	last := got[4]
	if last.Kind != quorum.EventError || !errors.Is(last.Err, quorum.ErrSlowConsumer) || last.Seq != 5 {
		t.Fatalf("last event %v", last)
	}
	if !slices.Equal(last.Members, []uint32{1, 2, 3}) || !slices.Equal(last.Left, []uint32{4}) {
		t.Fatalf("the overflow event should carry the newest state: %v", last)
	}
}

func TestConcurrentSubscribeCancelClose(t *testing.T) {
	c := sim(t, 3)
	for round := range 1000 {
		cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				flags := []quorum.TrackFlags{quorum.TrackCurrent, quorum.TrackChanges, quorum.TrackChangesOnly}[(round+g)%3]
				ch, err := cl.Subscribe(ctx, flags)
				if err != nil {
					if !errors.Is(err, quorum.ErrClosed) {
						t.Error(err)
					}
					return
				}
				if rand.IntN(2) == 0 {
					cancel()
				}
				for range ch {
				}
			}()
		}
		if round%7 == 0 {
			c.Disconnect(1)
		}
		if rand.IntN(2) == 0 {
			go cl.Close()
		}
		cl.Close()
		wg.Wait()
	}
}

func TestDisconnectReconnect(t *testing.T) {
	c := sim(t, 5)
	ch, err := quorum.Subscribe(context.Background(), quorum.TrackCurrent|quorum.TrackChanges,
		quorum.WithBackend(c.Backend(1)), quorum.WithLossless(64), fast)
	if err != nil {
		t.Fatal(err)
	}
	ctxDone := make(chan struct{})
	defer close(ctxDone)
	next(t, ch)
	next(t, ch)

	// The local corosync dies; while it is down the other nodes change.
	c.Stop(1)
	ev := next(t, ch)
	if ev.Kind != quorum.EventDisconnected || !errors.Is(ev.Err, quorum.ErrConnectionLost) || ev.Quorate {
		t.Fatalf("got %v", ev)
	}
	c.Stop(5)
	c.FailConnects(1, 3, quorum.ErrTryAgain) // starting up
	c.Start(1)
	want(t, next(t, ch), quorum.EventReconnected, false, false, all5, none, none)
	// The fresh snapshot says what changed since the last event seen.
	want(t, next(t, ch), quorum.EventNodeList, true, true, []uint32{1, 2, 3, 4}, none, []uint32{5})
	want(t, next(t, ch), quorum.EventQuorum, true, true, []uint32{1, 2, 3, 4}, none, none)
	c.Start(5)
	want(t, next(t, ch), quorum.EventNodeList, false, true, all5, []uint32{5}, none)
	want(t, next(t, ch), quorum.EventQuorum, false, true, all5, none, none)

	// A disconnection with the membership unchanged.
	c.Disconnect(1)
	want(t, next(t, ch), quorum.EventDisconnected, false, false, all5, none, none)
	want(t, next(t, ch), quorum.EventReconnected, false, false, all5, none, none)
	want(t, next(t, ch), quorum.EventNodeList, true, true, all5, none, none)
	want(t, next(t, ch), quorum.EventQuorum, true, true, all5, none, none)

	// Access is refused after a restart: terminal.
	c.FailConnects(1, 1, quorum.ErrAccess)
	c.Disconnect(1)
	next(t, ch) // disconnected
	ev = next(t, ch)
	if ev.Kind != quorum.EventError || !errors.Is(ev.Err, quorum.ErrAccess) {
		t.Fatalf("got %v", ev)
	}
	closed(t, ch)
}

func TestWithoutReconnect(t *testing.T) {
	c := sim(t, 3)
	ch, err := quorum.Subscribe(context.Background(), quorum.TrackChanges,
		quorum.WithBackend(c.Backend(1)), quorum.WithoutReconnect())
	if err != nil {
		t.Fatal(err)
	}
	next(t, ch)
	next(t, ch)
	c.Disconnect(1)
	ev := next(t, ch)
	if ev.Kind != quorum.EventDisconnected || !errors.Is(ev.Err, quorum.ErrConnectionLost) {
		t.Fatalf("got %v", ev)
	}
	closed(t, ch)
}

func TestOpenErrors(t *testing.T) {
	c := sim(t, 3)
	b := quorum.WithBackend(c.Backend(1))

	c.FailConnects(1, 1, quorum.ErrAccess)
	_, err := quorum.Open(context.Background(), b)
	var qe *quorum.Error
	if !errors.Is(err, quorum.ErrAccess) || !errors.As(err, &qe) || qe.Code != quorum.CodeAccess ||
		qe.Code.String() != "CS_ERR_ACCESS" || !strings.Contains(err.Error(), "uidgid") {
		t.Fatalf("access: %v", err)
	}

	c.FailConnects(1, 3, quorum.ErrTryAgain)
	cl, err := quorum.Open(context.Background(), b, fast)
	if err != nil {
		t.Fatalf("try-again should be retried: %v", err)
	}
	cl.Close()

	c.Stop(1)
	if _, err := quorum.Open(context.Background(), b, quorum.WithoutReconnect()); !errors.Is(err, quorum.ErrConnectionLost) {
		t.Fatalf("down, no reconnect: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := quorum.Open(ctx, b, fast); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("down until the deadline: %v", err)
	}
	// corosync comes up while Open waits: once Open has failed to
	// connect, it starts.
	c.FailConnects(1, 2, quorum.ErrConnectionLost)
	c.Start(1)
	cl, err = quorum.Open(context.Background(), b, fast)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()

	if _, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(9))); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Fatalf("unknown node: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	c := sim(t, 3)
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)), fast)
	if err != nil {
		t.Fatal(err)
	}
	if q, err := cl.Quorate(context.Background()); err != nil || !q {
		t.Fatalf("Quorate: %v %v", q, err)
	}
	c.Partition([]uint32{1})
	if q, err := cl.Quorate(context.Background()); err != nil || q {
		t.Fatalf("Quorate alone: %v %v", q, err)
	}
	c.Heal()

	// A hung corosync holds no caller past its deadline.
	c.Freeze(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err = cl.Quorate(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("frozen: %v", err)
	}
	c.Thaw(1)

	// While the engine reconnects, Quorate says so: from the moment
	// subscribers are told.
	watch, _ := cl.Subscribe(context.Background(), quorum.TrackChangesOnly)
	c.Stop(1)
	if ev := next(t, watch); ev.Kind != quorum.EventDisconnected {
		t.Fatalf("got %v", ev)
	}
	if _, err := cl.Quorate(context.Background()); !errors.Is(err, quorum.ErrConnectionLost) {
		t.Fatalf("Quorate with corosync down: %v", err)
	}
	c.Start(1)

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); cl.Close() }()
	}
	wg.Wait()
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Quorate(context.Background()); !errors.Is(err, quorum.ErrClosed) {
		t.Fatalf("Quorate after Close: %v", err)
	}
	if _, err := cl.Subscribe(context.Background(), quorum.TrackChanges); !errors.Is(err, quorum.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

// TestCloseWhileFrozen: Close does not wait for a hung corosync, even with
// a request stuck in it.
func TestCloseWhileFrozen(t *testing.T) {
	c := sim(t, 3)
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)))
	if err != nil {
		t.Fatal(err)
	}
	stuck := make(chan uint32, 1)
	quorum.OnStuckRequest(c, func(id uint32) { stuck <- id })
	c.Freeze(1)
	res := make(chan error, 1)
	go func() { _, err := cl.Quorate(context.Background()); res <- err }()
	if id := <-stuck; id != 1 {
		t.Fatalf("request stuck on node %d", id)
	}
	cl.Close()
	select {
	case err := <-res:
		if !errors.Is(err, quorum.ErrClosed) {
			t.Fatalf("a request cut off by Close: %v, want ErrClosed", err)
		}
	case <-time.After(hang):
		t.Fatal("the request outlived Close")
	}
	c.Thaw(1)
}

func TestPartitionHeal(t *testing.T) {
	c := sim(t, 5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch1, _ := quorum.Subscribe(ctx, quorum.TrackChanges, quorum.WithBackend(c.Backend(1)), quorum.WithLossless(16))
	ch4, _ := quorum.Subscribe(ctx, quorum.TrackChanges, quorum.WithBackend(c.Backend(4)), quorum.WithLossless(16))
	for _, ch := range []<-chan quorum.QuorumEvent{ch1, ch4} {
		next(t, ch)
		next(t, ch)
	}
	c.Partition([]uint32{4, 5})
	ev1 := next(t, ch1)
	want(t, ev1, quorum.EventNodeList, false, true, []uint32{1, 2, 3}, none, []uint32{4, 5})
	want(t, next(t, ch1), quorum.EventQuorum, false, true, []uint32{1, 2, 3}, none, none)
	ev4 := next(t, ch4)
	want(t, ev4, quorum.EventNodeList, false, true, []uint32{4, 5}, none, []uint32{1, 2, 3})
	want(t, next(t, ch4), quorum.EventQuorum, false, false, []uint32{4, 5}, none, none)
	if ev1.RingID.NodeID != 1 || ev4.RingID.NodeID != 4 {
		t.Fatalf("ring ids %v %v", ev1.RingID, ev4.RingID)
	}
	c.Heal()
	ev1b := next(t, ch1)
	want(t, ev1b, quorum.EventNodeList, false, true, all5, []uint32{4, 5}, none)
	want(t, next(t, ch4), quorum.EventNodeList, false, false, all5, []uint32{1, 2, 3}, none)
	want(t, next(t, ch4), quorum.EventQuorum, false, true, all5, none, none)
	if ev1b.RingID.Seq <= ev1.RingID.Seq {
		t.Fatalf("ring seq went backwards: %v then %v", ev1.RingID, ev1b.RingID)
	}
	cancel()
	for _, ch := range []<-chan quorum.QuorumEvent{ch1, ch4} {
		for range ch {
		}
	}
}

// TestSimReform: a re-formed ring reaches only the nodes of that partition,
// with a new ring id, nothing joined or left, and its quorum event.
func TestSimReform(t *testing.T) {
	c := sim(t, 5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Partition([]uint32{4, 5})
	ch1, _ := quorum.Subscribe(ctx, quorum.TrackCurrent|quorum.TrackChanges, quorum.WithBackend(c.Backend(1)), quorum.WithLossless(16))
	ch4, _ := quorum.Subscribe(ctx, quorum.TrackCurrent|quorum.TrackChanges, quorum.WithBackend(c.Backend(4)), quorum.WithLossless(16))
	snap1, snap4 := next(t, ch1), next(t, ch4)
	next(t, ch1)
	next(t, ch4)

	if err := c.Reform(5); err != nil {
		t.Fatal(err)
	}
	nl := next(t, ch4)
	want(t, nl, quorum.EventNodeList, false, false, []uint32{4, 5}, none, none)
	if nl.RingID.NodeID != 4 || nl.RingID.Seq <= snap4.RingID.Seq {
		t.Fatalf("re-formed ring %v after %v", nl.RingID, snap4.RingID)
	}
	q := next(t, ch4)
	want(t, q, quorum.EventQuorum, false, false, []uint32{4, 5}, none, none)
	if q.RingID != nl.RingID {
		t.Fatalf("quorum event of ring %v after nodelist of %v", q.RingID, nl.RingID)
	}
	if _, ring, _, _ := c.View(5); ring != nl.RingID {
		t.Fatalf("node 5's view has ring %v, want %v", ring, nl.RingID)
	}

	// Node 1's side got nothing: its next event is its own re-formation.
	if err := c.Reform(1); err != nil {
		t.Fatal(err)
	}
	nl = next(t, ch1)
	want(t, nl, quorum.EventNodeList, false, true, []uint32{1, 2, 3}, none, none)
	if nl.RingID.Seq <= snap1.RingID.Seq {
		t.Fatalf("re-formed ring %v after %v", nl.RingID, snap1.RingID)
	}
	want(t, next(t, ch1), quorum.EventQuorum, false, true, []uint32{1, 2, 3}, none, none)

	c.Stop(3)
	if err := c.Reform(3); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("Reform on a stopped node: %v", err)
	}
	if err := c.Reform(42); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("Reform on an unknown node: %v", err)
	}
	cancel()
	for _, ch := range []<-chan quorum.QuorumEvent{ch1, ch4} {
		for range ch {
		}
	}
}

// TestSimRestart: a node restarted before the others notice is in both
// joined and left of one new ring; its own clients reconnect to it.
func TestSimRestart(t *testing.T) {
	c := sim(t, 5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	flags := quorum.TrackCurrent | quorum.TrackChanges
	ch1, _ := quorum.Subscribe(ctx, flags, quorum.WithBackend(c.Backend(1)), quorum.WithLossless(16))
	ch5, _ := quorum.Subscribe(ctx, flags, quorum.WithBackend(c.Backend(5)), quorum.WithLossless(16), fast)
	snap := next(t, ch1)
	next(t, ch1)
	next(t, ch5)
	next(t, ch5)

	if err := c.Restart(5); err != nil {
		t.Fatal(err)
	}
	nl := next(t, ch1)
	want(t, nl, quorum.EventNodeList, false, true, all5, []uint32{5}, []uint32{5})
	if nl.RingID.NodeID != 1 || nl.RingID.Seq <= snap.RingID.Seq {
		t.Fatalf("ring %v after %v", nl.RingID, snap.RingID)
	}
	want(t, next(t, ch1), quorum.EventQuorum, false, true, all5, none, none)
	if ev := next(t, ch5); ev.Kind != quorum.EventDisconnected || !errors.Is(ev.Err, quorum.ErrConnectionLost) {
		t.Fatalf("node 5's subscriber after the restart: %v", ev)
	}
	want(t, next(t, ch5), quorum.EventReconnected, false, false, all5, none, none)
	nl5 := next(t, ch5)
	want(t, nl5, quorum.EventNodeList, true, true, all5, none, none)
	if nl5.RingID != nl.RingID {
		t.Fatalf("node 5 came back in ring %v, node 1 is in %v", nl5.RingID, nl.RingID)
	}
	want(t, next(t, ch5), quorum.EventQuorum, true, true, all5, none, none)

	// A frozen corosync that is killed lets its stuck clients go, and
	// comes back unfrozen.
	cl, err := quorum.Open(ctx, quorum.WithBackend(c.Backend(2)), quorum.WithoutReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c.Freeze(2)
	stuck := make(chan error, 1)
	go func() { _, err := cl.Quorate(ctx); stuck <- err }()
	c.Stop(2)
	select {
	case err := <-stuck:
		if !errors.Is(err, quorum.ErrConnectionLost) {
			t.Fatalf("Quorate on a frozen corosync that was killed: %v", err)
		}
	case <-time.After(hang):
		t.Fatal("Quorate stayed stuck after the frozen corosync was killed")
	}
	c.Start(2)
	cl2, err := quorum.Open(ctx, quorum.WithBackend(c.Backend(2)), quorum.WithoutReconnect())
	if err != nil {
		t.Fatalf("Open after a frozen corosync was killed and started: %v", err)
	}
	cl2.Close()

	if err := c.Restart(2); err != nil {
		t.Fatal(err)
	}
	c.Stop(3)
	if err := c.Restart(3); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("Restart of a stopped node: %v", err)
	}
	cancel()
	for _, ch := range []<-chan quorum.QuorumEvent{ch1, ch5} {
		for range ch {
		}
	}
}

func TestSimVotequorum(t *testing.T) {
	two, _ := quorum.NewSimClusterN(2)
	two.Stop(2)
	if q, _, _, _ := two.View(1); q {
		t.Fatal("1 of 2 votes is quorate without two_node")
	}
	two.SetTwoNode(true)
	if q, _, _, _ := two.View(1); !q {
		t.Fatal("two_node: 1 of 2 votes should be quorate")
	}

	weighted, err := quorum.NewSimCluster(quorum.SimNode{ID: 1, Votes: 3}, quorum.SimNode{ID: 2}, quorum.SimNode{ID: 3})
	if err != nil {
		t.Fatal(err)
	}
	weighted.Partition([]uint32{1})
	if q, _, _, _ := weighted.View(1); !q {
		t.Fatal("3 of 5 votes is quorate")
	}
	if q, _, _, _ := weighted.View(2); q {
		t.Fatal("2 of 5 votes is not quorate")
	}

	five, _ := quorum.NewSimClusterN(5)
	if err := five.SetExpectedVotes(1, 10); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Fatalf("expected votes above the votes present: %v", err)
	}
	five.Stop(5)
	five.Stop(4)
	five.Stop(3)
	if q, _, _, _ := five.View(1); q {
		t.Fatal("2 of 5 is quorate")
	}
	if err := five.SetExpectedVotes(1, 2); err != nil {
		t.Fatal(err)
	}
	if q, _, _, _ := five.View(1); !q {
		t.Fatal("2 of 2 expected is not quorate")
	}

	for _, bad := range [][]quorum.SimNode{nil, {{ID: 0}}, {{ID: 1}, {ID: 1}}} {
		if _, err := quorum.NewSimCluster(bad...); !errors.Is(err, quorum.ErrInvalidParam) {
			t.Errorf("NewSimCluster(%v): %v", bad, err)
		}
	}
	if err := five.Partition([]uint32{1}, []uint32{1}); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("node in two partitions: %v", err)
	}
	if err := five.Stop(42); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("unknown node: %v", err)
	}
	if err := five.FailConnects(1, 1, errors.New("boom")); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("FailConnects with an arbitrary error: %v", err)
	}
}

// TestOwnLists: every subscriber owns its lists.
func TestOwnLists(t *testing.T) {
	c := sim(t, 3)
	cl, _ := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)))
	defer cl.Close()
	a, _ := cl.Subscribe(context.Background(), quorum.TrackCurrent)
	b, _ := cl.Subscribe(context.Background(), quorum.TrackCurrent)
	ea, eb := next(t, a), next(t, b)
	ea.Members[0] = 99
	if eb.Members[0] != 1 {
		t.Fatal("subscribers share a members array")
	}
	c2, _ := cl.Subscribe(context.Background(), quorum.TrackCurrent)
	if ev := next(t, c2); ev.Members[0] != 1 {
		t.Fatal("a subscriber's change reached the engine's state")
	}
}

func TestErrorType(t *testing.T) {
	for code, sentinel := range map[quorum.Code]error{
		2: quorum.ErrConnectionLost, 6: quorum.ErrTryAgain, 7: quorum.ErrInvalidParam, 8: quorum.ErrNoMemory,
		9: quorum.ErrBadHandle, 11: quorum.ErrAccess, 14: quorum.ErrExist, 19: quorum.ErrNotSupported,
	} {
		e := &quorum.Error{Op: "quorum_dispatch", Code: code}
		if !errors.Is(e, sentinel) || errors.Is(e, quorum.ErrClosed) {
			t.Errorf("code %v does not match its sentinel", code)
		}
		if !strings.HasPrefix(e.Error(), "quorum: quorum_dispatch: CS_ERR_") {
			t.Errorf("message %q", e.Error())
		}
	}
	cause := errors.New("cause")
	e := fmt.Errorf("wrapped: %w", &quorum.Error{Op: "x", Code: 5, Err: cause})
	if !errors.Is(e, cause) || errors.Is(e, quorum.ErrTryAgain) {
		t.Errorf("unwrap: %v", e)
	}
	if got := quorum.Code(5).String(); got != "CS_ERR_TIMEOUT" {
		t.Errorf("%q", got)
	}
	if got := quorum.Code(77).String(); got != "cs_error_t(77)" {
		t.Errorf("%q", got)
	}
	if got := (quorum.TrackCurrent | quorum.TrackChanges).String(); got != "current|changes" {
		t.Errorf("%q", got)
	}
}
