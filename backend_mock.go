package quorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/corosync-go/quorum/internal/cs"
)

// SimCluster is a simulated corosync cluster for tests and demos. Each node
// runs a simulated corosync with votequorum; SimCluster.Backend(id) connects
// to the one on node id, through the same engine as the real backends (the
// connection signals the engine through a descriptor: an eventfd on Linux,
// a pipe on other Unix systems).
//
// It follows corosync's semantics: a trackstart snapshot of a nodelist then
// a quorum notification, one nodelist and one quorum notification per
// membership change (Reform adds a ring that changes nothing, as corosync
// forms at times; Restart one in which a node left and joined at once),
// ring ids named after the lowest member with a growing sequence number,
// CS_ERR_EXIST for a second trackstart, CS_ERR_LIBRARY once the local
// corosync stops. Quorum follows votequorum as each node runs it (see
// sim_votequorum.go): every node keeps its own expected votes (the sum of all
// votes at start) and quorum threshold (expected/2 + 1, falling only when an
// administrator lowers expected votes); SetExpectedVotes reaches only the
// issuing node's partition; partitions that merge take a quorate node's
// expected votes, raised to the votes present; two_node makes one vote
// enough for a two-node partition and implies wait_for_all (a node that
// starts, or loses quorum, waits until it has seen all expected votes).
//
// What it does not model: timing (changes are instant, so the states a real
// cluster passes through on its way, such as a restarted node alone in its
// own ring before it joins, are not shown), quorum devices, and the
// membership effects of a frozen corosync (Freeze stops only its IPC).
//
// All methods are safe for concurrent use. The zero value is not usable:
// call NewSimCluster.
type SimCluster struct {
	mu      sync.Mutex
	nodes   map[uint32]*simNode
	ids     []uint32 // sorted
	twoNode bool
	seq     uint64
	// stuck, if set, is called (without the lock) when a request starts
	// waiting for a frozen node: the tests' hook, set in export_test.go.
	stuck func(id uint32)
}

// SimNode describes one simulated node. Votes 0 means 1.
type SimNode struct {
	ID    uint32
	Votes uint32
}

type simNode struct {
	id, votes uint32
	up        bool
	group     int // partition: nodes that are up and share a group see each other
	frozen    bool
	thaw      chan struct{} // closed by Thaw
	faults    []cs.Code     // errors for the next connects
	quorate   bool
	vq        vqState // this node's votequorum
	ring      RingID
	members   []uint32
	conns     map[*simConn]struct{}
}

// NewSimCluster returns a cluster of the given nodes, all up and in one
// partition. Node ids must be non-zero and distinct.
func NewSimCluster(nodes ...SimNode) (*SimCluster, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%w: NewSimCluster needs at least one node", ErrInvalidParam)
	}
	c := &SimCluster{nodes: make(map[uint32]*simNode), seq: 4}
	for _, n := range nodes {
		if n.ID == 0 {
			return nil, fmt.Errorf("%w: node id 0 is reserved by corosync: use ids from 1", ErrInvalidParam)
		}
		if c.nodes[n.ID] != nil {
			return nil, fmt.Errorf("%w: node id %d given twice", ErrInvalidParam, n.ID)
		}
		votes := n.Votes
		if votes == 0 {
			votes = 1
		}
		c.nodes[n.ID] = &simNode{id: n.ID, votes: votes, up: true, conns: make(map[*simConn]struct{})}
		c.ids = append(c.ids, n.ID)
	}
	slices.Sort(c.ids)
	for _, n := range c.nodes {
		c.boot(n)
	}
	c.recompute(false)
	return c, nil
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

// Stop stops corosync on node id, as if killed: its connections are lost,
// new ones fail with CS_ERR_LIBRARY, and the other nodes see it leave.
func (c *SimCluster) Stop(id uint32) error {
	return c.change(id, func(n *simNode) {
		n.up = false
		n.kill()
	})
}

// kill ends node n's corosync process: its connections are lost, and a
// freeze ends with it (SIGKILL ends a stopped process too).
func (n *simNode) kill() {
	for sc := range n.conns {
		sc.loseLocked()
	}
	if n.frozen {
		n.frozen = false
		close(n.thaw)
	}
}

// Restart kills node id's corosync and starts it again faster than the
// other nodes notice (within the token timeout), as a quick restart of the
// service does. Its clients lose their connection (a reconnection finds it
// running), and every node of its partition gets one new ring with the
// same members, in which node id both left and joined.
func (c *SimCluster) Restart(id uint32) error {
	return c.withNode(id, func(n *simNode) error {
		if !n.up {
			return fmt.Errorf("%w: node %d is stopped; Start starts it", ErrInvalidParam, id)
		}
		n.kill()
		c.boot(n)
		c.syncVotes(n, n.members, c.snapshotVotes())
		n.quorate = c.quorate(n, n.members)
		c.newRingLocked(n, []uint32{id}, []uint32{id})
		return nil
	})
}

// Start starts corosync on a stopped node id: it joins its partition again.
func (c *SimCluster) Start(id uint32) error {
	return c.change(id, func(n *simNode) {
		if !n.up {
			n.up = true
			c.boot(n)
		}
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
		return nil
	})
}

// FailConnects makes the next count connects to node id fail with err, which
// must be ErrTryAgain (corosync starting), ErrAccess (user without a uidgid
// entry) or ErrConnectionLost (corosync not running).
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
	c.recompute(true)
	return nil
}

// Heal joins every partition back into one.
func (c *SimCluster) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		n.group = 0
	}
	c.recompute(true)
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
		c.newRingLocked(n, []uint32{}, []uint32{})
		return nil
	})
}

// newRingLocked gives every running node of n's partition a new ring with
// the same members, and tells their tracking connections: a nodelist
// notification with joined and left as given, then a quorum notification.
func (c *SimCluster) newRingLocked(n *simNode, joined, left []uint32) {
	c.seq += 4
	for _, other := range c.ids {
		o := c.nodes[other]
		if !o.up || o.group != n.group {
			continue
		}
		o.ring = RingID{NodeID: o.members[0], Seq: c.seq}
		for sc := range o.conns {
			if sc.tracking {
				sc.enqueueLocked(sc.nodelist(joined, left))
				sc.enqueueLocked(sc.quorum())
			}
		}
	}
}

// SetTwoNode turns votequorum's two_node mode on or off: with it, a
// partition of at most two nodes needs one vote, and wait_for_all is implied
// (a node that starts, or loses quorum, waits until it has seen all expected
// votes). As with a configuration reload, running nodes keep their
// wait_for_all status.
func (c *SimCluster) SetTwoNode(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.twoNode = on
	peers := c.snapshotVotes()
	for _, n := range c.nodes {
		if n.up {
			c.recalcVotes(n, n.members, true, peers)
		}
	}
	c.recompute(true)
}

// SetExpectedVotes changes expected votes as corosync-quorumtool -e does on
// node id: a cluster message, so it reaches node id's partition only. Like
// votequorum it refuses a value below the votes present, or one that would
// make a quorate partition inquorate. The other partitions keep theirs until
// they merge (see the SimCluster doc).
func (c *SimCluster) SetExpectedVotes(id uint32, votes uint32) error {
	return c.withNode(id, func(n *simNode) error {
		if !n.up {
			return newError("votequorum_setexpected", cs.ErrLibrary, nil)
		}
		total := c.votes(n.members)
		q := c.quorumFor(len(n.members), votes, total)
		if votes < total || (n.quorate && q > total) {
			return fmt.Errorf("%w: expected votes %d with %d votes present (quorum would be %d)",
				newError("votequorum_setexpected", cs.ErrInvalidParam, nil), votes, total, q)
		}
		for _, m := range n.members {
			c.nodes[m].vq.expected = votes
		}
		peers := c.snapshotVotes()
		for _, m := range n.members {
			c.recalcVotes(c.nodes[m], n.members, true, peers)
		}
		c.recompute(true)
		return nil
	})
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

// change applies f to node id and derives every view anew.
func (c *SimCluster) change(id uint32, f func(*simNode)) error {
	return c.withNode(id, func(n *simNode) error {
		f(n)
		c.recompute(true)
		return nil
	})
}

func (c *SimCluster) votes(members []uint32) uint32 {
	var v uint32
	for _, id := range members {
		v += c.nodes[id].votes
	}
	return v
}

// recompute derives every node's view from who is up and the partitions,
// and notifies the tracking connections of each node whose view changed. A
// node whose membership changed runs votequorum's sync first.
func (c *SimCluster) recompute(notify bool) {
	before := c.snapshotVotes()
	bumped := false
	for _, id := range c.ids {
		n := c.nodes[id]
		if !n.up {
			n.members, n.quorate, n.ring = nil, false, RingID{}
			continue
		}
		var members []uint32
		for _, other := range c.ids {
			if o := c.nodes[other]; o.up && o.group == n.group {
				members = append(members, other)
			}
		}
		membershipChanged := !slices.Equal(members, n.members)
		if membershipChanged {
			c.syncVotes(n, members, before)
		}
		quorate := c.quorate(n, members)
		if !membershipChanged && quorate == n.quorate {
			continue
		}
		if membershipChanged {
			if !bumped {
				c.seq += 4
				bumped = true
			}
			joined, left := diff(n.members, members)
			n.ring = RingID{NodeID: members[0], Seq: c.seq}
			n.members = members
			n.quorate = quorate
			if notify {
				for sc := range n.conns {
					if sc.tracking {
						sc.enqueueLocked(sc.nodelist(orEmpty(joined), orEmpty(left)))
					}
				}
			}
		}
		n.quorate = quorate
		if notify {
			for sc := range n.conns {
				if sc.tracking {
					sc.enqueueLocked(sc.quorum())
				}
			}
		}
	}
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
	c := b.c
	for {
		c.mu.Lock()
		n, err := c.node(b.id)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if len(n.faults) > 0 {
			code := n.faults[0]
			n.faults = n.faults[1:]
			c.mu.Unlock()
			return nil, newError("quorum_initialize", code, nil)
		}
		if !n.up {
			c.mu.Unlock()
			return nil, newError("quorum_initialize", cs.ErrLibrary, nil)
		}
		if n.frozen {
			thaw := n.thaw
			c.mu.Unlock()
			select {
			case <-thaw:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting for the simulated corosync on node %d, which is frozen, to answer: %w", b.id, ctx.Err())
			}
		}
		sig, err := newSimSignal()
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		sc := &simConn{c: c, n: n, sig: sig, done: make(chan struct{})}
		n.conns[sc] = struct{}{}
		c.mu.Unlock()
		return sc, nil
	}
}

// simConn is one client connection to a simulated corosync. Its fields are
// guarded by the cluster's mutex.
type simConn struct {
	c        *SimCluster
	n        *simNode
	sig      simSignal
	queue    []Notification
	tracking bool
	lost     bool
	closed   bool
	done     chan struct{} // closed by Close
}

func (sc *simConn) nodelist(joined, left []uint32) Notification {
	return Notification{Kind: EventNodeList, RingID: sc.n.ring, Members: sc.n.members,
		Joined: joined, Left: left}
}

func (sc *simConn) quorum() Notification {
	return Notification{Kind: EventQuorum, Quorate: sc.n.quorate, RingID: sc.n.ring, Members: sc.n.members}
}

func (sc *simConn) enqueueLocked(n Notification) {
	sc.queue = append(sc.queue, n)
	if !sc.n.frozen {
		sc.signalLocked()
	}
}

func (sc *simConn) signalLocked() { sc.sig.raise() }

func (sc *simConn) loseLocked() {
	if sc.lost || sc.closed {
		return
	}
	sc.lost = true
	sc.queue = nil
	delete(sc.n.conns, sc)
	sc.signalLocked() // the hang-up: readable until closed
}

func (sc *simConn) Fd() int { return sc.sig.fd() }

func (sc *simConn) Dispatch(fn func(Notification)) error {
	sc.c.mu.Lock()
	switch {
	case sc.closed:
		sc.c.mu.Unlock()
		return newError("quorum_dispatch", cs.ErrBadHandle, nil)
	case sc.lost:
		sc.c.mu.Unlock()
		return newError("quorum_dispatch", cs.ErrLibrary, nil)
	}
	sc.sig.clear()
	var q []Notification
	if !sc.n.frozen {
		q, sc.queue = sc.queue, nil
	}
	sc.c.mu.Unlock()
	for _, n := range q {
		fn(n)
	}
	return nil
}

// request waits while the node is frozen, then runs f with the lock held.
func (sc *simConn) request(ctx context.Context, op string, f func() error) error {
	for {
		sc.c.mu.Lock()
		switch {
		case sc.closed:
			sc.c.mu.Unlock()
			return newError(op, cs.ErrBadHandle, nil)
		case sc.lost:
			sc.c.mu.Unlock()
			return newError(op, cs.ErrLibrary, nil)
		case sc.n.frozen:
			thaw, stuck := sc.n.thaw, sc.c.stuck
			sc.c.mu.Unlock()
			if stuck != nil {
				stuck(sc.n.id)
			}
			select {
			case <-thaw:
				continue
			case <-sc.done:
				continue
			case <-ctx.Done():
				return fmt.Errorf("waiting for the simulated corosync on node %d, which is frozen, to answer %s: %w", sc.n.id, op, ctx.Err())
			}
		}
		err := f()
		sc.c.mu.Unlock()
		return err
	}
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
	if sc.closed {
		return nil
	}
	sc.closed = true
	delete(sc.n.conns, sc)
	close(sc.done)
	return sc.sig.close()
}
