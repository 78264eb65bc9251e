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

func TestV0Translator(t *testing.T) {
	type v0 struct {
		quorate bool
		seq     uint64
		members []uint32
	}
	const nl, q = KindNodeList, KindQuorum
	steps := []struct {
		name      string
		snapshots int // TrackStart calls before this notification
		in        v0
		kinds     []Kind
		node      uint32
	}{
		{"snapshot", 1, v0{true, 8, []uint32{3, 1, 2}}, []Kind{nl, q}, 1},
		{"new ring", 0, v0{true, 12, []uint32{3, 2}}, []Kind{nl, q}, 2},
		{"same ring: quorum only", 0, v0{false, 12, []uint32{3, 2}}, []Kind{q}, 2},
		{"second trackstart: a snapshot on the same ring", 1, v0{false, 12, []uint32{3, 2}}, []Kind{nl, q}, 2},
		{"two snapshots queued", 2, v0{false, 12, []uint32{2, 3}}, []Kind{nl, q}, 2},
		{"the second of them", 0, v0{false, 12, []uint32{2, 3}}, []Kind{nl, q}, 2},
		{"then quorum only again", 0, v0{true, 12, []uint32{2, 3}}, []Kind{q}, 2},
		{"a ring re-formed with the same members", 0, v0{true, 16, []uint32{2, 3}}, []Kind{nl, q}, 2},
		{"no members", 0, v0{false, 20, []uint32{}}, []Kind{nl, q}, 0},
	}
	var tr v0Translator
	for _, s := range steps {
		for i := 0; i < s.snapshots; i++ {
			tr.expectSnapshot()
		}
		in := slices.Clone(s.in.members)
		got := tr.translate(nil, s.in.quorate, s.in.seq, in)
		var kinds []Kind
		for _, n := range got {
			kinds = append(kinds, n.Kind)
			if n.RingSeq != s.in.seq || n.RingNode != s.node || !slices.Equal(n.Members, s.in.members) ||
				n.Joined != nil || n.Left != nil || n.Members == nil {
				t.Errorf("%s: %s; want ring %d.%d, members %v, nil joined and left", s.name,
					formatNotification(n), s.node, s.in.seq, s.in.members)
			}
			if n.Kind == KindQuorum && n.Quorate != s.in.quorate {
				t.Errorf("%s: quorate %v, want %v", s.name, n.Quorate, s.in.quorate)
			}
		}
		if !slices.Equal(kinds, s.kinds) {
			t.Errorf("%s: kinds %v, want %v", s.name, kinds, s.kinds)
		}
		if len(got) == 2 && len(got[0].Members) > 0 && &got[0].Members[0] == &got[1].Members[0] {
			t.Errorf("%s: the nodelist and quorum notifications share their member list", s.name)
		}
	}

	// A trackstart that failed takes its snapshot back.
	tr.expectSnapshot()
	tr.noSnapshot()
	if got := tr.translate(nil, true, 20, []uint32{2}); len(got) != 1 || got[0].Kind != KindQuorum {
		t.Errorf("after a failed trackstart: %v; want a quorum notification alone", got)
	}
	tr.noSnapshot() // none left: stays at zero
	if n := tr.snapshots.Load(); n != 0 {
		t.Errorf("snapshots = %d after taking back more than were expected", n)
	}
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
			ok := g.Kind == w.kind && slices.Equal(g.Members, w.members) && g.RingNode == 1 &&
				g.Joined == nil && g.Left == nil && g.RingSeq == got[0].RingSeq
			if sameRing {
				ok = ok && g.RingSeq == lastSeq
			} else {
				ok = ok && g.RingSeq > lastSeq
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
		lastSeq, lastMembers = got[0].RingSeq, got[0].Members
		// Nothing more: a quorum-only change must not bring a nodelist.
		more := drainFor(t, c, 500*time.Millisecond)
		for _, m := range more {
			if !(m.Kind == KindNodeList && testcluster.Reformed(lastMembers, m.Members, m.Joined, m.Left)) &&
				!(m.Kind == KindQuorum && slices.Equal(m.Members, lastMembers) && m.RingSeq > lastSeq) {
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
	for time.Now().Before(deadline) {
		if err := c.Dispatch(func(n Notification) { got = append(got, n) }); err != nil {
			t.Fatalf("Dispatch: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return got
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
