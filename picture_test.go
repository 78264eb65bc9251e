package quorum_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/corosync-go/quorum"
)

// settledPicture reads ch until a complete picture comes.
func settledPicture(t *testing.T, ch <-chan quorum.Picture) quorum.Picture {
	t.Helper()
	timeout := time.After(hang)
	for {
		select {
		case p, ok := <-ch:
			if !ok {
				t.Fatal("the picture stream closed")
			}
			if p.Connected && !p.Syncing {
				return p
			}
		case <-timeout:
			t.Fatal("no complete picture")
		}
	}
}

// TestPictureFrozenCorosync: a re-read that a frozen corosync never answers
// gives up within its bound, says so in the picture, keeps the last values,
// and is retried once corosync answers again; Close and the end of a
// subscription never wait for it.
func TestPictureFrozenCorosync(t *testing.T) {
	c, err := quorum.NewSimClusterN(3)
	if err != nil {
		t.Fatal(err)
	}
	stuck := make(chan uint32, 16)
	quorum.OnStuckRequest(c, func(id uint32) {
		select {
		case stuck <- id:
		default:
		}
	})
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)), fast,
		quorum.WithPictureRefresh(20*time.Millisecond), quorum.WithRefreshTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ch, err := cl.SubscribePicture(context.Background(), quorum.WithLossless(64))
	if err != nil {
		t.Fatal(err)
	}
	before := settledPicture(t, ch)

	if err := c.Freeze(1); err != nil {
		t.Fatal(err)
	}
	var p quorum.Picture
	for p = range ch {
		if p.Err != nil {
			break
		}
	}
	if !p.Connected || !p.Syncing || !errors.Is(p.Err, context.DeadlineExceeded) || p.TotalVotes != before.TotalVotes ||
		len(p.Nodes) != 3 {
		t.Fatalf("picture while corosync is frozen: %+v; want the last values, Syncing, and the deadline in Err", p)
	}
	if got := cl.Picture(); got.Err == nil {
		t.Fatalf("Picture while corosync is frozen: %+v", got)
	}

	if err := c.Thaw(1); err != nil {
		t.Fatal(err)
	}
	if p := settledPicture(t, ch); p.Err != nil || p.TotalVotes != 3 {
		t.Fatalf("picture after thaw: %+v", p)
	}

	cl.Close()
	var last quorum.Picture
	for last = range ch {
	}
	if !errors.Is(last.Err, quorum.ErrClosed) || last.Connected {
		t.Fatalf("last picture after Close: %+v", last)
	}

	// A Client whose re-reads may wait an hour: the end of a
	// subscription and Close still do not wait for them.
	slow, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)), fast,
		quorum.WithPictureRefresh(20*time.Millisecond), quorum.WithRefreshTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	sch, err := slow.SubscribePicture(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	settledPicture(t, sch)
	ctx, cancel := context.WithCancel(context.Background())
	other, err := slow.SubscribePicture(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Freeze(1); err != nil {
		t.Fatal(err)
	}
	for len(stuck) > 0 {
		<-stuck
	}
	<-stuck
	cancel()
	closed := time.After(hang)
	for range other {
		select {
		case <-closed:
			t.Fatal("a subscription ended during a stuck re-read did not close")
		default:
		}
	}
	// The pump reads again at once, and is stuck again.
	done := make(chan struct{})
	go func() { slow.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(hang):
		t.Fatal("Close waited for a stuck re-read")
	}
	if err := c.Thaw(1); err != nil {
		t.Fatal(err)
	}
}

// TestPictureMisuse: a Client opened without WithPicture says so, and a
// Backend of another package cannot give a picture.
func TestPictureMisuse(t *testing.T) {
	c, err := quorum.NewSimClusterN(3)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if p := cl.Picture(); !errors.Is(p.Err, quorum.ErrInvalidParam) || p.Connected {
		t.Errorf("Picture without WithPicture: %+v", p)
	}
	if _, err := cl.SubscribePicture(context.Background()); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("SubscribePicture without WithPicture: %v", err)
	}
	if err := cl.SetVotes(context.Background(), 1, 2); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("SetVotes without WithPicture: %v", err)
	}
	if err := cl.SetExpectedVotes(context.Background(), 0); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("SetExpectedVotes(0): %v", err)
	}
	var zero quorum.Client
	if p := zero.Picture(); !errors.Is(p.Err, quorum.ErrInvalidParam) {
		t.Errorf("Picture of a zero Client: %+v", p)
	}
	_, err = quorum.Open(context.Background(), quorum.WithBackend(thirdParty{c.Backend(1)}), quorum.WithPicture(),
		quorum.WithoutReconnect())
	if !errors.Is(err, quorum.ErrNotSupported) {
		t.Errorf("WithPicture on another package's Backend: %v", err)
	}
	if _, err := quorum.Open(context.Background(), quorum.WithPictureRefresh(0)); !errors.Is(err, quorum.ErrInvalidParam) {
		t.Errorf("WithPictureRefresh(0): %v", err)
	}
}

// thirdParty is a Backend written outside this package.
type thirdParty struct{ quorum.Backend }
