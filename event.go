package quorum

import (
	"fmt"
	"strings"
	"time"
)

// TrackFlags selects what a subscription receives. The values are corosync's
// CS_TRACK_* flags and may be combined with |.
type TrackFlags uint32

const (
	// TrackCurrent asks for a snapshot of the current state: a nodelist
	// event, then a quorum event, both marked Initial. Alone, the channel
	// closes after the snapshot.
	TrackCurrent TrackFlags = 0x01
	// TrackChanges asks for a snapshot and then every change.
	TrackChanges TrackFlags = 0x02
	// TrackChangesOnly asks for every change, with no snapshot.
	TrackChangesOnly TrackFlags = 0x04

	trackMask = TrackCurrent | TrackChanges | TrackChangesOnly
)

func (f TrackFlags) String() string {
	var parts []string
	for _, p := range []struct {
		f    TrackFlags
		name string
	}{{TrackCurrent, "current"}, {TrackChanges, "changes"}, {TrackChangesOnly, "changes-only"}} {
		if f&p.f != 0 {
			parts = append(parts, p.name)
		}
	}
	if rest := f &^ trackMask; rest != 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(rest)))
	}
	return strings.Join(parts, "|")
}

func (f TrackFlags) validate() error {
	if f == 0 {
		return fmt.Errorf("%w: track flags are empty: pass TrackCurrent, TrackChanges or TrackChangesOnly", ErrInvalidParam)
	}
	if rest := f &^ trackMask; rest != 0 {
		return fmt.Errorf("%w: unknown track flag bits %#x: only TrackCurrent (0x1), TrackChanges (0x2) and TrackChangesOnly (0x4) exist", ErrInvalidParam, uint32(rest))
	}
	return nil
}

// wantsSnapshot and wantsChanges say what corosync itself would send for f.
func (f TrackFlags) wantsSnapshot() bool { return f&(TrackCurrent|TrackChanges) != 0 }
func (f TrackFlags) wantsChanges() bool  { return f&(TrackChanges|TrackChangesOnly) != 0 }

// EventKind says what produced an event.
type EventKind uint8

const (
	// EventNodeList is corosync's nodelist notification: a new ring was
	// formed (or, with Initial, the current membership). Corosync at times
	// forms a new ring with the same members, for instance while a node
	// fails to rejoin; its event has nothing in Joined or Left.
	EventNodeList EventKind = iota + 1
	// EventQuorum is corosync's quorum notification. It follows every
	// nodelist event for the same ring, whether or not quorate changed.
	EventQuorum
	// EventDisconnected: the connection to corosync was lost. Err wraps
	// ErrConnectionLost; Quorate is false, because the state is unknown.
	EventDisconnected
	// EventReconnected: a new connection is up. A fresh snapshot
	// (nodelist, then quorum, both Initial) follows.
	EventReconnected
	// EventError is the last event of a stream that ended in failure; Err
	// says why. The channel closes after it.
	EventError
)

var kindNames = [...]string{"", "nodelist", "quorum", "disconnected", "reconnected", "error"}

// String returns the kind's name as quorumwatch --json prints it.
func (k EventKind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// RingID identifies a membership: the lowest node id in it and a sequence
// number that grows with every change. Compare sequence numbers by order only.
type RingID struct {
	NodeID uint32
	Seq    uint64
}

// String formats r as corosync 3 does in its log and in corosync-quorumtool:
// both numbers in hex, such as "1.2c". (JSON output keeps them as numbers.)
func (r RingID) String() string { return fmt.Sprintf("%x.%x", r.NodeID, r.Seq) }

// QuorumEvent is one notification from corosync, or one of the engine's
// connection events, as delivered to one subscriber.
//
// Every event carries the whole view as now known, so any single event is
// enough to act on. The slices are never nil, are in the order corosync sent
// them, and belong to the receiver: no other subscriber sees the same arrays.
type QuorumEvent struct {
	// Time is when the engine received the notification (for a coalesced
	// event, the newest one).
	Time time.Time
	// Seq numbers the events delivered on this channel: 1, 2, 3, ... with
	// no gaps. Coalescing does not skip numbers; Coalesced counts instead.
	Seq uint64
	// Kind is what produced the event; for a coalesced event, the newest.
	Kind EventKind
	// Initial marks the snapshot events sent at subscription and after a
	// reconnection.
	Initial bool
	// Quorate reports whether this node's partition has quorum. It is false
	// whenever the state is unknown (disconnected, reconnected, error; see
	// Known). On a nodelist
	// event after a membership change it is still the value corosync last
	// reported: the quorum event for the new ring, which corosync sends
	// right after, carries the new one. (A snapshot's nodelist event has
	// the snapshot's value.)
	Quorate bool
	// RingID identifies the membership that Members describes.
	RingID RingID
	// Members are the node ids in this node's partition.
	Members []uint32
	// Joined and Left are the node ids that joined and left since the
	// previous event on this channel. A node that left and came back (or the
	// reverse) between two deliveries is in both; so is a node whose
	// corosync restarted before the others noticed, in a single ring.
	Joined, Left []uint32
	// Coalesced counts the notifications merged into this one because the
	// subscriber was not reading: 0 means it stands alone.
	Coalesced int
	// Err is set on EventDisconnected and EventError events.
	Err error
}

// Known reports whether the event carries corosync's state. It is false for
// the engine's own events (EventDisconnected, EventReconnected, EventError),
// whose Quorate is false because the state is unknown, not because the
// partition lost quorum: a service should report "not ready" then, and
// "inquorate" only when Known is true and Quorate false.
func (e QuorumEvent) Known() bool {
	return e.Err == nil && (e.Kind == EventNodeList || e.Kind == EventQuorum)
}

func (e QuorumEvent) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s ring %s", e.Seq, e.Kind, e.RingID)
	if e.Quorate {
		b.WriteString(" quorate")
	} else {
		b.WriteString(" NOT quorate")
	}
	fmt.Fprintf(&b, " members %v joined %v left %v", e.Members, e.Joined, e.Left)
	if e.Initial {
		b.WriteString(" initial")
	}
	if e.Coalesced > 0 {
		fmt.Fprintf(&b, " coalesced %d", e.Coalesced)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, " error: %v", e.Err)
	}
	return b.String()
}
