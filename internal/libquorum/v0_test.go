//go:build libquorum && cgo && linux

package libquorum

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/qbipc/qbipctest"
	"github.com/corosync-go/quorum/internal/testcluster"
)

// withV0 makes Dial use model V0 until the test ends.
func withV0(t *testing.T) {
	t.Helper()
	forceV0.Store(true)
	t.Cleanup(func() { forceV0.Store(false) })
}

// checkModel checks that c speaks the model Dial should have picked: V1
// where libquorum has it, unless the test forced V0.
func checkModel(t *testing.T, c *Conn) {
	t.Helper()
	want := ModelV0
	if HasModelV1() && !forceV0.Load() {
		want = ModelV1
	}
	if c.Model() != want {
		t.Fatalf("Model() = %d, want %d (libquorum has model V1: %v, V0 forced: %v)",
			c.Model(), want, HasModelV1(), forceV0.Load())
	}
	t.Logf("model V%d (libquorum has model V1: %v)", c.Model(), HasModelV1())
}

// TestV0Translation forces model V0 on a real 3-node cluster and checks
// that it gives the notifications model V1 gives for the same changes: a
// snapshot pair, a pair for each new ring, and a quorum notification alone
// when quorum changes without a new ring (expected votes lowered).
func TestV0Translation(t *testing.T) {
	withV0(t)
	cl := testcluster.Start(t, 3)
	n := &node{t: t, cl: cl, i: 1}
	c := n.mustDial()
	checkModel(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.TrackStart(ctx, trackCurrent|trackChanges); err != nil {
		t.Fatalf("TrackStart: %v", err)
	}

	type want struct {
		kind    Kind
		quorate bool
		members []uint32
	}
	var (
		lastSeq     uint64
		lastMembers []uint32 // nil until the snapshot
	)
	// expect waits for ws; sameRing says the ring must be the last one.
	expect := func(step string, sameRing bool, ws ...want) {
		t.Helper()
		got := waitChanges(t, c, len(ws), 30*time.Second, lastMembers)
		for i, w := range ws {
			g := got[i]
			ok := g.Kind == w.kind && slices.Equal(g.Members, w.members) && g.Ring.NodeID == 1 &&
				g.Joined == nil && g.Left == nil && g.Ring.Seq == got[0].Ring.Seq
			if sameRing {
				ok = ok && g.Ring.Seq == lastSeq
			} else {
				ok = ok && g.Ring.Seq > lastSeq
			}
			if w.kind == KindQuorum {
				ok = ok && g.Quorate == w.quorate
			}
			if !ok {
				t.Fatalf("%s: notification %d is %s; want %+v, nil joined and left (ring seq %d, same ring %v)",
					step, i, formatNotification(g), w, lastSeq, sameRing)
			}
			t.Logf("%s: %s", step, formatNotification(g))
		}
		lastSeq, lastMembers = got[0].Ring.Seq, got[0].Members
		// Nothing more: a quorum-only change must not bring a nodelist.
		more := drainFor(t, c, 500*time.Millisecond)
		for _, m := range more {
			if !(m.Kind == KindNodeList && testcluster.Reformed(lastMembers, m.Members, m.Joined, m.Left)) &&
				!(m.Kind == KindQuorum && slices.Equal(m.Members, lastMembers) && m.Ring.Seq > lastSeq) {
				t.Fatalf("%s: then %s", step, formatNotification(m))
			}
			t.Logf("%s: then a re-formed ring: %s", step, formatNotification(m))
		}
	}

	expect("snapshot", false,
		want{KindNodeList, false, []uint32{1, 2, 3}},
		want{KindQuorum, true, []uint32{1, 2, 3}})

	if err := cl.Kill(3); err != nil {
		t.Fatal(err)
	}
	expect("node 3 killed", false,
		want{KindNodeList, false, []uint32{1, 2}},
		want{KindQuorum, true, []uint32{1, 2}})

	if err := cl.Kill(2); err != nil {
		t.Fatal(err)
	}
	expect("node 2 killed", false,
		want{KindNodeList, false, []uint32{1}},
		want{KindQuorum, false, []uint32{1}})

	// Lowering expected votes regains quorum without a new ring.
	if err := cl.SetExpectedVotes(1, 1); err != nil {
		t.Fatal(err)
	}
	expect("expected votes 1", true,
		want{KindQuorum, true, []uint32{1}})

	if err := cl.Start(2); err != nil {
		t.Fatal(err)
	}
	expect("node 2 back", false,
		want{KindNodeList, false, []uint32{1, 2}},
		want{KindQuorum, true, []uint32{1, 2}})

	// A second trackstart's snapshot, on the same ring, is a pair again.
	// (Its members are the last ring's: waitChanges must not take it for
	// a re-formed ring.)
	lastMembers = nil
	wantCode(t, c.TrackStart(ctx, trackCurrent|trackChanges), cs.ErrExist)
	expect("second trackstart", true,
		want{KindNodeList, false, []uint32{1, 2}},
		want{KindQuorum, true, []uint32{1, 2}})
}

// drainFor dispatches whatever arrives within d.
func drainFor(t *testing.T, c *Conn, d time.Duration) []Notification {
	t.Helper()
	var got []Notification
	deadline := time.Now().Add(d)
	for {
		if err := c.Dispatch(func(n Notification) { got = append(got, n) }); err != nil {
			t.Fatalf("Dispatch: %v", err)
		}
		if qbipctest.WaitReadable(c.Fd(), time.Until(deadline)) != nil {
			return got
		}
	}
}

// TestModelV1Declarations checks that the build compared its own model V1
// declarations with the header's whenever the header has model V1 and marks
// its version (corotypes.h's CS_PRI_NODE_ID_PADDED, corosync 3.1.5 and
// later). It reads the headers pkg-config names now, which are the ones the
// package was built with when the environment is the same.
func TestModelV1Declarations(t *testing.T) {
	out, err := exec.Command("pkg-config", "--variable=includedir", "libquorum").Output()
	if err != nil {
		t.Skipf("pkg-config libquorum: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "corosync")
	q, err1 := os.ReadFile(filepath.Join(dir, "quorum.h"))
	ct, err2 := os.ReadFile(filepath.Join(dir, "corotypes.h"))
	if err1 != nil || err2 != nil {
		t.Skipf("headers: %v, %v", err1, err2)
	}
	hasV1 := strings.Contains(string(q), "quorum_model_initialize")
	marked := strings.Contains(string(ct), "CS_PRI_NODE_ID_PADDED")
	t.Logf("%s: model V1 %v, 3.1.5+ mark %v; layout checked at build: %v", dir, hasV1, marked, layoutChecked)
	if layoutChecked != (hasV1 && marked) {
		t.Errorf("layout checked = %v; want %v", layoutChecked, hasV1 && marked)
	}
}
