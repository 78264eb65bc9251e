// Package model holds what both real backends (internal/native and
// internal/libquorum) hand the root package's one adapter: corosync's quorum
// notifications as model V1 callbacks, and the translation of model V0
// notifications into them, for corosync before 3.1 and a libquorum without
// quorum_model_initialize.
package model

import (
	"fmt"
	"slices"
	"sync/atomic"
)

// Kind says which model V1 callback a Notification stands for. The values
// are the root package's EventNodeList and EventQuorum.
type Kind uint8

const (
	KindNodeList Kind = 1
	KindQuorum   Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindNodeList:
		return "nodelist"
	case KindQuorum:
		return "quorum"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// RingID is corosync's ring id: the lowest node id of the membership and a
// sequence number that grows with every new ring.
type RingID struct {
	NodeID uint32
	Seq    uint64
}

// Notification is one model V1 callback, or one of those a model V0
// notification is translated into. Quorate is set on quorum notifications;
// Joined and Left only on nodelist notifications, and nil when translated
// from V0, which has no such lists. The slices belong to the receiver.
type Notification struct {
	Kind                  Kind
	Quorate               bool
	Ring                  RingID
	Members, Joined, Left []uint32
}

// V0 turns one connection's model V0 notifications into the model V1
// notifications corosync would have sent for the same change, as far as V0
// can tell:
//
//   - a trackstart's snapshot, and every notification whose ring sequence
//     number differs from the previous one's, becomes a nodelist
//     notification then a quorum notification, both for that ring. Each
//     trackstart that asks for a snapshot (CS_TRACK_CURRENT or
//     CS_TRACK_CHANGES) counts one to come (ExpectSnapshot), and the next
//     notification is taken for it;
//   - a notification on the ring of the one before (quorum changed without a
//     new ring, e.g. expected votes lowered) becomes a quorum notification
//     alone.
//
// What V0 cannot tell: the ring's node id (corosync's is the lowest member,
// which is what is given), and the joined and left lists (nil: the receiver
// derives them from the members, so a node that left and came back between
// two notifications is in neither).
//
// Translate runs on the goroutine that dispatches; ExpectSnapshot and
// NoSnapshot may run on another meanwhile. The zero value is ready; a V0
// serves one connection.
type V0 struct {
	snapshots atomic.Int64 // trackstart snapshots still to come
	seen      bool         // Translate's: a notification came before
	seq       uint64       // Translate's: its ring sequence number
}

// ExpectSnapshot is called before sending a trackstart that queues a
// snapshot, so that the snapshot cannot be dispatched first.
func (v *V0) ExpectSnapshot() { v.snapshots.Add(1) }

// NoSnapshot takes back an ExpectSnapshot whose trackstart failed without
// queueing one (any error but CS_ERR_EXIST).
func (v *V0) NoSnapshot() { v.takeSnapshot() }

func (v *V0) takeSnapshot() bool {
	for {
		n := v.snapshots.Load()
		if n <= 0 {
			return false
		}
		if v.snapshots.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// Translate appends to batch what one V0 notification stands for; members
// becomes the receiver's.
func (v *V0) Translate(batch []Notification, quorate bool, seq uint64, members []uint32) []Notification {
	snapshot := v.takeSnapshot()
	newRing := snapshot || !v.seen || seq != v.seq
	v.seen, v.seq = true, seq
	ring := RingID{Seq: seq}
	if len(members) > 0 {
		ring.NodeID = slices.Min(members)
	}
	if newRing {
		batch = append(batch, Notification{Kind: KindNodeList, Ring: ring, Members: slices.Clone(members)})
	}
	return append(batch, Notification{Kind: KindQuorum, Quorate: quorate, Ring: ring, Members: members})
}
