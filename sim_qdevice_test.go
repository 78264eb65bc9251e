//go:build unix

package quorum

import (
	"context"
	"errors"
	"testing"

	"github.com/corosync-go/quorum/internal/model"
)

// The quorum device: votequorum's side after exec/votequorum.c (register,
// poll, timeout, unregister; the device's votes and flags per node),
// corosync-qdevice's after qdevice-net (ffsplit: no poll before the first
// vote, no vote once qnetd is lost), qnetd's ffsplit after
// qnetd-algo-ffsplit.c.

const (
	fReg    = model.FlagQdeviceRegistered
	fAlive  = model.FlagQdeviceAlive
	fCast   = model.FlagQdeviceCastVote
	fMaster = model.FlagQdeviceMasterWins
	voting  = fReg | fAlive | fCast
)

func wantDevice(t *testing.T, what string, got model.VoteInfo, votes uint32) {
	t.Helper()
	if got.QdeviceVotes != votes || got.QdeviceName != "Qdevice" {
		t.Errorf("%s: device votes %d name %q; want %d Qdevice", what, got.QdeviceVotes, got.QdeviceName, votes)
	}
}

// Two nodes and a device of one vote: 3 expected votes (the two nodes'
// configured, raised to the device's vote present), quorum 2, so either
// node with the device's vote is quorate. A 50:50 split goes to the half
// with the tie-breaker node.
func TestSimQdeviceTwoNodes(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(2), Qdevice: &SimQdevice{Votes: 1}})
	got := info(t, c, 1, 0)
	wantInfo(t, "formed", got, member, 1, 3, 3, 3, 2, fQ|voting)
	wantDevice(t, "formed", got, 1)
	wantInfo(t, "node 2 seen by node 1", info(t, c, 1, 2), member, 1, 3, 3, 3, 2, fQ|voting)

	v := votes(t, c, 1)
	ctx := context.Background()
	must(t, v.TrackStart(ctx))
	wantEvents(t, "snapshot", drain(t, v),
		model.VoteEvent{Kind: model.VoteNodeList, Ring: model.RingID{NodeID: 1, Seq: 8}, Members: []uint32{1, 2}},
		model.VoteEvent{Kind: model.VoteQuorum, Quorate: true, Nodes: []model.VoteNode{
			{ID: 1, State: member}, {ID: 2, State: member}, {ID: 0, State: 0}}})

	must(t, c.Partition([]uint32{1}))
	wantInfo(t, "node 1 apart, with the vote", info(t, c, 1, 0), member, 1, 3, 3, 2, 2, fQ|voting)
	wantInfo(t, "node 2 apart, without", info(t, c, 2, 0), member, 1, 3, 3, 1, 2, fReg|fAlive)
	drain(t, v)

	// qnetd lost: node 1's device keeps polling, without its vote.
	must(t, c.SetQnetd(false))
	wantInfo(t, "qnetd lost", info(t, c, 1, 0), member, 1, 3, 3, 1, 2, fReg|fAlive)
	wantEvents(t, "qnetd lost", drain(t, v), model.VoteEvent{Kind: model.VoteQuorum, Quorate: false,
		Nodes: []model.VoteNode{{ID: 1, State: member}, {ID: 2, State: dead}, {ID: 0, State: 0}}})
	must(t, c.SetQnetd(true))
	wantInfo(t, "qnetd back", info(t, c, 1, 0), member, 1, 3, 3, 2, 2, fQ|voting)
	c.Heal()
	wantInfo(t, "healed", info(t, c, 2, 0), member, 1, 3, 3, 3, 2, fQ|voting)

	high := newSim(t, SimConfig{Nodes: simNodes(2), Qdevice: &SimQdevice{Votes: 1, TieBreaker: "highest"}})
	must(t, high.Partition([]uint32{1}))
	wantInfo(t, "tie_breaker highest, node 1", info(t, high, 1, 0), member, 1, 3, 3, 1, 2, fReg|fAlive)
	wantInfo(t, "tie_breaker highest, node 2", info(t, high, 2, 0), member, 1, 3, 3, 2, 2, fQ|voting)
}

// Daemons stopped, killed, started, and started while qnetd is lost.
func TestSimQdeviceDaemons(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(2), Qdevice: &SimQdevice{Votes: 1}})
	// Killed: no more polls; the device timeout passes, registered stays.
	must(t, c.KillQdevice(1))
	wantInfo(t, "node 1's daemon killed", info(t, c, 2, 1), member, 1, 3, 3, 2, 2, fQ|fReg)
	wantInfo(t, "node 2's", info(t, c, 2, 0), member, 1, 3, 3, 3, 2, fQ|voting)
	// Stopped: unregistered. The name stays while a member has a device.
	must(t, c.StopQdevice(2))
	got := info(t, c, 1, 2)
	wantInfo(t, "node 2's daemon stopped", got, member, 1, 3, 3, 2, 2, fQ)
	wantDevice(t, "node 2's daemon stopped", got, 1)
	must(t, c.StartQdevice(1))
	wantInfo(t, "node 1's daemon started", info(t, c, 1, 0), member, 1, 3, 3, 3, 2, fQ|voting)

	// A daemon that never reached qnetd does not poll: registered, not
	// alive.
	must(t, c.SetQnetd(false))
	must(t, c.Restart(1))
	wantInfo(t, "restarted without qnetd", info(t, c, 1, 0), member, 1, 3, 3, 2, 2, fQ|fReg)
	must(t, c.SetQnetd(true))
	wantInfo(t, "qnetd reached", info(t, c, 1, 0), member, 1, 3, 3, 3, 2, fQ|voting)

	if err := newSim(t, SimConfig{Nodes: simNodes(2)}).KillQdevice(1); !errors.Is(err, ErrInvalidParam) {
		t.Errorf("KillQdevice without a device: %v", err)
	}
}

// ffsplit in an even cluster: a half with more daemons connected beats the
// tie-breaker; in an odd one, the majority partition gets the vote.
func TestSimQdeviceFFSplit(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(4), Qdevice: &SimQdevice{Votes: 1}})
	wantInfo(t, "formed", info(t, c, 1, 0), member, 1, 5, 5, 5, 3, fQ|voting)
	must(t, c.KillQdevice(1))
	must(t, c.Partition([]uint32{1, 2}, []uint32{3, 4}))
	wantInfo(t, "half with 2 daemons", info(t, c, 3, 0), member, 1, 5, 5, 3, 3, fQ|voting)
	wantInfo(t, "half with the tie-breaker", info(t, c, 2, 0), member, 1, 5, 5, 2, 3, fReg|fAlive)
	wantInfo(t, "node 1", info(t, c, 1, 0), member, 1, 5, 5, 2, 3, fReg)

	odd := newSim(t, SimConfig{Nodes: simNodes(5), Qdevice: &SimQdevice{Votes: 1}})
	must(t, odd.Partition([]uint32{1, 2}))
	wantInfo(t, "majority", info(t, odd, 3, 0), member, 1, 6, 6, 4, 4, fQ|voting)
	wantInfo(t, "minority", info(t, odd, 1, 0), member, 1, 6, 6, 2, 4, fReg|fAlive)
}

// A device votequorum sizes itself (votes left out: the nodes' votes less
// one) cannot run ffsplit: corosync-qdevice registers it and exits.
// master_wins shows in the flags.
func TestSimQdeviceConfigs(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(3), Qdevice: &SimQdevice{}})
	got := info(t, c, 1, 0)
	wantInfo(t, "votes computed", got, member, 1, 5, 5, 3, 3, fQ|fReg)
	wantDevice(t, "votes computed", got, 2)
	must(t, c.Stop(3))
	wantInfo(t, "2 of 5", info(t, c, 1, 0), member, 1, 5, 5, 2, 3, fReg)

	mw := newSim(t, SimConfig{Nodes: simNodes(2), Qdevice: &SimQdevice{Votes: 1, MasterWins: true}})
	wantInfo(t, "master_wins", info(t, mw, 2, 1), member, 1, 3, 3, 3, 2, fQ|voting|fMaster)

	// two_node by a reload, with the device registered: corosync turns
	// two_node off (and the wait_for_all it implies); a node restarting
	// with that file does not start.
	mw.SetTwoNode(true)
	wantInfo(t, "two_node reloaded", info(t, mw, 1, 0), member, 1, 3, 3, 3, 2, fQ|voting|fMaster)
	if err := mw.Restart(1); !errors.Is(err, ErrInvalidParam) {
		t.Errorf("restart with two_node and a device: %v", err)
	}
}
