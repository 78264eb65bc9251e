package quorum

import (
	"fmt"
	"slices"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
)

// The simulated cluster's votequorum, node by node, after corosync's
// exec/votequorum.c (3.1.7): each running node keeps its own table of the
// nodes it has heard of, and changes it only as votequorum does, on the
// messages of its partition (NODEINFO, RECONFIGURE, QDEVICE_REG) delivered
// in one order to every member, on a membership change (its sync), and on
// its own configuration and quorum device. What a client sees (GETINFO,
// notifications) is derived from that state as votequorum derives it.

// votequorum's flags of a node (NODE_FLAGS_*), as NODEINFO carries them.
const (
	vqQuorate      uint32 = 1
	vqLeaving      uint32 = 2
	vqWFAStatus    uint32 = 4
	vqFirst        uint32 = 8
	vqQdevReg      uint32 = 16
	vqQdevAlive    uint32 = 32
	vqQdevCastVote uint32 = 64
	vqQdevMaster   uint32 = 128
)

// What a RECONFIGURE message changes.
const (
	vqParamExpected uint8 = 1
	vqParamVotes    uint8 = 2
)

// vqEntry is what a node knows of one node (struct cluster_node).
type vqEntry struct {
	state    uint32 // model.NodeMember, NodeDead or NodeLeaving; 0 for the qdevice
	votes    uint32
	expected uint32
	flags    uint32
}

// vqMsgKind tells votequorum's cluster messages apart.
type vqMsgKind uint8

const (
	vqNodeInfo vqMsgKind = iota + 1
	vqReconfigure
	vqQdevRegister
	vqQdevUnregister
)

// vqMsg is one votequorum message on the ring.
type vqMsg struct {
	kind   vqMsgKind
	sender uint32
	nodeID uint32 // NODEINFO, RECONFIGURE: the node it is about (0: the qdevice)
	votes  uint32 // NODEINFO
	expect uint32 // NODEINFO
	flags  uint32 // NODEINFO
	param  uint8  // RECONFIGURE
	value  uint32 // RECONFIGURE
	name   string // QDEVICE_REG
}

// vqDelivery is a message on its way to the members of its sender's ring.
type vqDelivery struct {
	to  []uint32
	msg vqMsg
}

// vqNode is votequorum on one running node.
type vqNode struct {
	c *SimCluster
	n *simNode

	// What the configuration says (votequorum_readconfig).
	twoNode      bool
	wfa, wfaAuto bool
	lms          bool // turned off for good once a node with more than one vote is seen
	atb, atbInit atbMode
	atbList      []uint32
	canOperate   bool // qdevice_can_operate
	hasQdevice   bool

	table      map[uint32]*vqEntry // every node heard of since start, this one included
	us         *vqEntry
	qdev       vqEntry // the quorum device (node id 0): its votes
	qdevName   string
	regPending bool // a registration of the local device is on the ring

	quorum          uint8 // the threshold: corosync keeps it in 8 bits
	quorate         bool  // cluster_is_quorate
	wfaStatus       bool  // waiting for all
	lmsTimer        bool  // the last_man_standing window is open
	masterWins      bool  // the local device asked for master_wins
	lowest, highest int64 // node ids as of the last time this node was quorate; -1 before

	members, prev []uint32 // this ring's members and the previous ring's
	ring          RingID
	syncing       bool
}

// newVQ starts votequorum on n, as corosync does when it starts: this node
// alone in its table, the configuration read, the quorum computed. It
// returns corosync's reason when the configuration stops corosync.
func newVQ(c *SimCluster, n *simNode) (*vqNode, error) {
	vq := &vqNode{c: c, n: n, table: make(map[uint32]*vqEntry), lowest: -1, highest: -1, canOperate: true}
	vq.us = &vqEntry{state: model.NodeMember, votes: 1, flags: vqFirst}
	vq.table[n.id] = vq.us
	if err := vq.readConfig(false); err != nil {
		return nil, err
	}
	vq.recalculate(false, false)
	return vq, nil
}

// readConfig is votequorum_readconfig on n's running configuration, at
// start or, with runtime, after a reload: at run time what corosync would
// refuse to start with is set aside instead (it logs it).
func (vq *vqNode) readConfig(runtime bool) error {
	cfg := vq.n.cfg
	if runtime {
		vq.twoNode = false
		vq.atb = vq.atbInit
	}
	expected := cfg.ExpectedVotes
	var nodeVotes, nodeExpected uint32
	allOne := true
	for _, nd := range cfg.Nodes {
		v := nd.Votes
		if v == 0 {
			v = 1
		}
		allOne = allOne && v == 1
		nodeExpected += v
		if nd.ID == vq.n.id {
			nodeVotes = v
		}
	}
	vq.hasQdevice = cfg.Qdevice != nil
	qdevVotes, qdevVotesSet := uint32(0), false
	if vq.hasQdevice {
		qdevVotes, qdevVotesSet = cfg.Qdevice.Votes, cfg.Qdevice.Votes != 0
		vq.canOperate = true
	}
	vq.twoNode = cfg.TwoNode
	refuse := func(reason string) error {
		return fmt.Errorf("%w: corosync on node %d refuses its configuration: %s", ErrInvalidParam, vq.n.id, reason)
	}
	if vq.twoNode && vq.hasQdevice {
		if !runtime {
			return refuse("two_node and quorum device cannot be configured at the same time")
		}
		if vq.us.flags&vqQdevReg != 0 {
			vq.twoNode = false
		} else {
			vq.canOperate = false
		}
	}
	if !runtime {
		vq.wfa, vq.wfaAuto = cfg.waitForAll()
		vq.lms = cfg.LastManStanding
		vq.atb, vq.atbList = atbNone, nil
		if cfg.AutoTieBreaker {
			vq.atb = atbLowest
			if cfg.AutoTieBreakerNode != "" {
				vq.atb, vq.atbList = parseATB(cfg.AutoTieBreakerNode)
			}
		}
		vq.atbInit = vq.atb
	}
	if vq.wfaAuto {
		vq.wfa = vq.twoNode
	}
	if vq.twoNode && vq.atb != atbNone {
		vq.twoNode = false
	}
	if vq.atb != atbNone && nodeExpected%2 == 1 && !vq.wfa {
		if vq.lms {
			// corosync gives up here even on a reload, leaving votes and
			// expected votes as they were.
			return refuse("auto_tie_breaker & last_man_standing not available in odd sized cluster")
		}
		vq.atb = atbNone
	}
	if vq.hasQdevice && vq.lms {
		if !runtime {
			return refuse("quorum.device is not compatible with last_man_standing")
		}
		vq.canOperate = false
	}
	if vq.hasQdevice && vq.atb != atbNone {
		if !runtime {
			return refuse("quorum.device is not compatible with auto_tie_breaker")
		}
		vq.canOperate = false
	}
	if vq.hasQdevice && !qdevVotesSet && expected != 0 {
		if !runtime {
			return refuse("quorum.device.votes must be specified when quorum.expected_votes is set")
		}
		vq.canOperate = false
	}
	if vq.hasQdevice && !qdevVotesSet && !allOne {
		if !runtime {
			return refuse("quorum.device.votes must be specified when not all nodes votes 1")
		}
		vq.canOperate = false
	}
	if qdevVotesSet && expected != 0 && int32(expected-qdevVotes) < 2 {
		if !runtime {
			return refuse("quorum.device.votes is too high or expected_votes is too low")
		}
		vq.canOperate = false
	}
	if vq.hasQdevice && !qdevVotesSet && expected == 0 && allOne {
		qdevVotes, qdevVotesSet = nodeExpected-1, true
		nodeExpected += qdevVotes
	}
	vq.us.votes = nodeVotes
	vq.us.expected = nodeExpected
	if expected != 0 {
		vq.us.expected = expected
	}
	if !vq.hasQdevice {
		vq.qdev.votes = 0
	}
	if qdevVotesSet {
		vq.qdev.votes = qdevVotes
	}
	if vq.wfa {
		if !runtime {
			vq.setWFA(true)
		}
	} else if vq.wfaAuto && vq.wfaStatus {
		vq.setWFA(false)
	}
	return nil
}

func (vq *vqNode) setWFA(on bool) {
	vq.wfaStatus = on
	if on {
		vq.us.flags |= vqWFAStatus
	} else {
		vq.us.flags &^= vqWFAStatus
	}
}

// find is find_node_by_nodeid: node id 0 is the quorum device.
func (vq *vqNode) find(id uint32) *vqEntry {
	if id == 0 {
		return &vq.qdev
	}
	return vq.table[id]
}

// ids returns the ids of the table, in order.
func (vq *vqNode) ids() []uint32 {
	ids := make([]uint32, 0, len(vq.table))
	for id := range vq.table {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// calculateQuorum is calculate_quorum: half the highest expected votes of
// the members (or maxExpected) or of the votes present, whichever is more,
// plus one; never below the current quorum unless allowDecrease; 1 in a
// two_node partition of at most two.
func (vq *vqNode) calculateQuorum(allowDecrease bool, maxExpected uint32) (quorum, total uint32) {
	var highest uint32
	nodes := 0
	for _, e := range vq.table {
		if e.state == model.NodeMember {
			highest = max(highest, e.expected)
			total += e.votes
			nodes++
		}
	}
	if vq.us.flags&vqQdevCastVote != 0 {
		total += vq.qdev.votes
		nodes++
	}
	if maxExpected > 0 {
		highest = maxExpected
	}
	quorum = max((highest+2)/2, (total+2)/2)
	if !allowDecrease {
		quorum = max(uint32(vq.quorum), quorum)
	}
	if vq.twoNode && nodes <= 2 {
		quorum = 1
	}
	return quorum, total
}

// updateExpected sets every member's expected votes (this node's too).
func (vq *vqNode) updateExpected(expected uint32) {
	if expected == 0 {
		return
	}
	for _, e := range vq.table {
		if e.state == model.NodeMember {
			e.expected = expected
		}
	}
}

// recalculate is recalculate_quorum: expected votes rise to the votes
// present (telling the trackers), then the quorum and quorate are computed
// again. byCurrent (the last_man_standing timer) makes the nodes present
// the expected votes.
func (vq *vqNode) recalculate(allowDecrease, byCurrent bool) {
	var total, count uint32
	for _, e := range vq.table {
		if e.state == model.NodeMember {
			total += e.votes
			count++
		}
	}
	if vq.qdev.votes != 0 {
		total += vq.qdev.votes
		count++
	}
	if !byCurrent {
		count = 0
	}
	if total > vq.us.expected {
		vq.us.expected = total
		vq.n.voteEvent(model.VoteEvent{Kind: model.VoteExpected, Expected: vq.us.expected})
	}
	q, present := vq.calculateQuorum(allowDecrease, count)
	vq.quorum = uint8(q)
	vq.updateExpected(count)
	vq.areWeQuorate(present)
}

// areWeQuorate decides quorate from the votes present and, outside a sync,
// tells both services' trackers when it flipped.
func (vq *vqNode) areWeQuorate(total uint32) {
	if vq.wfa && vq.wfaStatus {
		if total != vq.us.expected {
			return
		}
		vq.setWFA(false)
	}
	quorate := uint32(vq.quorum) <= total
	if quorate {
		vq.lowest, vq.highest = int64(vq.n.id), int64(vq.n.id)
		for id, e := range vq.table {
			if e.state == model.NodeMember {
				vq.lowest, vq.highest = min(vq.lowest, int64(id)), max(vq.highest, int64(id))
			}
		}
	}
	if vq.atb != atbNone && total == vq.us.expected/2 &&
		len(vq.prev)-len(vq.members) < int(vq.quorum) && vq.tieBreakerHere() {
		quorate = true
	}
	if vq.masterWins && !quorate && vq.masterHere() {
		quorate = true
	}
	changed := quorate != vq.quorate
	vq.quorate = quorate
	if quorate {
		vq.us.flags |= vqQuorate
	} else {
		vq.us.flags &^= vqQuorate
	}
	if vq.wfa {
		vq.setWFA(!quorate)
	}
	if changed && !vq.syncing {
		vq.n.quorumCallback(quorate)
		vq.n.voteEvent(vq.quorumEvent())
	}
}

// memberHere reports whether node id is a member in this node's table.
func (vq *vqNode) memberHere(id int64) bool {
	if id <= 0 || id > int64(^uint32(0)) {
		return false
	}
	e := vq.table[uint32(id)]
	return e != nil && e.state == model.NodeMember
}

// tieBreakerHere is check_auto_tie_breaker.
func (vq *vqNode) tieBreakerHere() bool {
	switch vq.atb {
	case atbLowest:
		return vq.memberHere(vq.lowest)
	case atbHighest:
		return vq.memberHere(vq.highest)
	}
	for i, id := range vq.atbList {
		if !slices.Contains(vq.members, id) {
			continue
		}
		// An earlier node of the list that was in the last membership
		// may be on the other side: it decides there.
		for _, earlier := range vq.atbList[:i] {
			if slices.Contains(vq.prev, earlier) {
				return false
			}
		}
		return true
	}
	return false
}

// masterHere is check_qdevice_master: a member has its device's vote and
// master_wins.
func (vq *vqNode) masterHere() bool {
	for _, e := range vq.table {
		if e.state == model.NodeMember && e.flags&vqQdevMaster != 0 && e.flags&vqQdevCastVote != 0 {
			return true
		}
	}
	return false
}

// quorumEvent is votequorum's quorum notification: every node heard of,
// dead ones too, in id order, and the device when one is registered here.
func (vq *vqNode) quorumEvent() model.VoteEvent {
	ids := vq.ids()
	nodes := make([]model.VoteNode, 0, len(ids)+1)
	for _, id := range ids {
		nodes = append(nodes, model.VoteNode{ID: id, State: vq.table[id].state})
	}
	if vq.us.flags&vqQdevReg != 0 {
		nodes = append(nodes, model.VoteNode{ID: 0, State: vq.qdev.state})
	}
	return model.VoteEvent{Kind: model.VoteQuorum, Quorate: vq.quorate, Nodes: nodes}
}

// nodeListEvent is votequorum's nodelist notification.
func (vq *vqNode) nodeListEvent() model.VoteEvent {
	return model.VoteEvent{Kind: model.VoteNodeList, Ring: model.RingID{NodeID: vq.ring.NodeID, Seq: vq.ring.Seq},
		Members: slices.Clone(vq.members)}
}

// send puts a message of this node on its ring.
func (vq *vqNode) send(m vqMsg) {
	m.sender = vq.n.id
	// members is replaced, never changed in place (syncInit), so the
	// delivery can share it.
	vq.c.outbox = append(vq.c.outbox, vqDelivery{to: vq.members, msg: m})
}

// sendNodeInfo sends what this node knows of node id (0: the device).
func (vq *vqNode) sendNodeInfo(id uint32) {
	e := vq.find(id)
	if e == nil {
		return
	}
	vq.send(vqMsg{kind: vqNodeInfo, nodeID: id, votes: e.votes, expect: e.expected, flags: e.flags})
}

// receive runs the handler of a message delivered to this node.
func (vq *vqNode) receive(m vqMsg) {
	switch m.kind {
	case vqNodeInfo:
		vq.nodeInfo(m)
	case vqReconfigure:
		vq.reconfigure(m)
	case vqQdevRegister:
		vq.qdevRegistered(m)
	case vqQdevUnregister:
		for _, e := range vq.table {
			if e.state == model.NodeMember && e.flags&vqQdevReg != 0 {
				return
			}
		}
		vq.qdevName = ""
	}
}

// nodeInfo is the NODEINFO handler: the sender's view of a node replaces
// this node's, a node that is not quorate takes the expected votes of one
// that is, and the quorum is computed again when anything changed.
func (vq *vqNode) nodeInfo(m vqMsg) {
	e := vq.find(m.nodeID)
	isNew := e == nil
	if isNew {
		e = &vqEntry{}
		vq.table[m.nodeID] = e
	}
	old := *e
	if isNew {
		old = vqEntry{state: model.NodeDead}
	}
	allowDecrease, byNode := false, false
	if m.nodeID == 0 {
		if s := vq.table[m.sender]; !vq.quorate && s != nil && s.flags&vqQuorate != 0 {
			e.votes = m.votes
		} else {
			e.votes = max(e.votes, m.votes)
		}
	} else {
		e.flags, e.votes, e.state = m.flags, m.votes, model.NodeMember
		if e.flags&vqLeaving != 0 {
			e.state = model.NodeLeaving
			allowDecrease, byNode = true, true
		}
		if !vq.quorate && e.flags&vqQuorate != 0 {
			allowDecrease = true
			vq.us.expected = m.expect
		}
		if e.flags&vqQuorate != 0 {
			e.expected = m.expect
		} else {
			e.expected = vq.us.expected
		}
		if vq.lms && e.votes > 1 {
			vq.lms, vq.lmsTimer = false, false
		}
	}
	if isNew || m.nodeID == vq.n.id || e.flags&vqFirst != 0 || *e != old {
		vq.recalculate(allowDecrease, byNode)
	}
	if vq.wfa && e.flags&vqWFAStatus == 0 && e.flags&vqQuorate != 0 {
		vq.setWFA(false)
	}
}

// reconfigure is the RECONFIGURE handler: new expected votes (told to the
// trackers whatever their value) or a node's new votes.
func (vq *vqNode) reconfigure(m vqMsg) {
	switch m.param {
	case vqParamExpected:
		vq.updateExpected(m.value)
		vq.n.voteEvent(model.VoteEvent{Kind: model.VoteExpected, Expected: vq.us.expected})
		vq.recalculate(true, false)
	case vqParamVotes:
		e := vq.find(m.nodeID)
		if e == nil {
			return
		}
		e.votes = m.value
		vq.recalculate(true, false)
	}
}

// syncInit starts the sync of a new ring: members gone from it are dead,
// and the last_man_standing window opens when members left (or, with the
// tie-breaker, when this partition holds the lowest node).
func (vq *vqNode) syncInit(members []uint32, ring RingID) {
	vq.syncing = true
	if len(members) > 1 {
		vq.us.flags &^= vqFirst
	}
	left := false
	for _, id := range vq.members {
		if !slices.Contains(members, id) {
			left = true
			if e := vq.table[id]; e != nil {
				e.state = model.NodeDead
			}
		}
	}
	if vq.lms && ((len(members) >= int(vq.quorum) && left) ||
		(len(members) <= int(vq.quorum) && vq.atb != atbNone && vq.memberHere(vq.lowest))) {
		vq.lmsTimer = true
	}
	vq.prev, vq.members, vq.ring = vq.members, slices.Clone(members), ring
}

// syncProcess sends this node's state to the new ring and tells the
// trackers of the new ring.
func (vq *vqNode) syncProcess() {
	vq.sendNodeInfo(vq.n.id)
	vq.sendNodeInfo(0)
	if vq.qdevName != "" {
		vq.send(vqMsg{kind: vqQdevRegister, name: vq.qdevName})
	}
	vq.n.voteEvent(vq.nodeListEvent())
}

// syncActivate ends the sync: the quorum as the ring's messages left it,
// told to both services' trackers whether it changed or not.
func (vq *vqNode) syncActivate() {
	vq.recalculate(false, false)
	vq.n.quorumCallback(vq.quorate)
	vq.n.voteEvent(vq.quorumEvent())
	vq.syncing = false
}

// lmsExpire is the last_man_standing timer: expected votes become the
// nodes present, if this node is quorate.
func (vq *vqNode) lmsExpire() {
	vq.lmsTimer = false
	if vq.quorate {
		vq.recalculate(true, true)
	}
}

// getInfo is the GETINFO reply for node id (0: this node).
func (vq *vqNode) getInfo(id uint32) (model.VoteInfo, bool) {
	if id == 0 {
		id = vq.n.id
	}
	e := vq.table[id]
	if e == nil {
		return model.VoteInfo{}, false
	}
	var highest, total uint32
	for _, o := range vq.table {
		if o.state == model.NodeMember {
			highest = max(highest, o.expected)
			total += o.votes
		}
	}
	if e.flags&vqQdevCastVote != 0 {
		total += vq.qdev.votes
	}
	info := model.VoteInfo{NodeID: id, State: e.state, Votes: e.votes, Expected: e.expected,
		HighestExpected: highest, TotalVotes: total, Quorum: uint32(vq.quorum),
		QdeviceVotes: vq.qdev.votes, QdeviceName: vq.qdevName}
	for _, f := range []struct {
		on   bool
		flag uint32
	}{
		{vq.twoNode, model.FlagTwoNode},
		{vq.quorate, model.FlagQuorate},
		{vq.wfa, model.FlagWaitForAll},
		{vq.lms, model.FlagLastManStanding},
		{vq.atb != atbNone, model.FlagAutoTieBreaker},
		{e.flags&vqQdevReg != 0, model.FlagQdeviceRegistered},
		{e.flags&vqQdevAlive != 0, model.FlagQdeviceAlive},
		{e.flags&vqQdevCastVote != 0, model.FlagQdeviceCastVote},
		{e.flags&vqQdevMaster != 0, model.FlagQdeviceMasterWins},
	} {
		if f.on {
			info.Flags |= f.flag
		}
	}
	return info, true
}

// setExpected is SETEXPECTED on this node: refused below the votes present
// or where a quorate partition would lose quorum; otherwise sent to the
// ring.
func (vq *vqNode) setExpected(expected uint32) error {
	q, total := vq.calculateQuorum(true, expected)
	if expected < total || (vq.quorate && q > total) {
		return fmt.Errorf("%w: expected votes %d with %d votes present (the quorum would be %d)",
			newError("votequorum_setexpected", cs.ErrInvalidParam, nil), expected, total, q)
	}
	vq.updateExpected(expected)
	vq.send(vqMsg{kind: vqReconfigure, nodeID: vq.n.id, param: vqParamExpected, value: expected})
	return nil
}

// setVotes is SETVOTES on this node: refused for a node it never heard of,
// and where the quorum with the new votes would be above the votes present
// or below half of them; otherwise sent to the ring. Node id 0 is the
// quorum device.
func (vq *vqNode) setVotes(id, votes uint32) error {
	e := vq.find(id)
	if e == nil {
		return fmt.Errorf("%w: node %d is not in node %d's votequorum table",
			newError("votequorum_setvotes", cs.ErrNameNotFound, nil), id, vq.n.id)
	}
	saved := e.votes
	e.votes = votes
	q, total := vq.calculateQuorum(true, 0)
	if q < total/2 || q > total {
		e.votes = saved
		return fmt.Errorf("%w: %d votes for node %d would leave %d votes present for a quorum of %d",
			newError("votequorum_setvotes", cs.ErrInvalidParam, nil), votes, id, total, q)
	}
	vq.send(vqMsg{kind: vqReconfigure, nodeID: id, param: vqParamVotes, value: votes})
	return nil
}

// refreshConfig is votequorum_refresh_config after a reload: the
// configuration read again, and this node's state sent to the ring, with
// its new votes and expected votes if they changed.
func (vq *vqNode) refreshConfig() {
	oldVotes, oldExpected := vq.us.votes, vq.us.expected
	_ = vq.readConfig(true) // at run time it only sets things aside
	vq.sendNodeInfo(vq.n.id)
	vq.sendNodeInfo(0)
	if vq.us.votes != oldVotes {
		vq.send(vqMsg{kind: vqReconfigure, nodeID: vq.n.id, param: vqParamVotes, value: vq.us.votes})
	}
	if vq.us.expected != oldExpected {
		vq.send(vqMsg{kind: vqReconfigure, nodeID: vq.n.id, param: vqParamExpected, value: vq.us.expected})
	}
}
