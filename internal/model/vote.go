package model

// What both real backends hand the root package of votequorum (service 5)
// and of cmap's nodelist: the replies and notifications the picture is made
// of, decoded, with corosync's values unchanged.

// votequorum's node states (VOTEQUORUM_NODESTATE_*).
const (
	NodeMember  uint32 = 1
	NodeDead    uint32 = 2
	NodeLeaving uint32 = 3
)

// votequorum's info flags (VOTEQUORUM_INFO_*): the first six are the
// cluster's, the last four those of the queried node's quorum device.
const (
	FlagTwoNode           uint32 = 1
	FlagQuorate           uint32 = 2
	FlagWaitForAll        uint32 = 4
	FlagLastManStanding   uint32 = 8
	FlagAutoTieBreaker    uint32 = 16
	FlagAllowDownscale    uint32 = 32
	FlagQdeviceRegistered uint32 = 64
	FlagQdeviceAlive      uint32 = 128
	FlagQdeviceCastVote   uint32 = 256
	FlagQdeviceMasterWins uint32 = 512
)

// VoteInfo is votequorum_getinfo's reply (struct votequorum_info) for one
// node. NodeID is the node's real id even when 0 (this node) was asked.
type VoteInfo struct {
	NodeID          uint32
	State           uint32 // NodeMember, NodeDead or NodeLeaving
	Votes           uint32
	Expected        uint32
	HighestExpected uint32
	TotalVotes      uint32
	Quorum          uint32
	Flags           uint32
	QdeviceVotes    uint32
	QdeviceName     string
}

// VoteKind says which votequorum or cmap notification a VoteEvent is.
type VoteKind uint8

const (
	// VoteQuorum is votequorum's quorum notification: Quorate and Nodes.
	VoteQuorum VoteKind = iota + 1
	// VoteExpected is votequorum's expected votes notification: Expected.
	VoteExpected
	// VoteNodeList is votequorum's nodelist notification: Ring and Members.
	VoteNodeList
	// ConfigChanged is a cmap notification on a tracked key (the nodelist,
	// or the reload marker): the configured nodes should be read again.
	ConfigChanged
	// VoteOther is a votequorum notification of a kind the client does not
	// decode (corosync main's qdevice information, id 7): something
	// changed, and votequorum should be read again.
	VoteOther
)

// VoteNode is one entry of votequorum's quorum notification.
type VoteNode struct {
	ID    uint32
	State uint32
}

// VoteEvent is one votequorum or cmap notification. The slices belong to the
// receiver.
type VoteEvent struct {
	Kind     VoteKind
	Quorate  bool       // VoteQuorum
	Nodes    []VoteNode // VoteQuorum: every node votequorum has seen, dead ones too
	Expected uint32     // VoteExpected
	Ring     RingID     // VoteNodeList
	Members  []uint32   // VoteNodeList
}

// ConfNode is one node of corosync's configured nodelist (cmap
// nodelist.node.<n>): its id, its name as corosync-quorumtool of the
// server's version shows it (3.x: the name key, else ring0_addr; 2.x:
// ring0_addr always), and its configured votes (quorum_votes; 0 when not
// set, which means 1).
type ConfNode struct {
	ID    uint32
	Name  string
	Votes uint32
}

// Config is what cmap says of the quorum configuration. Provider is
// quorum.provider ("" when none is configured: corosync then reports every
// partition quorate).
type Config struct {
	Provider string
	Nodes    []ConfNode // sorted by ID
}
