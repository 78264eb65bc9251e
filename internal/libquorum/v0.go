//go:build libquorum && cgo && linux

package libquorum

import (
	"slices"
	"sync/atomic"
)

// The quorum models a Conn can speak.
const (
	// ModelV0 is quorum_initialize's model, the only one of corosync 2.4
	// and 3.0: one callback with the quorate flag, the ring's sequence
	// number and the members.
	ModelV0 = 0
	// ModelV1 is quorum_model_initialize's QUORUM_MODEL_V1 (corosync 3.1
	// and later): a nodelist callback with the joined and left lists, and a
	// quorum callback, both with the full ring id.
	ModelV1 = 1
)

// v0Translator turns model V0 notifications into the model V1 ones that
// corosync would have sent for the same change, as far as V0 can tell:
//
//   - a trackstart's snapshot, and any other notification whose ring
//     sequence number differs from the previous notification's, becomes a
//     nodelist notification then a quorum notification, both for that ring.
//     The snapshot is the first notification after a TrackStart that asks
//     for one (CS_TRACK_CURRENT or CS_TRACK_CHANGES): each such call counts
//     one snapshot to come, and each notification while the count is above
//     zero is taken for one;
//   - one whose ring sequence number did not change (quorum changed without
//     a new ring, e.g. expected votes lowered) becomes a quorum notification
//     only.
//
// V0 carries no ring node id: corosync's is the lowest node id of the ring's
// membership, and so is the one given here. V0 has no joined or left lists:
// the nodelist notification's Joined and Left are nil, for the receiver to
// derive from the previous membership. A node that left and came back
// between two rings therefore shows in neither list.
//
// translate runs on the goroutine inside Dispatch; snapshots is changed by
// TrackStart, possibly on another goroutine while Dispatch runs.
type v0Translator struct {
	snapshots atomic.Int64 // trackstart snapshots still to come
	seen      bool         // a notification arrived since the Conn was made
	lastSeq   uint64       // the ring sequence number of the last one
}

// expectSnapshot is called before a trackstart request that queues a
// snapshot is sent, so that the snapshot cannot be dispatched before it.
func (t *v0Translator) expectSnapshot() { t.snapshots.Add(1) }

// noSnapshot takes back an expectSnapshot whose trackstart failed without
// queueing one (any error but CS_ERR_EXIST).
func (t *v0Translator) noSnapshot() { t.takeSnapshot() }

// takeSnapshot counts one snapshot as arrived, if one was to come.
func (t *v0Translator) takeSnapshot() bool {
	for {
		n := t.snapshots.Load()
		if n <= 0 {
			return false
		}
		if t.snapshots.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// translate appends to batch what one V0 notification stands for. members
// is a copy owned by the translator.
func (t *v0Translator) translate(batch []Notification, quorate bool, seq uint64, members []uint32) []Notification {
	snapshot := t.takeSnapshot()
	newRing := snapshot || !t.seen || seq != t.lastSeq
	t.seen, t.lastSeq = true, seq
	node := lowest(members)
	if newRing {
		batch = append(batch, Notification{
			Kind:     KindNodeList,
			RingNode: node,
			RingSeq:  seq,
			Members:  slices.Clone(members),
		})
	}
	return append(batch, Notification{
		Kind:     KindQuorum,
		Quorate:  quorate,
		RingNode: node,
		RingSeq:  seq,
		Members:  members,
	})
}

// lowest returns the smallest id of members, or 0 if there is none.
func lowest(members []uint32) uint32 {
	if len(members) == 0 {
		return 0
	}
	return slices.Min(members)
}
