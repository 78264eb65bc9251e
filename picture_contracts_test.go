package quorum_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/corosync-go/quorum"
)

// nextPicture returns the next value of ch.
func nextPicture(t *testing.T, ch <-chan quorum.Picture) quorum.Picture {
	t.Helper()
	select {
	case p, ok := <-ch:
		if !ok {
			t.Fatal("the picture stream closed; want a value")
		}
		return p
	case <-time.After(hang):
		t.Fatal("no picture")
	}
	return quorum.Picture{}
}

// lastPicture reads ch until it closes and returns its last value.
func lastPicture(t *testing.T, ch <-chan quorum.Picture) quorum.Picture {
	t.Helper()
	var last quorum.Picture
	timeout := time.After(hang)
	for {
		select {
		case p, ok := <-ch:
			if !ok {
				return last
			}
			last = p
		case <-timeout:
			t.Fatal("the picture stream did not close")
		}
	}
}

// unknownPicture checks that p says the state is unknown, for the reason
// want: not connected, not quorate, and not Syncing either, which would
// claim the ring and quorate are current.
func unknownPicture(t *testing.T, what string, p quorum.Picture, want error) {
	t.Helper()
	if p.Connected || p.Quorate || p.Syncing || !errors.Is(p.Err, want) {
		t.Fatalf("%s: connected=%v quorate=%v syncing=%v err=%v; want an unknown state (all false) and %v",
			what, p.Connected, p.Quorate, p.Syncing, p.Err, want)
	}
}

// TestPictureUnknownNotQuorate: no picture whose state does not come from
// corosync reports quorate or Syncing, whatever path built it: a lost
// connection, a subscriber joining during the outage, a lossless overflow,
// a terminal failure, Close, and Picture after Close.
func TestPictureUnknownNotQuorate(t *testing.T) {
	t.Run("lossless overflow", func(t *testing.T) {
		c := sim(t, 3)
		cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)), fast, quorum.WithPicture())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		witness, _ := cl.SubscribePicture(context.Background(), quorum.WithLossless(64))
		settledPicture(t, witness)
		slow, err := cl.SubscribePicture(context.Background(), quorum.WithLossless(2))
		if err != nil {
			t.Fatal(err)
		}
		// Its two slots hold the current picture and the change's first
		// value (Syncing); the re-read's value overflows them.
		if err := c.Stop(3); err != nil {
			t.Fatal(err)
		}
		// Once the witness has the re-read's value, so had the slow one.
		for p := settledPicture(t, witness); len(p.Members()) != 2; p = settledPicture(t, witness) {
		}
		if first := nextPicture(t, slow); !first.Connected || !first.Quorate || first.Err != nil {
			t.Fatalf("first value %+v", first)
		}
		unknownPicture(t, "last value after the overflow", lastPicture(t, slow), quorum.ErrSlowConsumer)
	})
	t.Run("outage, Close", func(t *testing.T) {
		c := sim(t, 3)
		cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)), fast, quorum.WithPicture(),
			quorum.WithPictureRefresh(20*time.Millisecond), quorum.WithRefreshTimeout(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ch, _ := cl.SubscribePicture(context.Background(), quorum.WithLossless(64))
		settledPicture(t, ch)
		if err := c.Stop(1); err != nil {
			t.Fatal(err)
		}
		var p quorum.Picture
		for p = nextPicture(t, ch); p.Connected; p = nextPicture(t, ch) {
		}
		unknownPicture(t, "picture while corosync is down", p, quorum.ErrConnectionLost)
		unknownPicture(t, "Picture() while corosync is down", cl.Picture(), quorum.ErrConnectionLost)
		late, err := cl.SubscribePicture(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		unknownPicture(t, "first value of a subscriber joining during the outage", nextPicture(t, late), quorum.ErrConnectionLost)

		if err := c.Start(1); err != nil {
			t.Fatal(err)
		}
		if p := settledPicture(t, ch); !p.Quorate {
			t.Fatalf("after the outage: %+v", p)
		}
		// A frozen corosync leaves the picture Syncing, with the re-read's
		// failure in Err; Close then ends it in an unknown state.
		if err := c.Freeze(1); err != nil {
			t.Fatal(err)
		}
		for p = nextPicture(t, ch); p.Err == nil; p = nextPicture(t, ch) {
		}
		if !p.Syncing || !p.Connected {
			t.Fatalf("picture while corosync is frozen: %+v", p)
		}
		cl.Close()
		unknownPicture(t, "last value after Close", lastPicture(t, ch), quorum.ErrClosed)
		unknownPicture(t, "Picture() after Close", cl.Picture(), quorum.ErrClosed)
		if err := c.Thaw(1); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("failed", func(t *testing.T) {
		c := sim(t, 3)
		cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)), fast, quorum.WithPicture())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ch, _ := cl.SubscribePicture(context.Background())
		settledPicture(t, ch)
		c.FailConnects(1, 1, quorum.ErrAccess)
		c.Disconnect(1)
		unknownPicture(t, "last value after a terminal failure", lastPicture(t, ch), quorum.ErrAccess)
		unknownPicture(t, "Picture() after a terminal failure", cl.Picture(), quorum.ErrAccess)
	})
}

// TestVoteRequestCutOff: SetVotes in flight when Close runs returns an
// error matching ErrClosed; one cut off by a lost connection, one matching
// ErrConnectionLost; neither says what the backend said of its dead handle.
func TestVoteRequestCutOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(c *quorum.SimCluster, cl *quorum.Client)
		want error
	}{
		{"Close", func(_ *quorum.SimCluster, cl *quorum.Client) { cl.Close() }, quorum.ErrClosed},
		{"lost connection", func(c *quorum.SimCluster, _ *quorum.Client) { c.Disconnect(1) }, quorum.ErrConnectionLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sim(t, 3)
			cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)), fast, quorum.WithPicture())
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			settledPicture(t, func() <-chan quorum.Picture { ch, _ := cl.SubscribePicture(context.Background()); return ch }())
			stuck := make(chan uint32, 1)
			quorum.OnStuckRequest(c, func(id uint32) {
				select {
				case stuck <- id:
				default:
				}
			})
			if err := c.Freeze(1); err != nil {
				t.Fatal(err)
			}
			defer c.Thaw(1)
			res := make(chan error, 1)
			go func() { res <- cl.SetVotes(context.Background(), 2, 2) }()
			<-stuck
			tc.cut(c, cl)
			select {
			case err := <-res:
				if !errors.Is(err, tc.want) || errors.Is(err, quorum.ErrBadHandle) {
					t.Fatalf("SetVotes cut off by %s: %v; want %v only", tc.name, err, tc.want)
				}
			case <-time.After(hang):
				t.Fatalf("SetVotes outlived %s", tc.name)
			}
		})
	}
}
