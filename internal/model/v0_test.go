package model

import (
	"fmt"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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
	var tr V0
	for _, s := range steps {
		for i := 0; i < s.snapshots; i++ {
			tr.ExpectSnapshot()
		}
		in := slices.Clone(s.in.members)
		got := tr.Translate(nil, s.in.quorate, s.in.seq, in)
		var kinds []Kind
		for _, n := range got {
			kinds = append(kinds, n.Kind)
			if n.Ring.Seq != s.in.seq || n.Ring.NodeID != s.node || !slices.Equal(n.Members, s.in.members) ||
				n.Joined != nil || n.Left != nil || n.Members == nil {
				t.Errorf("%s: %s; want ring %d.%d, members %v, nil joined and left", s.name,
					fmt.Sprintf("%+v", n), s.node, s.in.seq, s.in.members)
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
	tr.ExpectSnapshot()
	tr.NoSnapshot()
	if got := tr.Translate(nil, true, 20, []uint32{2}); len(got) != 1 || got[0].Kind != KindQuorum {
		t.Errorf("after a failed trackstart: %v; want a quorum notification alone", got)
	}
	tr.NoSnapshot() // none left: stays at zero
	if n := tr.snapshots.Load(); n != 0 {
		t.Errorf("snapshots = %d after taking back more than were expected", n)
	}
}
