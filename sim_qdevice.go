package quorum

import (
	"fmt"
	"slices"
)

// The simulated quorum device: corosync-qdevice (model net, algorithm
// ffsplit) on each node, talking to votequorum through its qdevice calls
// (register, master_wins, poll, unregister), and one qnetd server deciding
// which partition gets the vote, after corosync-qdevice 3.0.

// qdeviceName is the name corosync-qdevice registers its device with.
const qdeviceName = "Qdevice"

// simQdevd is corosync-qdevice on one node.
type simQdevd struct {
	off     bool // stopped or killed by the user: it stays down until StartQdevice
	running bool // registered and running; it dies with corosync
	polling bool // it has had a vote from qnetd since it started, so it polls
}

// SetQnetd makes the quorum device server reachable from every node, or
// from none. Daemons that reach it get a vote from its ffsplit algorithm
// and poll votequorum with it; daemons cut from it keep polling without the
// vote (ffsplit's answer to a lost server), and daemons that never reached
// it since they started do not poll (the device is registered, not alive).
func (c *SimCluster) SetQnetd(up bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file.Qdevice == nil {
		return errNoQdevice
	}
	c.qnetd = up
	c.runQdevices()
	return nil
}

// StartQdevice starts corosync-qdevice on node id again after StopQdevice
// or KillQdevice (it runs whenever corosync runs on the node otherwise).
// It registers the device, sets master_wins as configured and, with qnetd
// reachable, polls with the vote it gets.
func (c *SimCluster) StartQdevice(id uint32) error {
	return c.withQdevice(id, func(n *simNode) {
		n.qd.off = false
	})
}

// StopQdevice stops corosync-qdevice on node id cleanly: it unregisters the
// device, so the node's qdevice flags clear and its device votes no more.
func (c *SimCluster) StopQdevice(id uint32) error {
	return c.withQdevice(id, func(n *simNode) {
		if n.qd.running {
			n.vq.qdevUnregister()
			c.deliver()
		}
		n.qd = simQdevd{off: true}
	})
}

// KillQdevice kills corosync-qdevice on node id: it stops polling, and
// votequorum's device timeout passes at once, so the device is registered
// but neither alive nor voting.
func (c *SimCluster) KillQdevice(id uint32) error {
	return c.withQdevice(id, func(n *simNode) {
		if n.qd.running {
			n.vq.qdevTimeout()
			c.deliver()
		}
		n.qd = simQdevd{off: true}
	})
}

var errNoQdevice = fmt.Errorf("%w: the simulated cluster has no quorum device (SimConfig.Qdevice)", ErrInvalidParam)

func (c *SimCluster) withQdevice(id uint32, f func(*simNode)) error {
	return c.withNode(id, func(n *simNode) error {
		if c.file.Qdevice == nil {
			return errNoQdevice
		}
		f(n)
		c.runQdevices()
		return nil
	})
}

// runQdevices starts the daemons that should run, then lets every running
// daemon poll with the vote qnetd gives it now.
func (c *SimCluster) runQdevices() {
	for _, id := range c.ids {
		n := c.nodes[id]
		if n.qd.running || n.qd.off || !n.up || n.vq == nil || n.cfg.Qdevice == nil {
			continue
		}
		c.startQdevd(n)
	}
	c.pollQdevices(nil)
}

// startQdevd is corosync-qdevice starting on n: it registers the device
// (the registration completes when its message comes back), sets
// master_wins, and checks what ffsplit needs; it exits on a refusal, or
// when ffsplit cannot run, leaving the device registered.
func (c *SimCluster) startQdevd(n *simNode) {
	vq := n.vq
	if !vq.qdevRegister() {
		n.qd.off = true
		return
	}
	c.deliver()
	if vq.us.flags&vqQdevReg == 0 || !vq.qdevMasterWins(n.cfg.Qdevice.MasterWins) {
		n.qd.off = true
		return
	}
	c.deliver()
	if !ffsplitRuns(n) {
		n.qd.off = true
		return
	}
	n.qd.running, n.qd.polling = true, false
}

// ffsplitRuns is ffsplit's check at start: quorum.device.votes is 1, and
// every configured node votequorum knows has 1 vote and sees a device of 1
// vote.
func ffsplitRuns(n *simNode) bool {
	if n.cfg.Qdevice.Votes != 1 {
		return false
	}
	for _, nd := range n.cfg.Nodes {
		info, ok := n.vq.getInfo(nd.ID)
		if ok && (info.Votes != 1 || info.QdeviceVotes != 1) {
			return false
		}
	}
	return true
}

// pollQdevices lets the running daemons of the given nodes (nil: all) poll
// votequorum: with qnetd's vote when they reach it, without a vote when
// they lost it, not at all when they never reached it.
func (c *SimCluster) pollQdevices(nodes []uint32) {
	votes := c.ffsplit()
	for _, id := range c.ids {
		n := c.nodes[id]
		if (nodes != nil && !slices.Contains(nodes, id)) || !n.qd.running || n.vq == nil {
			continue
		}
		switch {
		case c.qnetd:
			n.qd.polling = true
			n.vq.qdevPoll(votes[id])
		case n.qd.polling:
			n.vq.qdevPoll(false)
		}
	}
	c.deliver()
}

// ffsplit is qnetd's ffsplit algorithm over the daemons connected to it
// (every running one, when it is reachable): the vote goes to the daemons
// of the best partition, where a partition beats another if it has more
// than half the configured nodes; in a cluster of an even number of nodes,
// a partition of exactly half beats another by having more connected
// daemons, then by holding the tie-breaker node. Heuristics and
// keep_active_partition_tie_breaker are not modelled.
func (c *SimCluster) ffsplit() map[uint32]bool {
	if !c.qnetd {
		return nil
	}
	var clients []uint32
	member := make(map[uint32][]uint32)
	for _, g := range c.groups() {
		for _, id := range g {
			if c.nodes[id].qd.running {
				clients = append(clients, id)
				member[id] = g
			}
		}
	}
	if len(clients) == 0 {
		return nil
	}
	cfg := c.nodes[clients[0]].cfg
	total := len(cfg.Nodes)
	prefer, _ := cfg.Qdevice.tieBreaker(cfg)
	active := func(members []uint32) int {
		k := 0
		for _, id := range members {
			if slices.Contains(clients, id) {
				k++
			}
		}
		return k
	}
	better := func(p, best []uint32) bool {
		if total%2 == 1 || len(p) != total/2 {
			return len(p) > total/2
		}
		if a, b := active(p), active(best); a != b {
			return a > b
		}
		return slices.Contains(p, prefer)
	}
	var best []uint32
	for _, id := range clients {
		if better(member[id], best) {
			best = member[id]
		}
	}
	votes := make(map[uint32]bool, len(clients))
	for _, id := range clients {
		votes[id] = slices.Contains(best, id)
	}
	return votes
}

// qdevRegister is votequorum_qdevice_register from the local daemon: it
// reports whether votequorum took it (the registration then completes on
// the ring).
func (vq *vqNode) qdevRegister() bool {
	switch {
	case !vq.canOperate:
		return false // CS_ERR_ACCESS: the configuration disabled the device
	case vq.us.flags&vqQdevReg != 0:
		return vq.qdevName == qdeviceName
	case vq.regPending:
		return false
	}
	vq.regPending = true
	vq.send(vqMsg{kind: vqQdevRegister, name: qdeviceName})
	return true
}

// qdevRegistered is the QDEVICE_REG handler: a remote device's name is
// recorded if none is; the local one becomes registered when it is the
// answer to its own pending registration.
func (vq *vqNode) qdevRegistered(m vqMsg) {
	if m.sender != vq.n.id {
		if vq.qdevName == "" {
			vq.qdevName = m.name
		}
		return
	}
	if vq.us.flags&vqQdevReg != 0 || !vq.regPending {
		return
	}
	vq.regPending = false
	if vq.qdevName == "" {
		vq.qdevName = m.name
	}
	if m.name == vq.qdevName {
		vq.us.flags |= vqQdevReg
		vq.sendNodeInfo(0)
		vq.sendNodeInfo(vq.n.id)
	}
}

// qdevMasterWins is votequorum_qdevice_master_wins from the local daemon.
func (vq *vqNode) qdevMasterWins(allow bool) bool {
	if !vq.canOperate || vq.us.flags&vqQdevReg == 0 {
		return false
	}
	old := vq.us.flags
	if allow {
		vq.us.flags |= vqQdevMaster
	} else {
		vq.us.flags &^= vqQdevMaster
	}
	if vq.us.flags != old {
		vq.sendNodeInfo(vq.n.id)
	}
	vq.masterWins = allow
	return true
}

// qdevPoll is votequorum_qdevice_poll from the local daemon, for the
// current ring: the device is alive, and casts its vote or not.
func (vq *vqNode) qdevPoll(cast bool) {
	if !vq.canOperate || vq.us.flags&vqQdevReg == 0 {
		return
	}
	old := vq.us.flags
	vq.us.flags |= vqQdevAlive
	if cast {
		vq.us.flags |= vqQdevCastVote
	} else {
		vq.us.flags &^= vqQdevCastVote
	}
	if vq.us.flags != old {
		vq.sendNodeInfo(vq.n.id)
	}
}

// qdevTimeout is votequorum's device timer firing: no poll came in time.
func (vq *vqNode) qdevTimeout() {
	if vq.us.flags&vqQdevAlive == 0 {
		return
	}
	vq.us.flags &^= vqQdevAlive | vqQdevCastVote
	vq.sendNodeInfo(vq.n.id)
}

// qdevUnregister is votequorum_qdevice_unregister from the local daemon.
func (vq *vqNode) qdevUnregister() {
	if vq.us.flags&vqQdevReg == 0 {
		return
	}
	vq.us.flags &^= vqQdevReg | vqQdevAlive | vqQdevCastVote | vqQdevMaster
	vq.sendNodeInfo(vq.n.id)
	vq.send(vqMsg{kind: vqQdevUnregister, name: vq.qdevName})
}
