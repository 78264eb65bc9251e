package quorum

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/corosync-go/quorum/internal/model"
)

// Picture is the whole state of the cluster as this node's corosync sees it:
// what `corosync-quorumtool -s` shows, from the quorum service, votequorum
// and cmap's nodelist. A Client opened WithPicture keeps it up to date;
// Picture returns it and SubscribePicture streams it.
//
// One value never mixes two states without saying so: when the membership
// or quorum changes, the engine first delivers a value with the new ring,
// members and Quorate at once and Syncing set (the votes, thresholds and
// flags are still those read before the change), then re-reads votequorum
// and delivers the complete value with Syncing clear.
type Picture struct {
	// Connected reports that the Client is connected and has read the
	// picture. When false the state is unknown: Quorate and Syncing are
	// false, the rest is the last known, and Err says why; before the first
	// read the value is zero.
	Connected bool
	// Syncing reports that the membership or quorum changed and the votes,
	// thresholds, flags and node states below are still from before the
	// change; a value with Syncing clear follows once they are re-read.
	// RingID, Quorate and which nodes are members are always current.
	Syncing bool
	// Provider is corosync's quorum provider, "corosync_votequorum", or ""
	// when none is configured: corosync then reports every partition
	// quorate, and the vote fields are zero.
	Provider string
	// NodeID is this node's id (0 without a provider).
	NodeID uint32
	// RingID and Quorate are the quorum service's, as in QuorumEvent.
	RingID  RingID
	Quorate bool
	// ExpectedVotes, HighestExpected, TotalVotes and Quorum are
	// votequorum's, as corosync-quorumtool prints them: this node's expected
	// votes, the highest expected votes of the members, the votes present
	// (with the quorum device's, when it votes) and the votes needed.
	ExpectedVotes, HighestExpected, TotalVotes, Quorum uint32
	// Flags are the cluster's votequorum flags (FlagTwoNode to
	// FlagAllowDownscale; FlagQuorate is votequorum's own view, which
	// corosync-quorumtool prints as "Activity blocked" when clear).
	Flags VoteFlags
	// Nodes are every node this node knows of, sorted by id: the configured
	// nodelist, and any other node votequorum has seen.
	Nodes []NodeInfo
	// Qdevice is the quorum device as this node sees it; Registered is
	// false when there is none.
	Qdevice Qdevice
	// Time is when the engine learnt this value: corosync's notification
	// of the change, or the re-read that found it (zero before the
	// first).
	Time time.Time
	// Err says why the state is unknown (it matches ErrConnectionLost while
	// corosync cannot be reached), or why the last re-read of votequorum
	// failed while the quorum service still answers (the value is then
	// Syncing); nil otherwise. On the last value of a stream it says why
	// the stream ended.
	Err error
}

// NodeInfo is one node of a Picture.
type NodeInfo struct {
	ID uint32
	// Name is the node's name as corosync-quorumtool shows it: the
	// nodelist's name, or its first address on corosync 2.x; "" when the
	// node is not in the configured nodelist.
	Name string
	// Votes are the node's votes, as votequorum has them (the configured
	// quorum_votes for a node it has never seen; 0 without a provider).
	Votes uint32
	State NodeState
	// Local marks this node.
	Local bool
	// Qdevice is the node's quorum device state, as the node reported it
	// (corosync-quorumtool's Qdevice column).
	Qdevice QdeviceState
}

// NodeState is a node's state in votequorum.
type NodeState uint8

const (
	// NodeNotSeen: configured, but votequorum has not seen it since this
	// corosync started.
	NodeNotSeen NodeState = 0
	// NodeMember: in this node's membership.
	NodeMember NodeState = NodeState(model.NodeMember)
	// NodeDead: seen before, not a member now.
	NodeDead NodeState = NodeState(model.NodeDead)
	// NodeLeaving: leaving the cluster (corosync-cfgtool -H).
	NodeLeaving NodeState = NodeState(model.NodeLeaving)
)

func (s NodeState) String() string {
	switch s {
	case NodeNotSeen:
		return "not-seen"
	case NodeMember:
		return "member"
	case NodeDead:
		return "dead"
	case NodeLeaving:
		return "leaving"
	}
	return fmt.Sprintf("NodeState(%d)", uint8(s))
}

// QdeviceState is a quorum device's state as one node reports it.
type QdeviceState struct {
	Registered bool // a qdevice daemon is registered on the node
	Alive      bool // it polls votequorum in time
	CastVote   bool // it casts its vote for the node's partition
	MasterWins bool // it asked for master_wins
}

// String formats s as corosync-quorumtool's Qdevice column: "NR" when not
// registered, else e.g. "A,V,NMW".
func (s QdeviceState) String() string {
	if !s.Registered {
		return "NR"
	}
	pick := func(on bool, yes, no string) string {
		if on {
			return yes
		}
		return no
	}
	return pick(s.Alive, "A", "NA") + "," + pick(s.CastVote, "V", "NV") + "," + pick(s.MasterWins, "MW", "NMW")
}

// Qdevice is the quorum device of a Picture.
type Qdevice struct {
	QdeviceState
	Name  string // the device's model, e.g. "Qdevice"
	Votes uint32 // the votes it is configured to cast
}

// VoteFlags are votequorum's info flags, with corosync's values.
type VoteFlags uint32

const (
	FlagTwoNode         VoteFlags = VoteFlags(model.FlagTwoNode)
	FlagQuorate         VoteFlags = VoteFlags(model.FlagQuorate)
	FlagWaitForAll      VoteFlags = VoteFlags(model.FlagWaitForAll)
	FlagLastManStanding VoteFlags = VoteFlags(model.FlagLastManStanding)
	FlagAutoTieBreaker  VoteFlags = VoteFlags(model.FlagAutoTieBreaker)
	FlagAllowDownscale  VoteFlags = VoteFlags(model.FlagAllowDownscale)
	// FlagQdevice is set in a Picture's Flags when a quorum device is
	// registered, as corosync-quorumtool's "Qdevice" flag.
	FlagQdevice VoteFlags = VoteFlags(model.FlagQdeviceRegistered)
)

// String lists the flags with corosync-quorumtool's words, space separated.
func (f VoteFlags) String() string {
	var w []string
	for _, p := range []struct {
		f    VoteFlags
		name string
	}{{FlagTwoNode, "2Node"}, {FlagQuorate, "Quorate"}, {FlagWaitForAll, "WaitForAll"},
		{FlagLastManStanding, "LastManStanding"}, {FlagAutoTieBreaker, "AutoTieBreaker"},
		{FlagAllowDownscale, "AllowDownscale"}, {FlagQdevice, "Qdevice"}} {
		if f&p.f != 0 {
			w = append(w, p.name)
		}
	}
	return strings.Join(w, " ")
}

// Node returns the node with id, and whether p has it.
func (p *Picture) Node(id uint32) (NodeInfo, bool) {
	i, ok := slices.BinarySearchFunc(p.Nodes, id, func(n NodeInfo, id uint32) int {
		return cmp.Compare(n.ID, id)
	})
	if !ok {
		return NodeInfo{}, false
	}
	return p.Nodes[i], true
}

// Members returns the ids of the member nodes, ascending.
func (p *Picture) Members() []uint32 {
	var m []uint32
	for _, n := range p.Nodes {
		if n.State == NodeMember {
			m = append(m, n.ID)
		}
	}
	return m
}

// clone returns p with its own Nodes.
func (p Picture) clone() Picture {
	p.Nodes = slices.Clone(p.Nodes)
	return p
}

// unknown returns p as a value whose state corosync has not given: the
// last known values, but not connected, not quorate and not Syncing (which
// would claim the ring and quorate are current), with err saying why. Every
// such value the engine makes comes from here.
func (p Picture) unknown(err error) Picture {
	p.Connected, p.Syncing, p.Quorate, p.Err = false, false, false, err
	return p
}

var errNoPicture = fmt.Errorf("%w: this Client was opened without WithPicture", ErrInvalidParam)

// Picture returns the Client's cached picture: no round trip, and it never
// waits for corosync, so a health check or a scrape may call it per request.
// Its Nodes belong to the caller. Before the first read (and while corosync
// cannot be reached) Connected is false. On a Client opened without
// WithPicture, on a closed or failed one, Err says so.
func (c *Client) Picture() Picture {
	if c.done == nil {
		return Picture{Err: errZeroClient}
	}
	if !c.set.picture {
		return Picture{Err: errNoPicture}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stoppedLocked(); err != nil {
		return c.pic.clone().unknown(err)
	}
	return c.pic.clone()
}

// SubscribePicture streams the picture: first the current value, as soon as
// it is known, then a new value whenever any part of it changes. While
// corosync cannot be reached it delivers a value with Connected false and
// Err matching ErrConnectionLost, then the picture again once reconnected.
//
// The channel has the contract of Subscribe's: the engine owns it, never
// waits for the reader, and closes it exactly once, when ctx is cancelled
// (promptly, with no further value) or after a last value whose Err says why
// the stream ended (ErrClosed after Close, ErrSlowConsumer). Undelivered
// values are coalesced into the newest, which is the whole state; with
// WithLossless(n) every value is kept until n are waiting, and the next ends
// the stream with ErrSlowConsumer.
//
// The Client must have been opened WithPicture.
func (c *Client) SubscribePicture(ctx context.Context, opts ...SubscribeOption) (<-chan Picture, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	if c.done == nil {
		return nil, errZeroClient
	}
	if !c.set.picture {
		return nil, errNoPicture
	}
	set, err := buildSettings(subscribeOptions(opts))
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stoppedLocked(); err != nil {
		return nil, err
	}
	s := newPicSubscriber(set.lossless)
	c.picSubs[s] = struct{}{}
	s.stop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.endPic(s, nil)
		c.mu.Unlock()
	})
	if c.pic.Connected || c.down != nil {
		c.pushPic(s, c.pic)
	}
	return s.ch, nil
}

// SetExpectedVotes sets this node's expected votes, as
// `corosync-quorumtool -e` does (votequorum_setexpected): corosync applies
// it to every node of this node's partition. corosync refuses a value below
// the votes present or one that would make a quorate partition inquorate:
// the error then matches ErrInvalidParam. The Client must have been opened
// WithPicture; while it is reconnecting the error matches
// ErrConnectionLost.
func (c *Client) SetExpectedVotes(ctx context.Context, expected uint32) error {
	if expected == 0 {
		return fmt.Errorf("%w: expected votes 0: corosync needs at least 1", ErrInvalidParam)
	}
	return c.voteRequest(ctx, "votequorum_setexpected", func(v voteConn) error {
		return v.SetExpected(ctx, expected)
	})
}

// SetVotes sets the votes of node nodeID, as `corosync-quorumtool -v -n`
// does (votequorum_setvotes). As in votequorum, node id 0 is the quorum
// device, not this node: this node's id is Picture().NodeID. corosync
// applies it in this node's partition, and notifies nothing unless quorate
// changes (see WithPictureRefresh); this Client re-reads at once.
// corosync's refusals come as an *Error with its code: CodeNameNotFound for
// a node votequorum does not know, CodeInvalidParam (matching
// ErrInvalidParam) for votes it refuses. The Client must have been opened
// WithPicture; while it is reconnecting the error matches
// ErrConnectionLost.
func (c *Client) SetVotes(ctx context.Context, nodeID, votes uint32) error {
	return c.voteRequest(ctx, "votequorum_setvotes", func(v voteConn) error {
		return v.SetVotes(ctx, nodeID, votes)
	})
}

// voteRequest runs an administrative request on the session's votequorum
// connection, then makes the pump re-read the picture, since corosync sends
// no notification for a change of votes or thresholds that leaves quorate
// as it was.
func (c *Client) voteRequest(ctx context.Context, op string, call func(voteConn) error) error {
	if ctx == nil {
		return errNilContext
	}
	if c.done == nil {
		return errZeroClient
	}
	if !c.set.picture {
		return fmt.Errorf("%s: %w", op, errNoPicture)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	sess, err := c.sess, c.stoppedLocked()
	c.mu.Unlock()
	switch {
	case err != nil:
		return err
	case sess == nil || sess.votes == nil:
		return fmt.Errorf("%s: %w: reconnecting to corosync", op, ErrConnectionLost)
	}
	err = call(sess.votes)
	c.mu.Lock()
	if c.sess == sess {
		sess.pic.stale = true
		c.wakeLocked()
	}
	stopped, lost := c.stoppedLocked(), c.sess != sess
	c.mu.Unlock()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return err
	case stopped != nil:
		return fmt.Errorf("%s was cut off: %w", op, stopped)
	case lost:
		return fmt.Errorf("%s was cut off: %w", op, ErrConnectionLost)
	}
	return fromInternal(err)
}
