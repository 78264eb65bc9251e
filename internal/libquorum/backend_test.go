//go:build libquorum && cgo && linux

package libquorum_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	quorum "github.com/corosync-go/quorum"
	"github.com/corosync-go/quorum/internal/libquorum"
	"github.com/corosync-go/quorum/internal/qbipc/qbipctest"
	"github.com/corosync-go/quorum/internal/testcluster"
)

// These tests drive the root package's LibquorumBackend (backend_cgo.go),
// which wraps this package; the package's TestMain checks for leaks.

func connectIn(t *testing.T, cl *testcluster.Cluster, i int, ctx context.Context, p quorum.ConnectParams) (c quorum.Conn, err error) {
	t.Helper()
	if e := cl.InNode(i, func() error {
		c, err = quorum.LibquorumBackend().Connect(ctx, p)
		return nil
	}); e != nil {
		t.Fatal(e)
	}
	return c, err
}

func TestBackendErrors(t *testing.T) {
	cl := testcluster.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := connectIn(t, cl, 1, ctx, quorum.ConnectParams{})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if err := c.TrackStart(ctx, quorum.TrackCurrent|quorum.TrackChanges); err != nil {
		t.Fatalf("TrackStart: %v", err)
	}
	err = c.TrackStart(ctx, quorum.TrackCurrent|quorum.TrackChanges)
	var qe *quorum.Error
	if !errors.Is(err, quorum.ErrExist) || !errors.As(err, &qe) || qe.Op != "quorum_trackstart" {
		t.Errorf("second TrackStart: %v; want a *quorum.Error from quorum_trackstart matching ErrExist", err)
	}

	// The frozen server: the deadline shows through *quorum.Error.
	if err := cl.Freeze(1); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = c.Quorate(short)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &qe) {
		t.Errorf("Quorate on a frozen corosync: %v; want a *quorum.Error wrapping DeadlineExceeded", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := cl.Thaw(1); err != nil {
		t.Fatal(err)
	}

	if err := cl.Kill(1); err != nil {
		t.Fatal(err)
	}
	_, err = connectIn(t, cl, 1, ctx, quorum.ConnectParams{})
	if !errors.Is(err, quorum.ErrConnectionLost) {
		t.Errorf("Connect with corosync down: %v; want ErrConnectionLost", err)
	}
}

func TestBackendNotifications(t *testing.T) {
	cl := testcluster.Start(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	c, err := connectIn(t, cl, 1, ctx, quorum.ConnectParams{TrustedUIDs: []uint32{4242}})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer c.Close()
	if err := c.TrackStart(ctx, quorum.TrackChanges); err != nil {
		t.Fatalf("TrackStart: %v", err)
	}
	if err := cl.Kill(2); err != nil {
		t.Fatal(err)
	}
	var got []quorum.Notification
	for len(got) < 4 && ctx.Err() == nil {
		if err := c.Dispatch(func(n quorum.Notification) { got = append(got, n) }); err != nil {
			t.Fatalf("Dispatch: %v", err)
		}
		if len(got) < 4 {
			deadline, _ := ctx.Deadline()
			if err := qbipctest.WaitReadable(c.Fd(), time.Until(deadline)); err != nil {
				break
			}
		}
	}
	if len(got) != 4 {
		t.Fatalf("got %d notifications, want 4: %+v", len(got), got)
	}
	snapNL, snapQ, nl, q := got[0], got[1], got[2], got[3]
	if snapNL.Kind != quorum.EventNodeList || !slices.Equal(snapNL.Members, []uint32{1, 2}) ||
		snapQ.Kind != quorum.EventQuorum || !snapQ.Quorate || snapQ.RingID != snapNL.RingID {
		t.Errorf("snapshot %+v, %+v", snapNL, snapQ)
	}
	// Model V0 (libquorum of corosync 2.4 or 3.0) has no lists: the
	// backend leaves them nil for the engine to derive.
	wantLeft := []uint32{2}
	if !libquorum.HasModelV1() {
		wantLeft = nil
	}
	if nl.Kind != quorum.EventNodeList || !slices.Equal(nl.Members, []uint32{1}) ||
		len(nl.Joined) != 0 || !slices.Equal(nl.Left, wantLeft) || (wantLeft == nil) != (nl.Left == nil) ||
		nl.RingID.Seq <= snapNL.RingID.Seq {
		t.Errorf("after node 2 left: %+v (libquorum has model V1: %v)", nl, libquorum.HasModelV1())
	}
	// Two nodes with one vote each: one alone is not quorate.
	if q.Kind != quorum.EventQuorum || q.Quorate || q.RingID != nl.RingID || !slices.Equal(q.Members, []uint32{1}) {
		t.Errorf("quorum after node 2 left: %+v", q)
	}
}

// openInNode opens a Client on the libquorum backend in node 1: its first
// connection is made by Open, on this thread, inside the node. The test's
// cleanup closes it.
func openInNode(ctx context.Context, t *testing.T, cl *testcluster.Cluster) *quorum.Client {
	t.Helper()
	var client *quorum.Client
	var err error
	if e := cl.InNode(1, func() error {
		client, err = quorum.Open(ctx, quorum.WithBackend(quorum.LibquorumBackend()))
		return nil
	}); e != nil {
		t.Fatal(e)
	}
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func TestBackendThroughEngine(t *testing.T) {
	cl := testcluster.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	client := openInNode(ctx, t, cl)
	if q, err := client.Quorate(ctx); err != nil || !q {
		t.Fatalf("Quorate = %v, %v", q, err)
	}
	ch, err := client.Subscribe(ctx, quorum.TrackCurrent)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	var kinds []quorum.EventKind
	for ev := range ch {
		if !ev.Initial {
			t.Errorf("one-shot snapshot event not Initial: %v", ev)
		}
		kinds = append(kinds, ev.Kind)
	}
	if !slices.Equal(kinds, []quorum.EventKind{quorum.EventNodeList, quorum.EventQuorum}) {
		t.Errorf("one-shot snapshot kinds %v; want nodelist, quorum", kinds)
	}
}

// TestBackendV0ThroughEngine runs the engine on the backend with model V0
// forced: the backend leaves Joined and Left nil, and the engine's events
// carry the lists it derives.
func TestBackendV0ThroughEngine(t *testing.T) {
	libquorum.ForceV0(t)
	cl := testcluster.Start(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	client := openInNode(ctx, t, cl)
	ch, err := client.Subscribe(ctx, quorum.TrackCurrent|quorum.TrackChanges)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	next := func() quorum.QuorumEvent {
		t.Helper()
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("channel closed")
			}
			t.Logf("%v", ev)
			return ev
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return quorum.QuorumEvent{}
	}
	snapNL, snapQ := next(), next()
	if snapNL.Kind != quorum.EventNodeList || !snapNL.Initial || !slices.Equal(snapNL.Members, []uint32{1, 2}) ||
		snapQ.Kind != quorum.EventQuorum || !snapQ.Quorate || snapQ.RingID != snapNL.RingID || snapNL.RingID.NodeID != 1 {
		t.Fatalf("snapshot %v, %v", snapNL, snapQ)
	}
	if err := cl.Kill(2); err != nil {
		t.Fatal(err)
	}
	nl, q := next(), next()
	if nl.Kind != quorum.EventNodeList || !slices.Equal(nl.Members, []uint32{1}) || len(nl.Joined) != 0 ||
		!slices.Equal(nl.Left, []uint32{2}) || nl.RingID.Seq <= snapNL.RingID.Seq || nl.RingID.NodeID != 1 {
		t.Errorf("after node 2 left: %v; want members [1], left [2] (derived by the engine)", nl)
	}
	if q.Kind != quorum.EventQuorum || q.Quorate || q.RingID != nl.RingID {
		t.Errorf("quorum after node 2 left: %v", q)
	}
}
