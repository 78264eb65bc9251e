package quorum

// The simulated cluster's votequorum, node by node, after corosync's
// exec/votequorum.c: what each node keeps, how a membership change (a sync)
// and a reconfiguration update it, and when a node counts as quorate.

// vqState is votequorum's state on one node.
type vqState struct {
	expected uint32 // this node's expected votes (us->expected_votes)
	quorum   uint32 // the threshold; it falls only where votequorum allows
	wfa      bool   // wait_for_all status: waiting to see all expected votes
}

// vqSeen is what a node's peers learn of it in a sync (its NODEINFO): its
// state from before the membership change.
type vqSeen struct {
	quorate  bool
	expected uint32
}

// boot gives n the state of a corosync that just started: expected votes
// from the configuration (the sum of every node's votes), no quorum yet, and
// waiting for all when wait_for_all is on.
func (c *SimCluster) boot(n *simNode) {
	var all uint32
	for _, o := range c.nodes {
		all += o.votes
	}
	n.vq = vqState{expected: all, wfa: c.waitForAll()}
	n.quorate = false
}

// waitForAll reports whether wait_for_all is on: two_node implies it.
func (c *SimCluster) waitForAll() bool { return c.twoNode }

func (c *SimCluster) snapshotVotes() map[uint32]vqSeen {
	m := make(map[uint32]vqSeen, len(c.nodes))
	for id, n := range c.nodes {
		m[id] = vqSeen{quorate: n.quorate, expected: n.vq.expected}
	}
	return m
}

// syncVotes is votequorum's sync on node n, whose partition became
// members: a node that was not quorate takes the expected votes of a
// member that was (the highest, when several were), which may then lower
// its quorum; the expected votes of members that were not quorate count as
// n's own.
func (c *SimCluster) syncVotes(n *simNode, members []uint32, before map[uint32]vqSeen) {
	allowDecrease := false
	if !before[n.id].quorate {
		var adopt uint32
		for _, m := range members {
			if b := before[m]; m != n.id && b.quorate {
				adopt = max(adopt, b.expected)
			}
		}
		if adopt != 0 {
			n.vq.expected, allowDecrease = adopt, true
		}
	}
	c.recalcVotes(n, members, allowDecrease, before)
}

// recalcVotes is recalculate_quorum on n for its partition members, whose
// state n knows as peers says: expected votes rise to the votes present, and
// the quorum is the larger of half the highest expected votes of n and its
// quorate peers and half the votes present, plus one; it does not fall
// unless allowDecrease.
func (c *SimCluster) recalcVotes(n *simNode, members []uint32, allowDecrease bool, peers map[uint32]vqSeen) {
	total := c.votes(members)
	if total > n.vq.expected {
		n.vq.expected = total
	}
	highest := n.vq.expected
	for _, m := range members {
		if p := peers[m]; m != n.id && p.quorate {
			highest = max(highest, p.expected)
		}
	}
	q := c.quorumFor(len(members), highest, total)
	if !allowDecrease {
		q = max(q, n.vq.quorum)
	}
	n.vq.quorum = q
}

// quorumFor is calculate_quorum: half the expected or the present votes,
// whichever is more, plus one; one in a two_node partition of up to two.
func (c *SimCluster) quorumFor(nodes int, expected, total uint32) uint32 {
	if c.twoNode && nodes <= 2 {
		return 1
	}
	return max((expected+2)/2, (total+2)/2)
}

// quorate is are_we_quorate on n: with wait_for_all, a node that waits stays
// inquorate until all its expected votes are present, and one that loses
// quorum waits again.
func (c *SimCluster) quorate(n *simNode, members []uint32) bool {
	total := c.votes(members)
	if c.waitForAll() && n.vq.wfa && total != n.vq.expected {
		return false
	}
	q := total >= n.vq.quorum
	if c.waitForAll() {
		n.vq.wfa = !q
	}
	return q
}
