package model

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestV0(t *testing.T) {
	var v V0
	steps := []struct {
		seq          uint64
		members      []uint32
		node         uint32
		nodelist     bool
		snapshotFrst bool
	}{
		{seq: 8, members: []uint32{3, 1, 2}, node: 1, nodelist: true},  // first: a snapshot
		{seq: 8, members: []uint32{3, 1, 2}, node: 1, nodelist: false}, // same ring: quorum only
		{seq: 12, members: []uint32{3, 2}, node: 2, nodelist: true},    // new ring
		{seq: 12, members: []uint32{3, 2}, node: 2, nodelist: true, snapshotFrst: true},
		{seq: 12, members: []uint32{3, 2}, node: 2, nodelist: false},
		{seq: 16, members: nil, node: 0, nodelist: true},
	}
	for i, s := range steps {
		if s.snapshotFrst {
			v.Snapshot()
		}
		node, nl := v.Translate(s.seq, s.members)
		if node != s.node || nl != s.nodelist {
			t.Errorf("step %d: Translate(%d, %v) = %d, %v; want %d, %v", i, s.seq, s.members, node, nl, s.node, s.nodelist)
		}
	}
}
