//go:build linux

package native

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/benchutil"
	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/qbipc"
	"github.com/corosync-go/quorum/internal/qbipc/qbipctest"
	"github.com/corosync-go/quorum/internal/testcluster"
)

func forModes(t *testing.T, fn func(t *testing.T, n *corosyncNode, want qbipc.Transport)) {
	for _, m := range []struct {
		name   string
		socket bool
		want   qbipc.Transport
	}{{"shm", false, qbipc.TransportSHM}, {"socket", true, qbipc.TransportSocket}} {
		t.Run(m.name, func(t *testing.T) {
			n := startCorosync(t, m.socket)
			fn(t, n, m.want)
		})
	}
}

func code(err error) cs.Code {
	var ce *cs.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// collect dispatches until want notifications arrived or d passed.
func collect(t *testing.T, c *Conn, want int, d time.Duration) []Notification {
	t.Helper()
	var got []Notification
	deadline := time.Now().Add(d)
	for len(got) < want && time.Now().Before(deadline) {
		_ = qbipctest.WaitReadable(c.Fd(), 200*time.Millisecond)
		if err := c.Dispatch(func(n Notification) { got = append(got, n) }); err != nil {
			t.Fatalf("Dispatch: %v", err)
		}
	}
	return got
}

// collectChanges is collect for what follows a change to the cluster: a
// ring re-formed with the members of the last ring, prev (see
// testcluster.Reformed), is dropped with its quorum notification.
func collectChanges(t *testing.T, c *Conn, want int, d time.Duration, prev []uint32) []Notification {
	t.Helper()
	var (
		got      []Notification
		reformed *RingID
	)
	deadline := time.Now().Add(d)
	for len(got) < want && time.Now().Before(deadline) {
		_ = qbipctest.WaitReadable(c.Fd(), 200*time.Millisecond)
		err := c.Dispatch(func(n Notification) {
			switch {
			case n.Kind == KindNodeList && testcluster.Reformed(prev, n.Members, n.Joined, n.Left):
				t.Logf("dropped a ring re-formed with the same members: %+v", n)
				reformed = &n.Ring
			case n.Kind == KindQuorum && reformed != nil && n.Ring == *reformed:
			default:
				got = append(got, n)
			}
		})
		if err != nil {
			t.Fatalf("Dispatch: %v", err)
		}
	}
	return got
}

func TestRealSession(t *testing.T) {
	forModes(t, func(t *testing.T, n *corosyncNode, want qbipc.Transport) {
		c := n.dial(t)
		closed := false
		defer func() {
			if !closed {
				c.Close()
			}
		}()
		if got := c.IPC().Transport(); got != want {
			t.Fatalf("transport %v, want %v", got, want)
		}
		// Model V1 came with corosync 3.1; before, the server gets V0, and
		// corosync 2.x only requests 2.x has.
		v := n.c.Install().Version
		wantModel, wantFamily := 1, Corosync3
		if !v.AtLeast(3, 1, 0) {
			wantModel = 0
		}
		if !v.AtLeast(2, 99, 0) {
			wantFamily = Corosync2
		}
		if c.Model() != wantModel || c.QuorumType() != 1 || c.Family() != wantFamily {
			t.Fatalf("corosync %v: model %d type %d family %v, want %d, 1 (votequorum) and %v",
				v, c.Model(), c.QuorumType(), c.Family(), wantModel, wantFamily)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		q, err := c.Quorate(ctx)
		if err != nil || !q {
			t.Fatalf("Quorate = %v, %v; want true", q, err)
		}
		if err := c.TrackStart(ctx, 1|2); err != nil {
			t.Fatalf("TrackStart: %v", err)
		}
		got := collect(t, c, 2, 5*time.Second)
		if len(got) != 2 || got[0].Kind != KindNodeList || got[1].Kind != KindQuorum {
			t.Fatalf("snapshot %+v, want nodelist then quorum", got)
		}
		if !slices.Equal(got[0].Members, []uint32{1}) || len(got[0].Joined) != 0 || len(got[0].Left) != 0 ||
			got[0].Ring.NodeID != 1 || got[0].Ring != got[1].Ring || !got[1].Quorate || !slices.Equal(got[1].Members, []uint32{1}) {
			t.Fatalf("snapshot %+v", got)
		}
		if err := c.TrackStart(ctx, 1|2); code(err) != cs.ErrExist {
			t.Fatalf("second TrackStart: %v, want CS_ERR_EXIST", err)
		}
		if again := collect(t, c, 2, 5*time.Second); len(again) != 2 {
			t.Fatalf("second snapshot %+v", again)
		}
		if err := c.TrackStop(ctx); err != nil {
			t.Fatalf("TrackStop: %v", err)
		}
		// libqb 1.0.4 and later put the files in a directory of the
		// connection's own, which must go too; older ones put them
		// straight into /dev/shm, which must stay.
		files := c.IPC().ServerFiles()
		if dir := filepath.Dir(files[0]); dir != "/dev/shm" {
			files = append(files, dir)
		}
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("server file %s: %v", f, err)
			}
		}
		c.Close()
		closed = true
		deadline := time.Now().Add(5 * time.Second)
		for _, f := range files {
			for {
				if _, err := os.Stat(f); os.IsNotExist(err) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s still exists 5 s after Close", f)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
}

func TestRealKill(t *testing.T) {
	forModes(t, func(t *testing.T, n *corosyncNode, _ qbipc.Transport) {
		c := n.dial(t)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.TrackStart(ctx, 2); err != nil {
			t.Fatal(err)
		}
		collect(t, c, 2, 5*time.Second)
		n.kill(t)
		if qbipctest.WaitReadable(c.Fd(), 5*time.Second) != nil {
			t.Fatal("fd not readable 5 s after corosync was killed")
		}
		var err error
		for i := 0; i < 10 && err == nil; i++ {
			err = c.Dispatch(func(Notification) {})
		}
		if code(err) != cs.ErrLibrary {
			t.Fatalf("Dispatch after kill: %v, want CS_ERR_LIBRARY", err)
		}
		if _, err := c.Quorate(ctx); code(err) != cs.ErrLibrary {
			t.Fatalf("Quorate after kill: %v, want CS_ERR_LIBRARY", err)
		}
	})
}

func TestRealDeadline(t *testing.T) {
	forModes(t, func(t *testing.T, n *corosyncNode, _ qbipc.Transport) {
		c := n.dial(t)
		defer c.Close()
		n.freeze(t)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		_, err := c.Quorate(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Quorate on a stopped corosync: %v, want deadline exceeded", err)
		}
		if el := time.Since(start); el > 300*time.Millisecond+time.Second {
			t.Fatalf("Quorate returned %v after its start, with a 300 ms deadline", el)
		}
		n.thaw(t)
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := 0; i < 3; i++ {
			if q, err := c.Quorate(ctx); err != nil || !q {
				t.Fatalf("Quorate after SIGCONT: %v, %v", q, err)
			}
		}
		// Close while a request waits on a stopped corosync.
		n.freeze(t)
		defer n.thaw(t)
		sent := make(chan struct{}, 1)
		c.IPC().OnSent(func() { sent <- struct{}{} })
		done := make(chan error, 1)
		go func() {
			_, err := c.Quorate(context.Background())
			done <- err
		}()
		<-sent // the request waits for its response
		c.Close()
		select {
		case err := <-done:
			if !errors.Is(err, qbipc.ErrClosed) {
				t.Fatalf("request interrupted by Close: %v, want ErrClosed", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Close did not make the waiting request return")
		}
	})
}

// TestRealMembership: on a 3-node cluster, killing and restarting a node
// gives V1 nodelist events with left and joined filled, each followed by a
// quorum event of the same ring.
func TestRealMembership(t *testing.T) {
	cl := testcluster.Start(t, 3)
	n := &corosyncNode{c: cl, i: 1}
	c := n.dial(t)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.TrackStart(ctx, 2); err != nil {
		t.Fatal(err)
	}
	snap := collect(t, c, 2, 5*time.Second)
	if len(snap) != 2 || !slices.Equal(snap[0].Members, []uint32{1, 2, 3}) {
		t.Fatalf("snapshot %+v", snap)
	}
	if err := cl.Kill(3); err != nil {
		t.Fatal(err)
	}
	// Model V0 (before corosync 3.1) has no joined and left lists.
	wantLeft, wantJoined := []uint32{3}, []uint32{3}
	if c.Model() == 0 {
		wantLeft, wantJoined = nil, nil
	}
	left := collectChanges(t, c, 2, 30*time.Second, snap[0].Members)
	if len(left) != 2 || left[0].Kind != KindNodeList || !slices.Equal(left[0].Left, wantLeft) ||
		!slices.Equal(left[0].Members, []uint32{1, 2}) || left[1].Kind != KindQuorum ||
		left[1].Ring != left[0].Ring || !left[1].Quorate || left[0].Ring.Seq <= snap[0].Ring.Seq {
		t.Fatalf("after kill: %+v", left)
	}
	if err := cl.Start(3); err != nil {
		t.Fatal(err)
	}
	joined := collectChanges(t, c, 2, 30*time.Second, left[0].Members)
	if len(joined) != 2 || !slices.Equal(joined[0].Joined, wantJoined) ||
		!slices.Equal(joined[0].Members, []uint32{1, 2, 3}) || joined[1].Ring != joined[0].Ring {
		t.Fatalf("after restart: %+v", joined)
	}
}

// BenchmarkQuorateNative measures getquorate round trips on one connection
// to a real single-node corosync. Inside a network namespace where a
// corosync already runs (bench/quorate.sh runs it in one, beside the C loop
// and the libquorum benchmark), it uses that one; elsewhere it starts its
// own, once over shared memory and once over sockets. It reports
// roundtrips/s.
//
// "background" passes a context without a Done channel, which is waited
// for on the calling goroutine; "deadline" passes one that could end, so
// the wait must stay abandonable.
func BenchmarkQuorateNative(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	c, err := Dial(ctx, nil)
	cancel()
	if err == nil {
		defer c.Close()
		benchutil.Quorate(b, c.Quorate)
		return
	}
	for _, m := range []struct {
		name   string
		socket bool
	}{{"shm", false}, {"socket", true}} {
		n := startCorosync(b, m.socket)
		c := n.dial(b)
		b.Run(m.name, func(b *testing.B) { benchutil.Quorate(b, c.Quorate) })
		c.Close()
	}
}
