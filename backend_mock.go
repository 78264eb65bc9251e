package quorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
)

// SimCluster is a simulated corosync cluster for tests and demos. Each node
// runs a simulated corosync with votequorum; SimCluster.Backend(id) connects
// to the one on node id, through the same engine as the real backends (the
// connection signals the engine through a descriptor: an eventfd on Linux,
// a pipe on other Unix systems).
//
// The quorum service follows corosync's semantics: a trackstart snapshot of
// a nodelist then a quorum notification, one nodelist and one quorum
// notification per membership change (Reform adds a ring that changes
// nothing, as corosync forms at times; Restart one in which a node left and
// joined at once), a quorum notification alone when quorate flips outside
// a membership change, ring ids named after the lowest member with a
// growing sequence number, CS_ERR_EXIST for a second trackstart,
// CS_ERR_LIBRARY once the local corosync stops.
//
// votequorum runs on each node as corosync 3.1's exec/votequorum.c does
// (see sim_votequorum.go): every node keeps its own table of the nodes it
// has heard of since it started (dead ones too), its expected votes,
// threshold and flags, and changes them only on the messages of its
// partition and on its own configuration. So a node that restarts forgets
// the nodes it has not seen since, SetExpectedVotes and SetVotes reach only
// the issuing node's partition, partitions that merge take a quorate node's
// expected votes (raised to the votes present), and the threshold falls
// only where votequorum lets it. What SimConfig sets is modelled: votes per
// node and node names, quorum.expected_votes, two_node (implying
// wait_for_all), wait_for_all, last_man_standing, auto_tie_breaker (lowest,
// highest or a list), no quorum provider, and a quorum device; corosync's
// refusals of a configuration at start make NewSimClusterConfig (and Start
// after a Reload) fail, and at run time corosync's fallbacks apply. The
// votequorum connection a picture Client opens (Backend's connectVotes)
// answers getinfo for any node from its node's point of view, setexpected,
// setvotes and tracking, with votequorum's notifications in corosync's
// order (per membership change: nodelist, expected votes when the votes
// present rose above them, quorum with every node seen; a quorum
// notification alone when quorate flips, none when only votes or the
// threshold change), and cmap's nodelist with its notifications on a
// Reload.
//
// The quorum device is corosync-qdevice (model net, algorithm ffsplit) on
// every node and one qnetd server, all instant: a daemon registers its
// device once its node has joined a ring; connected to qnetd, it gets the
// vote if its partition has more than half the configured nodes or, on a
// 50:50 split, more connected daemons, then the tie-breaker node; it polls
// votequorum with that vote (so the device is alive and casts it or not);
// cut from qnetd it keeps polling without the vote; a daemon that never
// reached qnetd does not poll (registered, not alive). See SetQnetd,
// StopQdevice, KillQdevice.
//
// What it does not model: timing (changes are instant, so the states a real
// cluster passes through on its way, such as a restarted node alone in its
// own ring before it joins, are not shown, nor what they leave behind: a
// real node can keep for a peer the expected votes that peer sent while
// the cluster formed and its quorum device came up; the last_man_standing
// window passes when EndLastManStandingWindow says so, a killed qdevice's
// timeout at once); the order of a sync's messages on the ring, which
// corosync leaves to the token (here: by node id); allow_downscale,
// expected_votes_tracking and cancel_wait_for_all; nodes added to or
// removed from the nodelist by a reload; qdevice algorithms other than
// ffsplit, its heuristics and keep_active_partition_tie_breaker; and the
// membership effects of a frozen corosync (Freeze stops only its IPC).
//
// All methods are safe for concurrent use. The zero value is not usable:
// call NewSimCluster, NewSimClusterN or NewSimClusterConfig.
type SimCluster struct {
	mu     sync.Mutex
	nodes  map[uint32]*simNode
	ids    []uint32  // sorted
	file   SimConfig // the corosync.conf every node reads when it starts
	seq    uint64
	outbox []vqDelivery // votequorum messages on their way
	qnetd  bool         // the quorum device server is reachable
	// stuck, if set, is called (without the lock) when a request starts
	// waiting for a frozen node: the tests' hook, set in export_test.go.
	stuck func(id uint32)
}

type simNode struct {
	id      uint32
	up      bool
	group   int // partition: nodes that are up and share a group see each other
	frozen  bool
	thaw    chan struct{} // closed by Thaw
	faults  []cs.Code     // errors for the next connects
	cfg     *SimConfig    // the configuration it runs with (its cmap)
	vq      *vqNode       // its votequorum; nil while stopped or without a provider
	qd      simQdevd      // corosync-qdevice on this node
	quorate bool          // the quorum service's
	ring    RingID
	members []uint32
	conns   map[*simConn]struct{}
	vconns  map[*simVoteConn]struct{}
}

// NewSimCluster returns a cluster of the given nodes, all up and in one
// partition, with votequorum and no other quorum option. Node ids must be
// non-zero and distinct.
func NewSimCluster(nodes ...SimNode) (*SimCluster, error) {
	return NewSimClusterConfig(SimConfig{Nodes: nodes})
}

// NewSimClusterN returns a cluster of n nodes with ids 1..n and one vote
// each.
func NewSimClusterN(n int) (*SimCluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: NewSimClusterN(%d): want at least one node", ErrInvalidParam, n)
	}
	nodes := make([]SimNode, n)
	for i := range nodes {
		nodes[i].ID = uint32(i + 1)
	}
	return NewSimCluster(nodes...)
}

// NewSimClusterConfig returns a cluster configured by cfg, every node up
// and in one partition, and, with a quorum device, every qdevice running
// and qnetd reachable. It returns an error matching ErrInvalidParam with
// corosync's reason for a configuration corosync refuses to start with.
func NewSimClusterConfig(cfg SimConfig) (*SimCluster, error) {
	cfg = cfg.clone()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c := &SimCluster{nodes: make(map[uint32]*simNode), file: cfg, seq: 4, qnetd: true}
	for _, nd := range cfg.Nodes {
		c.nodes[nd.ID] = &simNode{id: nd.ID, up: true, conns: make(map[*simConn]struct{}),
			vconns: make(map[*simVoteConn]struct{})}
		c.ids = append(c.ids, nd.ID)
	}
	slices.Sort(c.ids)
	for _, id := range c.ids {
		if err := c.boot(c.nodes[id]); err != nil {
			return nil, err
		}
	}
	c.settle()
	return c, nil
}

// Backend returns a Backend that connects to the simulated corosync on node
// id, as a program running on that node would.
func (c *SimCluster) Backend(id uint32) Backend { return simBackend{c, id} }

func (c *SimCluster) node(id uint32) (*simNode, error) {
	n := c.nodes[id]
	if n == nil {
		return nil, fmt.Errorf("%w: the simulated cluster has no node %d (it has %v)", ErrInvalidParam, id, c.ids)
	}
	return n, nil
}

// boot starts corosync on n with the configuration file as it is now: its
// votequorum starts alone, not yet in a ring.
func (c *SimCluster) boot(n *simNode) error {
	cfg := c.file.clone()
	n.cfg = &cfg
	n.vq, n.members, n.ring = nil, nil, RingID{}
	n.quorate = cfg.NoProvider
	n.qd.running, n.qd.polling = false, false
	if cfg.NoProvider {
		return nil
	}
	vq, err := newVQ(c, n)
	if err != nil {
		return err
	}
	n.vq = vq
	return nil
}

// Stop stops corosync on node id, as if killed: its connections are lost,
// new ones fail with CS_ERR_LIBRARY, and the other nodes see it leave.
func (c *SimCluster) Stop(id uint32) error {
	return c.change(id, func(n *simNode) error {
		n.up = false
		n.kill()
		return nil
	})
}

// kill ends node n's corosync process: its connections are lost, a freeze
// ends with it (SIGKILL ends a stopped process too), and its state is gone.
func (n *simNode) kill() {
	for sc := range n.conns {
		sc.loseLocked()
	}
	for vc := range n.vconns {
		vc.loseLocked()
	}
	if n.frozen {
		n.frozen = false
		close(n.thaw)
	}
	n.vq, n.members, n.ring, n.quorate = nil, nil, RingID{}, false
	n.qd.running, n.qd.polling = false, false
}

// Restart kills node id's corosync and starts it again faster than the
// other nodes notice (within the token timeout), as a quick restart of the
// service does. Its clients lose their connection (a reconnection finds it
// running), and every node of its partition gets one new ring with the
// same members, in which node id both left and joined. The restarted node
// reads the configuration file anew; if corosync would refuse it, the node
// stays stopped and the error says why.
func (c *SimCluster) Restart(id uint32) error {
	return c.withNode(id, func(n *simNode) error {
		if !n.up {
			return fmt.Errorf("%w: node %d is stopped; Start starts it", ErrInvalidParam, id)
		}
		n.kill()
		if err := c.boot(n); err != nil {
			n.up = false
			c.settle()
			return err
		}
		c.seq += 4
		c.sync(c.groupOf(n), []uint32{id})
		c.runQdevices()
		return nil
	})
}

// Start starts corosync on a stopped node id: it joins its partition again.
// It reads the configuration file as it is now (see Reload); if corosync
// would refuse it, the node stays stopped and the error says why.
func (c *SimCluster) Start(id uint32) error {
	return c.change(id, func(n *simNode) error {
		if n.up {
			return nil
		}
		if err := c.boot(n); err != nil {
			return err
		}
		n.up = true
		return nil
	})
}

// Freeze stops node id's corosync from answering (as SIGSTOP would): requests
// and connects wait, and no notification is delivered, until Thaw.
func (c *SimCluster) Freeze(id uint32) error {
	return c.withNode(id, func(n *simNode) error {
		if !n.frozen {
			n.frozen = true
			n.thaw = make(chan struct{})
		}
		return nil
	})
}

// Thaw lets a frozen node id answer again; what it queued is delivered.
func (c *SimCluster) Thaw(id uint32) error {
	return c.withNode(id, func(n *simNode) error {
		if n.frozen {
			n.frozen = false
			close(n.thaw)
			for sc := range n.conns {
				if len(sc.queue) > 0 {
					sc.signalLocked()
				}
			}
			for vc := range n.vconns {
				if len(vc.queue) > 0 || vc.changed {
					vc.signalLocked()
				}
			}
		}
		return nil
	})
}

// Disconnect drops every connection to node id's corosync, as an
// instantaneous restart would: the clients see CS_ERR_LIBRARY, the membership
// is unchanged.
func (c *SimCluster) Disconnect(id uint32) error {
	return c.withNode(id, func(n *simNode) error {
		for sc := range n.conns {
			sc.loseLocked()
		}
		for vc := range n.vconns {
			vc.loseLocked()
		}
		return nil
	})
}

// FailConnects makes the next count connects to node id (to the quorum
// service or to votequorum) fail with err, which must be ErrTryAgain
// (corosync starting), ErrAccess (user without a uidgid entry) or
// ErrConnectionLost (corosync not running).
func (c *SimCluster) FailConnects(id uint32, count int, err error) error {
	var code cs.Code
	switch {
	case errors.Is(err, ErrTryAgain):
		code = cs.ErrTryAgain
	case errors.Is(err, ErrAccess):
		code = cs.ErrAccess
	case errors.Is(err, ErrConnectionLost):
		code = cs.ErrLibrary
	default:
		return fmt.Errorf("%w: FailConnects takes ErrTryAgain, ErrAccess or ErrConnectionLost, not %v", ErrInvalidParam, err)
	}
	if count < 0 {
		return fmt.Errorf("%w: FailConnects count %d is negative", ErrInvalidParam, count)
	}
	return c.withNode(id, func(n *simNode) error {
		for range count {
			n.faults = append(n.faults, code)
		}
		return nil
	})
}

// Partition splits the network: each group of node ids can see only its own
// members; nodes in no group form one more partition together.
func (c *SimCluster) Partition(groups ...[]uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	assign := make(map[uint32]int)
	for g, ids := range groups {
		for _, id := range ids {
			if _, err := c.node(id); err != nil {
				return err
			}
			if _, dup := assign[id]; dup {
				return fmt.Errorf("%w: node %d is in two partitions", ErrInvalidParam, id)
			}
			assign[id] = g + 1
		}
	}
	for _, id := range c.ids {
		c.nodes[id].group = assign[id]
	}
	c.settle()
	return nil
}

// Heal joins every partition back into one.
func (c *SimCluster) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		n.group = 0
	}
	c.settle()
}

// Reform makes the partition of node id form a new ring with the same
// members, as corosync does when a membership round fails to take in a
// rejoining node or a lost token is recovered: each node of that partition
// gets a new ring id and a nodelist notification with nothing joined or
// left, then a quorum notification. Code that treats every nodelist event
// as a change can be tested against it. Node id must be running. (The
// conformance suite checks this against a real corosync, where such a ring
// is made by stopping one node's corosync until the token is lost.)
func (c *SimCluster) Reform(id uint32) error {
	return c.withNode(id, func(n *simNode) error {
		if !n.up {
			return fmt.Errorf("%w: node %d is stopped, so it forms no ring; Start it first", ErrInvalidParam, id)
		}
		c.seq += 4
		c.sync(c.groupOf(n), []uint32{})
		c.runQdevices()
		return nil
	})
}

// SetTwoNode turns votequorum's two_node mode on or off in the
// configuration file and reloads it on every running node (see Reload):
// with it, a partition of at most two nodes needs one vote, and
// wait_for_all is implied unless the configuration sets it (a node that
// starts, or loses quorum, waits until it has seen all expected votes). As
// with a configuration reload, running nodes keep their wait_for_all
// status.
func (c *SimCluster) SetTwoNode(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.file.clone()
	cfg.TwoNode = on
	c.file = cfg
	for _, g := range c.groups() {
		c.reload(g)
	}
}

// SetExpectedVotes changes expected votes as corosync-quorumtool -e does on
// node id: a cluster message, so it reaches node id's partition only. Like
// votequorum it refuses (an error matching ErrInvalidParam) a value below
// the votes present, or one that would make a quorate partition inquorate.
// The other partitions keep theirs until they merge (see the SimCluster
// doc). Every votequorum tracker of the partition gets an expected votes
// notification.
func (c *SimCluster) SetExpectedVotes(id uint32, votes uint32) error {
	return c.withVotequorum(id, "votequorum_setexpected", func(vq *vqNode) error {
		return vq.setExpected(votes)
	})
}

// SetVotes changes the votes of node nodeID as corosync-quorumtool -v
// votes -n nodeID does on node issuer (nodeID 0 is the quorum device, as in
// votequorum): a cluster message, reaching issuer's partition only. Like
// votequorum it refuses a node that issuer has never heard of (an error
// whose Code is CS_ERR_NAME_NOT_FOUND) and votes that would put the quorum
// above the votes present or below half of them (an error matching
// ErrInvalidParam). No notification comes unless quorate flips.
func (c *SimCluster) SetVotes(issuer, nodeID, votes uint32) error {
	return c.withVotequorum(issuer, "votequorum_setvotes", func(vq *vqNode) error {
		return vq.setVotes(nodeID, votes)
	})
}

// EndLastManStandingWindow makes the last_man_standing window pass on
// every running node where it is open (it opens on a node when members
// leave its ring): a quorate node then takes the number of nodes present
// as its expected votes, and lowers its quorum to match. It sends no
// notification unless quorate flips. Nothing happens without
// last_man_standing.
func (c *SimCluster) EndLastManStandingWindow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range c.ids {
		if vq := c.nodes[id].vq; vq != nil && vq.lmsTimer && vq.lms {
			vq.lmsExpire()
		}
	}
	c.deliver()
}

// View returns node id's current view, as corosync-quorumtool -s prints it.
func (c *SimCluster) View(id uint32) (quorate bool, ring RingID, members []uint32, err error) {
	err = c.withNode(id, func(n *simNode) error {
		if !n.up {
			return newError("quorum_getquorate", cs.ErrLibrary, nil)
		}
		quorate, ring, members = n.quorate, n.ring, slices.Clone(n.members)
		return nil
	})
	return quorate, ring, members, err
}

// withNode runs f on node id with the cluster locked.
func (c *SimCluster) withNode(id uint32, f func(*simNode) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.node(id)
	if err != nil {
		return err
	}
	return f(n)
}

// withVotequorum runs f on node id's votequorum and delivers what it sent.
func (c *SimCluster) withVotequorum(id uint32, op string, f func(*vqNode) error) error {
	return c.withNode(id, func(n *simNode) error {
		if err := n.votequorum(op); err != nil {
			return err
		}
		err := f(n.vq)
		c.deliver()
		return err
	})
}

// votequorum returns an error when n's votequorum cannot be reached.
func (n *simNode) votequorum(op string) error {
	switch {
	case !n.up:
		return newError(op, cs.ErrLibrary, nil)
	case n.vq == nil:
		return newError(op, cs.ErrNotSupported, errNoProvider)
	}
	return nil
}

var errNoProvider = errors.New("corosync runs without a quorum provider: votequorum is not loaded")

// change applies f to node id and derives every view anew.
func (c *SimCluster) change(id uint32, f func(*simNode) error) error {
	return c.withNode(id, func(n *simNode) error {
		if err := f(n); err != nil {
			return err
		}
		c.settle()
		return nil
	})
}

// groups returns the partitions of the running nodes, each in id order,
// ordered by their lowest id.
func (c *SimCluster) groups() [][]uint32 {
	var out [][]uint32
	index := make(map[int]int)
	for _, id := range c.ids {
		n := c.nodes[id]
		if !n.up {
			continue
		}
		i, ok := index[n.group]
		if !ok {
			i = len(out)
			index[n.group] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], id)
	}
	return out
}

// groupOf returns the running members of n's partition.
func (c *SimCluster) groupOf(n *simNode) []uint32 {
	for _, g := range c.groups() {
		if slices.Contains(g, n.id) {
			return g
		}
	}
	return nil
}

// settle gives every partition whose membership changed a new ring (one
// sequence number for all of them, as one membership round), then lets the
// quorum devices follow.
func (c *SimCluster) settle() {
	bumped := false
	for _, g := range c.groups() {
		changed := false
		for _, id := range g {
			changed = changed || !slices.Equal(c.nodes[id].members, g)
		}
		if !changed {
			continue
		}
		if !bumped {
			c.seq += 4
			bumped = true
		}
		c.sync(g, nil)
	}
	c.runQdevices()
}

// sync is corosync's sync of a new ring of members, on each of them: the
// services learn the membership, votequorum's members send their state to
// the ring, the quorum devices poll for the new ring, then the services
// activate it and tell their trackers. joinedLeft, when not nil, is what
// the quorum service reports as both joined and left (a quick restart, or
// nothing for a re-formed ring); otherwise the difference with each node's
// last membership.
func (c *SimCluster) sync(members []uint32, joinedLeft []uint32) {
	ring := RingID{NodeID: members[0], Seq: c.seq}
	joined := make(map[uint32][]uint32, len(members))
	left := make(map[uint32][]uint32, len(members))
	for _, id := range members {
		n := c.nodes[id]
		if joinedLeft != nil {
			joined[id], left[id] = joinedLeft, joinedLeft
		} else {
			j, l := diff(n.members, members)
			joined[id], left[id] = orEmpty(j), orEmpty(l)
		}
		n.members, n.ring = slices.Clone(members), ring
		if n.vq != nil {
			n.vq.syncInit(members, ring)
		}
	}
	for _, id := range members {
		if vq := c.nodes[id].vq; vq != nil {
			vq.syncProcess()
		}
	}
	c.deliver()
	c.pollQdevices(members)
	for _, id := range members {
		n := c.nodes[id]
		for sc := range n.conns {
			if sc.tracking {
				sc.enqueueLocked(sc.nodelist(joined[id], left[id]))
			}
		}
		if n.vq != nil {
			n.vq.syncActivate()
		}
	}
}

// deliver hands every message on its way to each running member of its
// ring, one message at a time, in the order sent: the ring's agreed order.
func (c *SimCluster) deliver() {
	// A handler may send more: they are appended and delivered in turn.
	// The outbox's array is kept for the next change.
	for i := 0; i < len(c.outbox); i++ {
		d := c.outbox[i]
		for _, id := range d.to {
			if n := c.nodes[id]; n.up && n.vq != nil {
				n.vq.receive(d.msg)
			}
		}
	}
	clear(c.outbox)
	c.outbox = c.outbox[:0]
}

// quorumCallback is votequorum telling the quorum service that quorate
// changed or a ring was activated: its trackers get a quorum notification.
func (n *simNode) quorumCallback(quorate bool) {
	n.quorate = quorate
	for sc := range n.conns {
		if sc.tracking {
			sc.enqueueLocked(sc.quorum())
		}
	}
}

// voteEvent sends a votequorum notification to n's votequorum trackers,
// each with its own copy of the lists.
func (n *simNode) voteEvent(ev model.VoteEvent) {
	for vc := range n.vconns {
		if vc.tracking {
			vc.enqueueLocked(cloneVoteEvent(ev))
		}
	}
}

func cloneVoteEvent(ev model.VoteEvent) model.VoteEvent {
	ev.Nodes = slices.Clone(ev.Nodes)
	ev.Members = slices.Clone(ev.Members)
	return ev
}

func orEmpty(s []uint32) []uint32 {
	if s == nil {
		return []uint32{}
	}
	return s
}

type simBackend struct {
	c  *SimCluster
	id uint32
}

func (b simBackend) Connect(ctx context.Context, _ ConnectParams) (Conn, error) {
	var sc *simConn
	err := b.connect(ctx, "quorum_initialize", func(n *simNode, sig simSignal) {
		sc = &simConn{simLink: simLink[Notification]{c: b.c, n: n, sig: sig, done: make(chan struct{})}}
		n.conns[sc] = struct{}{}
	})
	if err != nil {
		return nil, err
	}
	return sc, nil
}

// connect waits while node id is frozen, fails as FailConnects or a stopped
// corosync says, and otherwise calls add with the lock held.
func (b simBackend) connect(ctx context.Context, op string, add func(*simNode, simSignal)) error {
	c := b.c
	for {
		c.mu.Lock()
		n, err := c.node(b.id)
		if err != nil {
			c.mu.Unlock()
			return err
		}
		if len(n.faults) > 0 {
			code := n.faults[0]
			n.faults = n.faults[1:]
			c.mu.Unlock()
			return newError(op, code, nil)
		}
		if !n.up {
			c.mu.Unlock()
			return newError(op, cs.ErrLibrary, nil)
		}
		if n.frozen {
			thaw := n.thaw
			c.mu.Unlock()
			select {
			case <-thaw:
				continue
			case <-ctx.Done():
				return fmt.Errorf("waiting for the simulated corosync on node %d, which is frozen, to answer: %w", b.id, ctx.Err())
			}
		}
		sig, err := newSimSignal()
		if err != nil {
			c.mu.Unlock()
			return err
		}
		add(n, sig)
		c.mu.Unlock()
		return nil
	}
}

// simLink is what a client connection to a simulated corosync has,
// whichever service it is to. Its fields are guarded by the cluster's
// mutex.
type simLink[T any] struct {
	c      *SimCluster
	n      *simNode
	sig    simSignal
	queue  []T
	lost   bool
	closed bool
	done   chan struct{} // closed by Close
}

func (l *simLink[T]) enqueueLocked(v T) {
	l.queue = append(l.queue, v)
	if !l.n.frozen {
		l.signalLocked()
	}
}

func (l *simLink[T]) signalLocked() { l.sig.raise() }

// loseLocked ends the link as a dead corosync does; it reports whether it
// was live.
func (l *simLink[T]) loseLocked() bool {
	if l.lost || l.closed {
		return false
	}
	l.lost = true
	l.queue = nil
	l.signalLocked() // the hang-up: readable until closed
	return true
}

// dispatch hands fn what is queued, unless the node is frozen; take, if
// not nil, runs with the queue taken, under the lock.
func (l *simLink[T]) dispatch(op string, fn func(T), take func()) error {
	l.c.mu.Lock()
	switch {
	case l.closed:
		l.c.mu.Unlock()
		return newError(op, cs.ErrBadHandle, nil)
	case l.lost:
		l.c.mu.Unlock()
		return newError(op, cs.ErrLibrary, nil)
	}
	l.sig.clear()
	var q []T
	if !l.n.frozen {
		q, l.queue = l.queue, nil
		if take != nil {
			take()
		}
	}
	l.c.mu.Unlock()
	for _, v := range q {
		fn(v)
	}
	return nil
}

// request waits while the node is frozen, then runs f with the lock held.
func (l *simLink[T]) request(ctx context.Context, op string, f func() error) error {
	for {
		l.c.mu.Lock()
		switch {
		case l.closed:
			l.c.mu.Unlock()
			return newError(op, cs.ErrBadHandle, nil)
		case l.lost:
			l.c.mu.Unlock()
			return newError(op, cs.ErrLibrary, nil)
		case l.n.frozen:
			thaw, stuck := l.n.thaw, l.c.stuck
			l.c.mu.Unlock()
			if stuck != nil {
				stuck(l.n.id)
			}
			select {
			case <-thaw:
				continue
			case <-l.done:
				continue
			case <-ctx.Done():
				return fmt.Errorf("waiting for the simulated corosync on node %d, which is frozen, to answer %s: %w", l.n.id, op, ctx.Err())
			}
		}
		err := f()
		l.c.mu.Unlock()
		return err
	}
}

// closeLocked marks the link closed; it reports whether it was open.
func (l *simLink[T]) closeLocked() bool {
	if l.closed {
		return false
	}
	l.closed = true
	close(l.done)
	return true
}

// simConn is one client connection to a simulated corosync's quorum
// service.
type simConn struct {
	simLink[Notification]
	tracking bool
}

func (sc *simConn) nodelist(joined, left []uint32) Notification {
	return Notification{Kind: EventNodeList, RingID: sc.n.ring, Members: sc.n.members,
		Joined: joined, Left: left}
}

// quorum is the quorum service's quorum notification. Without a provider
// nothing ever sets its ring and view, so they stay empty, and it is
// quorate.
func (sc *simConn) quorum() Notification {
	if sc.n.cfg.NoProvider {
		return Notification{Kind: EventQuorum, Quorate: true, Members: []uint32{}}
	}
	return Notification{Kind: EventQuorum, Quorate: sc.n.quorate, RingID: sc.n.ring, Members: sc.n.members}
}

func (sc *simConn) loseLocked() {
	if sc.simLink.loseLocked() {
		delete(sc.n.conns, sc)
	}
}

func (sc *simConn) Fd() int { return sc.sig.fd() }

func (sc *simConn) Dispatch(fn func(Notification)) error {
	return sc.dispatch("quorum_dispatch", fn, nil)
}

func (sc *simConn) Quorate(ctx context.Context) (bool, error) {
	var q bool
	err := sc.request(ctx, "quorum_getquorate", func() error {
		q = sc.n.quorate
		return nil
	})
	return q, err
}

func (sc *simConn) TrackStart(ctx context.Context, flags TrackFlags) error {
	return sc.request(ctx, "quorum_trackstart", func() error {
		if flags&(TrackCurrent|TrackChanges) != 0 {
			sc.enqueueLocked(sc.nodelist([]uint32{}, []uint32{}))
			sc.enqueueLocked(sc.quorum())
		}
		if sc.tracking {
			return newError("quorum_trackstart", cs.ErrExist, nil)
		}
		if flags&(TrackChanges|TrackChangesOnly) != 0 {
			sc.tracking = true
		}
		return nil
	})
}

func (sc *simConn) Close() error {
	sc.c.mu.Lock()
	defer sc.c.mu.Unlock()
	if !sc.closeLocked() {
		return nil
	}
	delete(sc.n.conns, sc)
	return sc.sig.close()
}
