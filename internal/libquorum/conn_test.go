//go:build libquorum && cgo && linux

package libquorum

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/qbipc/qbipctest"
	"github.com/corosync-go/quorum/internal/testcluster"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	trackCurrent = 0x01
	trackChanges = 0x02
)

func wantCode(t *testing.T, err error, code cs.Code) *cs.Error {
	t.Helper()
	var ce *cs.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got error %v (%T), want a *cs.Error with %v", err, err, code)
	}
	if ce.Code != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	return ce
}

// checkSnapshot checks a nodelist-then-quorum pair for a one-node cluster,
// as a Conn of the given model delivers it.
func checkSnapshot(t *testing.T, model int, got []Notification) {
	t.Helper()
	if len(got) != 2 {
		t.Fatalf("got %d notifications, want 2: %+v", len(got), got)
	}
	nl, q := got[0], got[1]
	if nl.Kind != KindNodeList || q.Kind != KindQuorum {
		t.Fatalf("got kinds %v, %v; want nodelist, quorum", nl.Kind, q.Kind)
	}
	if model == ModelV0 {
		// V0 has no lists: the receiver derives them.
		if !slices.Equal(nl.Members, []uint32{1}) || nl.Joined != nil || nl.Left != nil {
			t.Errorf("nodelist %+v: want members [1], nil joined and left (model V0)", nl)
		}
	} else if !slices.Equal(nl.Members, []uint32{1}) || nl.Joined == nil || len(nl.Joined) != 0 || nl.Left == nil || len(nl.Left) != 0 {
		t.Errorf("nodelist %+v: want members [1], empty non-nil joined and left", nl)
	}
	if !q.Quorate || !slices.Equal(q.Members, []uint32{1}) {
		t.Errorf("quorum %+v: want quorate with members [1]", q)
	}
	if nl.Ring.NodeID != 1 || nl.Ring.NodeID != q.Ring.NodeID || nl.Ring.Seq != q.Ring.Seq || nl.Ring.Seq == 0 {
		t.Errorf("ring ids %d.%d and %d.%d: want the same, node 1", nl.Ring.NodeID, nl.Ring.Seq, q.Ring.NodeID, q.Ring.Seq)
	}
}

// openFds counts this process's open descriptors.
func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// waitNoLeaks waits until no goroutine other than the test's own remains.
func waitNoLeaks(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := goleak.Find(
			goleak.IgnoreAnyFunction("github.com/corosync-go/quorum/internal/testcluster.(*Cluster).spawner"),
			goleak.IgnoreAnyFunction("github.com/corosync-go/quorum/internal/testcluster.(*Cluster).startNode.func1"))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after %v: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestQuorateAndTrack runs with the model Dial picks (V1 where libquorum
// has it) and, as the -v0 subtests, with model V0 forced.
func TestQuorateAndTrack(t *testing.T) {
	for _, ipc := range ipcModes {
		t.Run(ipc, func(t *testing.T) { testQuorateAndTrack(t, ipc) })
	}
	for _, ipc := range ipcModes {
		t.Run(ipc+"-v0", func(t *testing.T) {
			withV0(t)
			testQuorateAndTrack(t, ipc)
		})
	}
}

func testQuorateAndTrack(t *testing.T, ipc string) {
	n := newNode(t, ipc)
	fdsBefore := openFds(t)
	c := n.mustDial()
	checkModel(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if !c.HasProvider() {
		t.Error("HasProvider = false with votequorum configured")
	}
	q, err := c.Quorate(ctx)
	if err != nil || !q {
		t.Fatalf("Quorate = %v, %v; want true, nil", q, err)
	}
	// Without a Done channel the call stays on the caller's goroutine.
	if q, err := c.Quorate(context.Background()); err != nil || !q {
		t.Fatalf("Quorate(Background) = %v, %v; want true, nil", q, err)
	}

	// Nothing is queued before tracking starts.
	if err := c.Dispatch(func(n Notification) { t.Errorf("unexpected notification %+v", n) }); err != nil {
		t.Fatalf("Dispatch on an idle connection: %v", err)
	}

	if err := c.TrackStart(ctx, trackCurrent|trackChanges); err != nil {
		t.Fatalf("TrackStart: %v", err)
	}
	checkSnapshot(t, c.Model(), waitNotifications(t, c, 2, 5*time.Second))
	if ipc == "socket" && c.pollFd < 0 {
		t.Error("socket mode: the setup socket was not found, so corosync's exit would go unseen")
	}
	// Once drained, Fd is quiet: an engine waiting on it does not spin.
	if err := qbipctest.WaitReadable(c.Fd(), 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("poll on a drained connection: %v; want nothing ready", err)
	}

	// A second trackstart is refused but still sends the snapshot.
	wantCode(t, c.TrackStart(ctx, trackCurrent|trackChanges), cs.ErrExist)
	checkSnapshot(t, c.Model(), waitNotifications(t, c, 2, 5*time.Second))

	if err := c.TrackStop(ctx); err != nil {
		t.Fatalf("TrackStop: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if after := openFds(t); after != fdsBefore {
		t.Errorf("%d descriptors open after Close, %d before Dial", after, fdsBefore)
	}
	_, err = c.Quorate(ctx)
	wantCode(t, err, cs.ErrBadHandle)
	wantCode(t, c.Dispatch(func(Notification) {}), cs.ErrBadHandle)
}

func TestCorosyncGone(t *testing.T) {
	for _, ipc := range ipcModes {
		t.Run(ipc, func(t *testing.T) { testCorosyncGone(t, ipc) })
	}
	t.Run("shm-v0", func(t *testing.T) {
		withV0(t)
		testCorosyncGone(t, "shm")
	})
}

func testCorosyncGone(t *testing.T, ipc string) {
	n := newNode(t, ipc)
	c := n.mustDial()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.TrackStart(ctx, trackChanges); err != nil {
		t.Fatalf("TrackStart: %v", err)
	}
	waitNotifications(t, c, 2, 5*time.Second)

	n.kill()
	if err := qbipctest.WaitReadable(c.Fd(), 5*time.Second); err != nil {
		t.Fatalf("poll after kill: %v; want the fd ready", err)
	}
	err := c.Dispatch(func(n Notification) { t.Errorf("notification from a dead corosync: %+v", n) })
	wantCode(t, err, cs.ErrLibrary)
	if err := c.Close(); err != nil {
		t.Errorf("Close of a dead connection: %v", err)
	}

	_, err = n.dial(ctx, nil)
	wantCode(t, err, cs.ErrLibrary)

	// While corosync starts, initialize answers CS_ERR_LIBRARY until the
	// socket exists and CS_ERR_TRY_AGAIN until the services are ready.
	if err := n.cl.Spawn(n.i); err != nil {
		t.Fatal(err)
	}
	seen := map[cs.Code]int{}
	for {
		c, err := n.dial(ctx, nil)
		if err == nil {
			c.Close()
			break
		}
		var ce *cs.Error
		if !errors.As(err, &ce) || (ce.Code != cs.ErrLibrary && ce.Code != cs.ErrTryAgain) {
			t.Fatalf("Dial while corosync starts: %v; want CS_ERR_LIBRARY or CS_ERR_TRY_AGAIN", err)
		}
		seen[ce.Code]++
		if ctx.Err() != nil {
			t.Fatal("corosync did not come back")
		}
	}
	t.Logf("codes while starting: %v", seen)
}

func TestHungCorosync(t *testing.T) {
	for _, ipc := range ipcModes {
		t.Run(ipc, func(t *testing.T) { testHungCorosync(t, ipc) })
	}
	// Model V0's Dial (quorum_initialize) against a frozen corosync.
	t.Run("shm-v0", func(t *testing.T) {
		withV0(t)
		testHungCorosync(t, "shm")
	})
}

func testHungCorosync(t *testing.T, ipc string) {
	n := newNode(t, ipc)
	fdsBefore := openFds(t)
	c := n.mustDial()

	n.freeze()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Quorate(ctx)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Quorate took %v with a 300ms deadline", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Quorate on a hung corosync: %v; want DeadlineExceeded", err)
	}
	wantCode(t, err, cs.ErrTimeout)
	t.Logf("Quorate with a 300ms deadline returned after %v", time.Since(start))
	if flags, err := unix.FcntlInt(uintptr(c.fd), unix.F_GETFL, 0); err == nil {
		t.Logf("libquorum's fd %d has O_NONBLOCK=%v", c.fd, flags&unix.O_NONBLOCK != 0)
	}

	// The first call still holds the handle: the next waits for it, and gives
	// up with its own context.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel2)
	start = time.Now()
	err = c.TrackStart(ctx2, trackCurrent)
	if took := time.Since(start); took > time.Second {
		t.Errorf("queued TrackStart took %v after its context was cancelled at 200ms", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("queued TrackStart: %v; want Canceled", err)
	}

	start = time.Now()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v on a hung corosync", took)
	}
	t.Logf("Close returned after %v", time.Since(start))
	// Close shut the socket down, so libqb's liveness check ends the call
	// (about every 2 s) even though corosync is still frozen.
	start = time.Now()
	waitNoLeaks(t, 8*time.Second)
	t.Logf("the abandoned call returned %v after Close, corosync still frozen", time.Since(start))

	// Dial against a frozen corosync gives up with its context too; the
	// attempt finishes, and releases its handle, once corosync resumes.
	ctx3, cancel3 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel3()
	start = time.Now()
	_, err = n.dial(ctx3, nil)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Dial took %v with a 300ms deadline", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial on a hung corosync: %v; want DeadlineExceeded", err)
	}
	n.thaw()
	start = time.Now()
	waitNoLeaks(t, 8*time.Second)
	t.Logf("the abandoned Dial finished %v after SIGCONT", time.Since(start))
	// Both the closed Conn and the abandoned Dial released their descriptors.
	if after := openFds(t); after != fdsBefore {
		t.Errorf("%d descriptors open, %d before the first Dial", after, fdsBefore)
	}

	c2 := n.mustDial()
	ctx4, cancel4 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel4()
	if q, err := c2.Quorate(ctx4); err != nil || !q {
		t.Fatalf("Quorate after SIGCONT = %v, %v", q, err)
	}
}

// TestDispatchDuringRequests runs Dispatch on one goroutine while another
// makes requests, as the engine does: every snapshot that trackstart queues
// must arrive whole and in order. With model V0 (the v0 subtest) every
// snapshot must still come as a nodelist and a quorum notification, though
// all carry the same ring.
func TestDispatchDuringRequests(t *testing.T) {
	t.Run("default", testDispatchDuringRequests)
	t.Run("v0", func(t *testing.T) {
		withV0(t)
		testDispatchDuringRequests(t)
	})
}

func testDispatchDuringRequests(t *testing.T) {
	n := newNode(t, "shm")
	c := n.mustDial()
	checkModel(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	const rounds = 300
	reqErr := make(chan error, 1)
	go func() {
		for i := 0; i < rounds; i++ {
			// CURRENT alone is a one-shot snapshot, so every call is
			// accepted and queues a nodelist and a quorum notification.
			if err := c.TrackStart(ctx, trackCurrent); err != nil {
				reqErr <- err
				return
			}
			if q, err := c.Quorate(ctx); err != nil || !q {
				reqErr <- fmt.Errorf("Quorate = %v, %v", q, err)
				return
			}
		}
		reqErr <- nil
	}()

	var got []Notification
	var reqDone bool
	for !reqDone || len(got) < 2*rounds {
		select {
		case err := <-reqErr:
			if err != nil {
				t.Fatal(err)
			}
			reqDone = true
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d notifications", len(got), 2*rounds)
		}
		_ = qbipctest.WaitReadable(c.Fd(), 50*time.Millisecond)
		if err := c.Dispatch(func(n Notification) { got = append(got, n) }); err != nil {
			t.Fatalf("Dispatch: %v", err)
		}
	}
	if len(got) != 2*rounds {
		t.Fatalf("got %d notifications, want %d", len(got), 2*rounds)
	}
	for i := 0; i < len(got); i += 2 {
		checkSnapshot(t, c.Model(), got[i:i+2])
		if t.Failed() {
			t.Fatalf("at notification %d", i)
		}
	}
}

// TestMembershipChanges checks the lists corosync sends on a real 3-node
// cluster as a node leaves and comes back. With model V0 (where libquorum
// has nothing else) the lists are nil; TestV0Translation checks that model
// on its own.
func TestMembershipChanges(t *testing.T) {
	cl := testcluster.Start(t, 3)
	n := &node{t: t, cl: cl, i: 1}
	c := n.mustDial()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.TrackStart(ctx, trackCurrent|trackChanges); err != nil {
		t.Fatalf("TrackStart: %v", err)
	}

	type want struct {
		kind                  Kind
		quorate               bool
		members, joined, left []uint32
	}
	var (
		lastSeq     uint64
		lastMembers []uint32 // nil until the snapshot
	)
	expect := func(step string, ws ...want) {
		t.Helper()
		got := waitChanges(t, c, len(ws), 30*time.Second, lastMembers)
		for i, w := range ws {
			g := got[i]
			ok := g.Kind == w.kind && slices.Equal(g.Members, w.members) && g.Ring.NodeID == 1 && g.Ring.Seq > lastSeq
			switch {
			case w.kind == KindNodeList && c.Model() == ModelV0:
				ok = ok && g.Joined == nil && g.Left == nil
			case w.kind == KindNodeList:
				ok = ok && slices.Equal(g.Joined, w.joined) && slices.Equal(g.Left, w.left)
			default:
				ok = ok && g.Quorate == w.quorate
			}
			if !ok {
				t.Fatalf("%s: notification %d is %s; want %+v (ring seq above %d)", step, i, formatNotification(g), w, lastSeq)
			}
			t.Logf("%s: %s", step, formatNotification(g))
		}
		if got[0].Ring.Seq != got[1].Ring.Seq {
			t.Errorf("%s: nodelist and quorum carry different rings", step)
		}
		lastSeq, lastMembers = got[0].Ring.Seq, got[0].Members
	}
	none := []uint32{}
	expect("snapshot",
		want{KindNodeList, false, []uint32{1, 2, 3}, none, none},
		want{KindQuorum, true, []uint32{1, 2, 3}, nil, nil})

	if err := cl.Kill(3); err != nil {
		t.Fatal(err)
	}
	expect("node 3 killed",
		want{KindNodeList, false, []uint32{1, 2}, none, []uint32{3}},
		want{KindQuorum, true, []uint32{1, 2}, nil, nil})

	if err := cl.Kill(2); err != nil {
		t.Fatal(err)
	}
	expect("node 2 killed",
		want{KindNodeList, false, []uint32{1}, none, []uint32{2}},
		want{KindQuorum, false, []uint32{1}, nil, nil})

	if err := cl.Start(3); err != nil {
		t.Fatal(err)
	}
	expect("node 3 back",
		want{KindNodeList, false, []uint32{1, 3}, []uint32{3}, none},
		want{KindQuorum, true, []uint32{1, 3}, nil, nil})
}
