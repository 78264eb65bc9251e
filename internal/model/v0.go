// Package model turns corosync's quorum model V0 notifications into the
// model V1 callbacks that the engine consumes. corosync before 3.1 has only
// model V0, and so has a libquorum without quorum_model_initialize; both real
// backends translate through a V0 so that they give the same events.
package model

import "sync"

// V0 is the state the translation keeps for one connection: V0 carries no
// nodelist callback, so whether a notification starts a new ring can only be
// told from the ring sequence number of the one before. The zero value is
// ready for a new connection; a V0 must not be shared between connections.
type V0 struct {
	mu   sync.Mutex
	seen bool   // a notification was translated since the last Snapshot
	seq  uint64 // its ring sequence number
}

// Snapshot says that the next notification is a snapshot (call it before
// sending a trackstart with CS_TRACK_CURRENT or CS_TRACK_CHANGES), which
// model V1 always gives as a nodelist and a quorum callback.
func (v *V0) Snapshot() {
	v.mu.Lock()
	v.seen = false
	v.mu.Unlock()
}

// Translate takes a V0 notification's ring sequence number and members. It
// returns the ring's node id, which V0 does not carry and corosync makes the
// lowest member's, and whether a nodelist callback goes before the quorum
// callback: for a snapshot and for every new ring. A notification on the
// ring of the one before is a quorum change without a membership change
// (expected votes lowered by a reload, say), which model V1 gives as a quorum
// callback alone.
//
// What V0 cannot tell: the joined and left lists (callers derive them from
// the members, so a node that left and came back between two notifications
// is in neither), and a ring that was re-formed twice between two reads is
// seen once.
func (v *V0) Translate(seq uint64, members []uint32) (ringNode uint32, nodelist bool) {
	for i, m := range members {
		if i == 0 || m < ringNode {
			ringNode = m
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	nodelist = !v.seen || seq != v.seq
	v.seen, v.seq = true, seq
	return ringNode, nodelist
}
