package quorum_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/corosync-go/quorum"
)

// TestErrorEventsNotQuorate: no event whose state does not come from
// corosync reports quorate, whatever path built it.
func TestErrorEventsNotQuorate(t *testing.T) {
	t.Run("slow consumer", func(t *testing.T) {
		c := sim(t, 5)
		cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ch, _ := cl.Subscribe(context.Background(), quorum.TrackChanges, quorum.WithLossless(4))
		witness, _ := cl.Subscribe(context.Background(), quorum.TrackChanges, quorum.WithLossless(16))
		for _, id := range []uint32{5, 4, 3} {
			if err := c.Stop(id); err != nil {
				t.Fatal(err)
			}
		}
		// Once the witness has every event, the slow one has overflowed:
		// it read none of its 8 while they came.
		for range 8 {
			next(t, witness)
		}
		var last quorum.QuorumEvent
		for ev := range ch {
			last = ev
		}
		if !errors.Is(last.Err, quorum.ErrSlowConsumer) || last.Quorate || last.Known() {
			t.Fatalf("last event %v: want ErrSlowConsumer, not quorate, not known", last)
		}
	})
	t.Run("closed, coalesced", func(t *testing.T) {
		c := sim(t, 5)
		cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)))
		if err != nil {
			t.Fatal(err)
		}
		witness, _ := cl.Subscribe(context.Background(), quorum.TrackCurrent)
		for range witness { // the Client knows the state once this closes
		}
		// Its snapshot comes from the cache; it is never read until Close.
		ch, _ := cl.Subscribe(context.Background(), quorum.TrackCurrent|quorum.TrackChanges)
		cl.Close()
		var last quorum.QuorumEvent
		for ev := range ch {
			last = ev
		}
		if !errors.Is(last.Err, quorum.ErrClosed) || last.Quorate || last.Coalesced == 0 {
			t.Fatalf("last event %v: want ErrClosed merged into the snapshot, not quorate", last)
		}
	})
	t.Run("failed", func(t *testing.T) {
		c := sim(t, 3)
		cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)), fast)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ch, _ := cl.Subscribe(context.Background(), quorum.TrackCurrent|quorum.TrackChanges)
		c.FailConnects(1, 1, quorum.ErrAccess)
		c.Disconnect(1)
		var last quorum.QuorumEvent
		for ev := range ch {
			last = ev
		}
		if !errors.Is(last.Err, quorum.ErrAccess) || last.Quorate || last.Known() {
			t.Fatalf("last event %v: want ErrAccess, not quorate", last)
		}
	})
}

// TestSubscribeDuringOutage: a subscriber that joins while corosync cannot
// be reached learns it at once, then gets the reconnection and a snapshot
// of its own: complete, with nothing joined or left.
func TestSubscribeDuringOutage(t *testing.T) {
	c := sim(t, 3)
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)), fast)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	old, _ := cl.Subscribe(context.Background(), quorum.TrackChanges, quorum.WithLossless(16))
	next(t, old)
	next(t, old)
	c.Stop(1)
	if ev := next(t, old); ev.Kind != quorum.EventDisconnected {
		t.Fatalf("got %v", ev)
	}
	st, err := cl.State()
	if err != nil || st.Connected || st.Quorate || !errors.Is(st.Err, quorum.ErrConnectionLost) {
		t.Fatalf("State during the outage: %+v, %v", st, err)
	}

	changes, _ := cl.Subscribe(context.Background(), quorum.TrackChanges)
	oneShot, _ := cl.Subscribe(context.Background(), quorum.TrackCurrent)
	for _, ch := range []<-chan quorum.QuorumEvent{changes, oneShot} {
		ev := next(t, ch)
		if ev.Kind != quorum.EventDisconnected || ev.Quorate || ev.Known() || !errors.Is(ev.Err, quorum.ErrConnectionLost) {
			t.Fatalf("first event during the outage: %v", ev)
		}
	}
	c.Stop(3)
	c.Start(1)
	// The one-shot is read only now: its events were not merged.
	for _, ch := range []<-chan quorum.QuorumEvent{oneShot, changes} {
		if ev := next(t, ch); ev.Kind != quorum.EventReconnected || ev.Known() {
			t.Fatalf("got %v, want reconnected", ev)
		}
		want(t, next(t, ch), quorum.EventNodeList, true, true, []uint32{1, 2}, none, none)
		want(t, next(t, ch), quorum.EventQuorum, true, true, []uint32{1, 2}, none, none)
	}
	closed(t, oneShot)
	// One that saw the state before the outage is told what changed.
	if ev := next(t, old); ev.Kind != quorum.EventReconnected {
		t.Fatalf("got %v", ev)
	}
	want(t, next(t, old), quorum.EventNodeList, true, true, []uint32{1, 2}, none, []uint32{3})
	if st, err := cl.State(); err != nil || !st.Connected || !st.Quorate || st.Err != nil {
		t.Fatalf("State after the outage: %+v, %v", st, err)
	}
}

// TestPackageSubscribeWhileDown: the package-level Subscribe returns at once
// while corosync is down, with a stream that says so.
func TestPackageSubscribeWhileDown(t *testing.T) {
	c := sim(t, 3)
	c.Stop(1)
	ch, err := quorum.Subscribe(context.Background(), quorum.TrackCurrent, quorum.WithBackend(c.Backend(1)), fast)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.Kind != quorum.EventDisconnected || !errors.Is(ev.Err, quorum.ErrConnectionLost) {
		t.Fatalf("got %v", ev)
	}
	c.Start(1)
	if ev := next(t, ch); ev.Kind != quorum.EventReconnected {
		t.Fatalf("got %v", ev)
	}
	want(t, next(t, ch), quorum.EventNodeList, true, true, []uint32{1, 2, 3}, none, none)
	want(t, next(t, ch), quorum.EventQuorum, true, true, []uint32{1, 2, 3}, none, none)
	closed(t, ch)

	c.Stop(1)
	if _, err := quorum.Subscribe(context.Background(), quorum.TrackCurrent, quorum.WithBackend(c.Backend(1)),
		quorum.WithoutReconnect()); !errors.Is(err, quorum.ErrConnectionLost) {
		t.Fatalf("down, WithoutReconnect: %v", err)
	}
	c.FailConnects(1, 1, quorum.ErrAccess)
	c.Start(1)
	if _, err := quorum.Subscribe(context.Background(), quorum.TrackCurrent, quorum.WithBackend(c.Backend(1))); !errors.Is(err, quorum.ErrAccess) {
		t.Fatalf("access refused: %v", err)
	}
}

// TestReleasedBeforeClose: when a private subscription's channel closes,
// its connection, descriptors and goroutines are already gone, every time.
func TestReleasedBeforeClose(t *testing.T) {
	c := sim(t, 3)
	b := quorum.WithBackend(c.Backend(1))
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd here")
		}
		return len(ents)
	}
	base := fds()
	for i := range 400 {
		ctx, cancel := context.WithCancel(context.Background())
		flags := quorum.TrackCurrent // a one-shot ends by itself
		if i%2 == 1 {
			flags = quorum.TrackChanges // this one by cancel
		}
		ch, err := quorum.Subscribe(ctx, flags, b)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			next(t, ch)
			cancel()
		}
		for range ch {
		}
		if n := fds(); n != base {
			t.Fatalf("round %d: %d descriptors open after the channel closed, %d before", i, n, base)
		}
		// The pump closes the channel as its last act: all it may still
		// do is return.
		if err := goleak.Find(); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		cancel()
	}
}

// TestNilAndZero: a nil context and a zero Client are errors, not panics.
func TestNilAndZero(t *testing.T) {
	c := sim(t, 3)
	b := quorum.WithBackend(c.Backend(1))
	//lint:ignore SA1012 the point is a nil context
	if _, err := quorum.Subscribe(nil, quorum.TrackChanges, b); !errors.Is(err, quorum.ErrInvalidParam) { //nolint:staticcheck
		t.Errorf("Subscribe(nil): %v", err)
	}
	//lint:ignore SA1012 the point is a nil context
	if _, err := quorum.Open(nil, b); !errors.Is(err, quorum.ErrInvalidParam) { //nolint:staticcheck
		t.Errorf("Open(nil): %v", err)
	}
	cl, err := quorum.Open(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	//lint:ignore SA1012 the point is a nil context
	if _, err := cl.Subscribe(nil, quorum.TrackChanges); !errors.Is(err, quorum.ErrInvalidParam) { //nolint:staticcheck
		t.Errorf("Client.Subscribe(nil): %v", err)
	}
	//lint:ignore SA1012 the point is a nil context
	if _, err := cl.Quorate(nil); !errors.Is(err, quorum.ErrInvalidParam) { //nolint:staticcheck
		t.Errorf("Quorate(nil): %v", err)
	}

	var zero quorum.Client
	if _, err := zero.Subscribe(context.Background(), quorum.TrackChanges); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("zero Client Subscribe: %v", err)
	}
	if _, err := zero.Quorate(context.Background()); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("zero Client Quorate: %v", err)
	}
	if _, err := zero.State(); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("zero Client State: %v", err)
	}
	if err := zero.Close(); err != nil {
		t.Errorf("zero Client Close: %v", err)
	}

	// The picture's calls too, on a Client that has one and on a zero one.
	pc, err := quorum.Open(context.Background(), b, quorum.WithPicture())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	//lint:ignore SA1012 the point is a nil context
	if _, err := pc.SubscribePicture(nil); !errors.Is(err, quorum.ErrInvalidParam) { //nolint:staticcheck
		t.Errorf("SubscribePicture(nil): %v", err)
	}
	//lint:ignore SA1012 the point is a nil context
	if err := pc.SetVotes(nil, 1, 1); !errors.Is(err, quorum.ErrInvalidParam) { //nolint:staticcheck
		t.Errorf("SetVotes(nil): %v", err)
	}
	//lint:ignore SA1012 the point is a nil context
	if err := pc.SetExpectedVotes(nil, 3); !errors.Is(err, quorum.ErrInvalidParam) { //nolint:staticcheck
		t.Errorf("SetExpectedVotes(nil): %v", err)
	}
	if p := zero.Picture(); !errors.Is(p.Err, quorum.ErrInvalidParam) || p.Connected || p.Quorate {
		t.Errorf("zero Client Picture: %+v", p)
	}
	if _, err := zero.SubscribePicture(context.Background()); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("zero Client SubscribePicture: %v", err)
	}
	if err := zero.SetVotes(context.Background(), 1, 1); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("zero Client SetVotes: %v", err)
	}
	if err := zero.SetExpectedVotes(context.Background(), 3); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("zero Client SetExpectedVotes: %v", err)
	}
}

// TestGiveUpSaysWhy: Open and Subscribe, given up on by their context, say
// what they were waiting for, and errors.Is finds the context's error.
func TestGiveUpSaysWhy(t *testing.T) {
	c := sim(t, 3)
	b := quorum.WithBackend(c.Backend(1))
	giveUp := func(open func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := open(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v: want the context's error", err)
		}
		return err
	}

	// corosync down: Open was between two attempts, and the last failed.
	c.Stop(1)
	err := giveUp(func(ctx context.Context) error {
		_, err := quorum.Open(ctx, b, quorum.WithBackoff(time.Hour, time.Hour))
		return err
	})
	if msg := err.Error(); !strings.Contains(msg, "waiting to try again") || !strings.Contains(msg, "CS_ERR_LIBRARY") ||
		!errors.Is(err, quorum.ErrConnectionLost) || strings.Count(msg, "quorum: ") != 1 {
		t.Errorf("Open while corosync is down: %q; want what it waited for and the last failure", msg)
	}
	c.Start(1)

	// corosync frozen: the attempt in progress never got an answer.
	c.Freeze(1)
	defer c.Thaw(1)
	for _, open := range []func(ctx context.Context) error{
		func(ctx context.Context) error { _, err := quorum.Open(ctx, b); return err },
		func(ctx context.Context) error { _, err := quorum.Subscribe(ctx, quorum.TrackCurrent, b); return err },
	} {
		err := giveUp(open)
		if msg := err.Error(); !strings.Contains(msg, "frozen or overloaded") || strings.Count(msg, "quorum: ") != 1 {
			t.Errorf("on a frozen corosync: %q; want what it waited for", msg)
		}
	}
}

// TestCachedNeverWaits: State and Picture answer from the cache while
// corosync is frozen, with a request and a re-read of the picture stuck in
// it: a health check that calls them per request is never held up.
func TestCachedNeverWaits(t *testing.T) {
	c := sim(t, 3)
	stuck := make(chan uint32, 16)
	quorum.OnStuckRequest(c, func(id uint32) {
		select {
		case stuck <- id:
		default:
		}
	})
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)), quorum.WithPicture(),
		quorum.WithPictureRefresh(time.Millisecond), quorum.WithRefreshTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ch, _ := cl.SubscribePicture(context.Background())
	settledPicture(t, ch)
	c.Freeze(1)
	defer c.Thaw(1)
	<-stuck // the pump's periodic re-read
	res := make(chan error, 1)
	go func() { _, err := cl.Quorate(context.Background()); res <- err }()
	<-stuck
	done := make(chan struct{})
	go func() {
		defer close(done)
		if st, err := cl.State(); err != nil || !st.Connected || !st.Quorate {
			t.Errorf("State with corosync frozen: %+v, %v", st, err)
		}
		if p := cl.Picture(); !p.Connected || !p.Quorate {
			t.Errorf("Picture with corosync frozen: %+v", p)
		}
	}()
	select {
	case <-done:
	case <-time.After(hang):
		t.Fatal("State or Picture waited for a frozen corosync")
	}
	cl.Close()
	if err := <-res; !errors.Is(err, quorum.ErrClosed) {
		t.Fatalf("Quorate cut off by Close: %v", err)
	}
}
