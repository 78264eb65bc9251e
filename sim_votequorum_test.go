//go:build unix

package quorum

import (
	"context"
	"errors"
	"testing"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
)

// The simulated votequorum, checked against numbers worked out by hand
// from corosync 3.1.7's exec/votequorum.c (TestSimMatchesCorosync compares
// the same machinery with a real cluster on the scenarios it can stage).

// info is GETINFO of node id asked on node from, through a votequorum
// connection as the engine makes it.
func info(t *testing.T, c *SimCluster, from, id uint32) model.VoteInfo {
	t.Helper()
	v := votes(t, c, from)
	got, err := v.GetInfo(context.Background(), id)
	if err != nil {
		t.Fatalf("getinfo of node %d on node %d: %v", id, from, err)
	}
	return got
}

// votes opens a votequorum connection to node id, closed at the end of
// the test.
func votes(t *testing.T, c *SimCluster, id uint32) voteConn {
	t.Helper()
	v, err := c.Backend(id).(voteBackend).connectVotes(context.Background(), ConnectParams{}, nil)
	if err != nil {
		t.Fatalf("connect to node %d's votequorum: %v", id, err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// wantInfo compares the numbers of a GETINFO reply.
func wantInfo(t *testing.T, what string, got model.VoteInfo, state, votes, expected, highest, total, quorum, flags uint32) {
	t.Helper()
	if got.State != state || got.Votes != votes || got.Expected != expected || got.HighestExpected != highest ||
		got.TotalVotes != total || got.Quorum != quorum || got.Flags != flags {
		t.Errorf("%s: state %d votes %d expected %d highest %d total %d quorum %d flags %#x; want %d %d %d %d %d %d %#x",
			what, got.State, got.Votes, got.Expected, got.HighestExpected, got.TotalVotes, got.Quorum, got.Flags,
			state, votes, expected, highest, total, quorum, flags)
	}
}

func simNodes(n int) []SimNode {
	nodes := make([]SimNode, n)
	for i := range nodes {
		nodes[i].ID = uint32(i + 1)
	}
	return nodes
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newSim(t *testing.T, cfg SimConfig) *SimCluster {
	t.Helper()
	c, err := NewSimClusterConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	member = model.NodeMember
	dead   = model.NodeDead
	fQ     = model.FlagQuorate
	f2N    = model.FlagTwoNode
	fWFA   = model.FlagWaitForAll
	fLMS   = model.FlagLastManStanding
	fATB   = model.FlagAutoTieBreaker
)

func csCode(err error) cs.Code {
	var qe *Error
	if errors.As(err, &qe) {
		return cs.Code(qe.Code)
	}
	if err == nil {
		return cs.OK
	}
	return -1
}

// Partitions that merge: the one that was not quorate takes a quorate
// node's expected votes, and each node records the expected votes its
// peers sent. Node 4, alone with 1 expected vote (quorate), joins nodes 1-3
// (quorate, 5 expected). Node 4 hears of node 1 first: 2 votes present
// raise its expected votes to 2, and with node 1's 5 it needs 3: not
// quorate, so node 2's message makes it take 5; its own message (sent with
// the 1 it had) sets them back to 1, raised at once to the 4 present.
func TestSimMergeExpectedVotes(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(5)})
	must(t, c.Partition([]uint32{4}, []uint32{5}))
	must(t, c.SetExpectedVotes(4, 1))
	wantInfo(t, "node 4 alone", info(t, c, 4, 0), member, 1, 1, 1, 1, 1, fQ)

	v4 := votes(t, c, 4)
	must(t, v4.TrackStart(context.Background()))
	drain(t, v4)
	must(t, c.Partition([]uint32{5}))
	wantInfo(t, "node 4 merged", info(t, c, 4, 0), member, 1, 4, 5, 4, 3, fQ)
	wantInfo(t, "node 1 merged", info(t, c, 1, 0), member, 1, 5, 5, 4, 3, fQ)
	wantInfo(t, "node 4 seen by node 1", info(t, c, 1, 4), member, 1, 1, 5, 4, 3, fQ)
	wantInfo(t, "node 5 seen by node 1", info(t, c, 1, 5), dead, 1, 5, 5, 4, 3, fQ)
	wantEvents(t, "node 4 in the merge", drain(t, v4),
		model.VoteEvent{Kind: model.VoteNodeList, Ring: model.RingID{NodeID: 1, Seq: 16}, Members: []uint32{1, 2, 3, 4}},
		model.VoteEvent{Kind: model.VoteExpected, Expected: 2},
		model.VoteEvent{Kind: model.VoteExpected, Expected: 4},
		model.VoteEvent{Kind: model.VoteQuorum, Quorate: true, Nodes: []model.VoteNode{
			{ID: 1, State: member}, {ID: 2, State: member}, {ID: 3, State: member}, {ID: 4, State: member}, {ID: 5, State: dead}}})
}

// A restarted node knows only the nodes it has heard from since: GETINFO
// of another is CS_ERR_NOT_EXIST there, while the nodes that saw it die
// keep it, dead, with its last votes.
func TestSimGetInfoUnknownAndDead(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: []SimNode{{ID: 1}, {ID: 2}, {ID: 3, Votes: 2}}})
	must(t, c.Stop(3))
	must(t, c.Restart(1))
	v := votes(t, c, 1)
	if _, err := v.GetInfo(context.Background(), 3); csCode(err) != cs.ErrNotExist {
		t.Fatalf("getinfo on node 1 of node 3, which it never saw: %v", err)
	}
	// Both have the 4 expected votes of the configuration: with 2 of them
	// present, they need 3 and are not quorate.
	wantInfo(t, "node 3 seen by node 2", info(t, c, 2, 3), dead, 2, 4, 4, 2, 3, 0)
	wantInfo(t, "node 1", info(t, c, 1, 0), member, 1, 4, 4, 2, 3, 0)
	if got := info(t, c, 1, 0); got.NodeID != 1 {
		t.Errorf("getinfo of node 0 answers for node %d, want 1", got.NodeID)
	}
}

// SETVOTES: refused for a node never heard of, and where the quorum would
// exceed the votes present or fall below half of them; node 0 is the
// quorum device, whose votes count in the expected votes even without a
// device.
func TestSimSetVotes(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(3)})
	if err := c.SetVotes(1, 42, 1); csCode(err) != cs.ErrNameNotFound {
		t.Fatalf("setvotes of node 42: %v", err)
	}
	// Node 2 at 0 votes: 2 present, quorum max(5/2, 4/2) = 2.
	must(t, c.SetVotes(1, 2, 0))
	wantInfo(t, "node 2 at 0 votes", info(t, c, 3, 2), member, 0, 3, 3, 2, 2, fQ)
	// Node 3 at 0 too would leave 1 vote for a quorum of 2.
	if err := c.SetVotes(1, 3, 0); !errors.Is(err, ErrInvalidParam) || csCode(err) != cs.ErrInvalidParam {
		t.Fatalf("setvotes that would lose quorum: %v", err)
	}
	wantInfo(t, "node 3 unchanged", info(t, c, 1, 3), member, 1, 3, 3, 2, 2, fQ)
	// Two_node with more than 3 votes: quorum 1 is under half of them.
	two := newSim(t, SimConfig{Nodes: simNodes(2), TwoNode: true})
	if err := two.SetVotes(1, 2, 3); csCode(err) != cs.ErrInvalidParam {
		t.Fatalf("two_node, 4 votes: %v", err)
	}
	must(t, two.SetVotes(1, 2, 2))
	wantInfo(t, "two_node, node 2 at 2 votes", info(t, two, 2, 0), member, 2, 3, 3, 3, 1, f2N|fQ|fWFA)

	// 5 votes for a device that does not exist: 7 votes "present" raise the
	// expected votes to 7, and the quorum to 4 of the 2 votes cast.
	must(t, c.SetVotes(1, 0, 5))
	got := info(t, c, 1, 0)
	wantInfo(t, "device at 5 votes", got, member, 1, 7, 7, 2, 4, 0)
	if got.QdeviceVotes != 5 || got.QdeviceName != "" {
		t.Errorf("device votes %d name %q", got.QdeviceVotes, got.QdeviceName)
	}
}

// SETEXPECTED: refused below the votes present, or where a quorate
// partition would lose quorum; otherwise every member takes it.
func TestSimSetExpected(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(3)})
	for _, v := range []uint32{0, 2, 6} {
		if err := c.SetExpectedVotes(1, v); csCode(err) != cs.ErrInvalidParam {
			t.Errorf("setexpected %d with 3 votes present, quorate: %v", v, err)
		}
	}
	// 5 would need 3 of the 3 present: accepted, as 4 is.
	must(t, c.SetExpectedVotes(1, 4))
	wantInfo(t, "expected 4", info(t, c, 2, 0), member, 1, 4, 4, 3, 3, fQ)
	wantInfo(t, "expected 4, node 3", info(t, c, 2, 3), member, 1, 4, 4, 3, 3, fQ)
	if err := c.SetExpectedVotes(1, 3); err != nil {
		t.Fatal(err)
	}
	must(t, c.Stop(3))
	must(t, c.Stop(2))
	if err := c.SetExpectedVotes(1, 9); err != nil {
		t.Fatalf("setexpected on an inquorate node may raise: %v", err)
	}
	wantInfo(t, "expected 9", info(t, c, 1, 0), member, 1, 9, 9, 1, 5, 0)
}

// quorum.expected_votes, and votes per node: expected and threshold.
func TestSimConfiguredVotes(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(3), ExpectedVotes: 5})
	wantInfo(t, "expected_votes 5", info(t, c, 1, 0), member, 1, 5, 5, 3, 3, fQ)
	must(t, c.Stop(3))
	wantInfo(t, "2 of 5", info(t, c, 1, 0), member, 1, 5, 5, 2, 3, 0)

	// corosync keeps the quorum in 8 bits: 600 expected votes need 301,
	// which it holds as 45.
	big := newSim(t, SimConfig{Nodes: []SimNode{{ID: 1, Votes: 300}, {ID: 2, Votes: 300}}})
	wantInfo(t, "600 votes", info(t, big, 1, 0), member, 300, 600, 600, 600, 301%256, fQ)
}

// two_node implies wait_for_all unless wait_for_all is set to 0; a node
// that starts waits for all its expected votes, a survivor does not.
func TestSimTwoNodeWaitForAll(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(2), TwoNode: true})
	wantInfo(t, "two_node", info(t, c, 1, 0), member, 1, 2, 2, 2, 1, f2N|fQ|fWFA)
	must(t, c.Stop(2))
	wantInfo(t, "survivor", info(t, c, 1, 0), member, 1, 2, 2, 1, 1, f2N|fQ|fWFA)
	must(t, c.Restart(1))
	wantInfo(t, "started alone", info(t, c, 1, 0), member, 1, 2, 2, 1, 1, f2N|fWFA)

	off := newSim(t, SimConfig{Nodes: simNodes(2), TwoNode: true, WaitForAll: new(false)})
	must(t, off.Stop(2))
	must(t, off.Restart(1))
	wantInfo(t, "two_node, wait_for_all 0, started alone", info(t, off, 1, 0), member, 1, 2, 2, 1, 1, f2N|fQ)

	// wait_for_all alone: a 3-node cluster whose nodes all restarted does
	// not count 2 of 3 until it has seen 3.
	wfa := newSim(t, SimConfig{Nodes: simNodes(3), WaitForAll: new(true)})
	wantInfo(t, "wait_for_all", info(t, wfa, 1, 0), member, 1, 3, 3, 3, 2, fQ|fWFA)
	must(t, wfa.Stop(3))
	wantInfo(t, "2 of 3, was quorate", info(t, wfa, 1, 0), member, 1, 3, 3, 2, 2, fQ|fWFA)
	must(t, wfa.Stop(2))
	must(t, wfa.Restart(1))
	must(t, wfa.Start(2))
	wantInfo(t, "2 of 3 after a cold start", info(t, wfa, 1, 0), member, 1, 3, 3, 2, 2, fWFA)
	must(t, wfa.Start(3))
	wantInfo(t, "3 of 3", info(t, wfa, 1, 0), member, 1, 3, 3, 3, 2, fQ|fWFA)
}

// last_man_standing: once the window passes, a quorate partition's nodes
// become its expected votes; no notification comes unless quorate flips.
func TestSimLastManStanding(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(4), LastManStanding: true})
	v := votes(t, c, 1)
	must(t, v.TrackStart(context.Background()))
	must(t, c.Stop(4))
	wantInfo(t, "node 4 gone, window open", info(t, c, 1, 0), member, 1, 4, 4, 3, 3, fQ|fLMS)
	drain(t, v)
	c.EndLastManStandingWindow()
	wantInfo(t, "window passed", info(t, c, 1, 0), member, 1, 3, 3, 3, 2, fQ|fLMS)
	wantInfo(t, "node 4 seen by node 1", info(t, c, 1, 4), dead, 1, 4, 3, 3, 2, fQ|fLMS)
	wantEvents(t, "the window passing", drain(t, v))
	must(t, c.Stop(3))
	c.EndLastManStandingWindow()
	wantInfo(t, "2 left", info(t, c, 1, 0), member, 1, 2, 2, 2, 2, fQ|fLMS)
	// Alone, node 1 has fewer nodes than the quorum: no window opens.
	must(t, c.Stop(2))
	c.EndLastManStandingWindow()
	wantInfo(t, "1 left", info(t, c, 1, 0), member, 1, 2, 2, 1, 2, fLMS)

	// A node with more than one vote turns last_man_standing off.
	heavy := newSim(t, SimConfig{Nodes: []SimNode{{ID: 1, Votes: 2}, {ID: 2}, {ID: 3}}, LastManStanding: true})
	wantInfo(t, "a node of 2 votes", info(t, heavy, 2, 0), member, 1, 4, 4, 4, 3, fQ)
}

// auto_tie_breaker on an even split: lowest (the default), highest, or the
// first node of a list present, unless an earlier one was in the last
// membership. Odd clusters need wait_for_all for it.
func TestSimAutoTieBreaker(t *testing.T) {
	for _, tc := range []struct {
		node   string
		winner uint32 // of the halves {1, 2} and {3, 4}
	}{
		{"", 1}, {"lowest", 1}, {"highest", 3}, {"3 1", 3}, {"4", 3}, {"2 4", 1},
	} {
		c := newSim(t, SimConfig{Nodes: simNodes(4), AutoTieBreaker: true, AutoTieBreakerNode: tc.node})
		must(t, c.Partition([]uint32{1, 2}, []uint32{3, 4}))
		for _, id := range []uint32{1, 3} {
			flags := fATB
			if id == tc.winner {
				flags |= fQ
			}
			wantInfo(t, "auto_tie_breaker_node "+tc.node, info(t, c, id, 0), member, 1, 4, 4, 2, 3, flags)
		}
	}

	odd := newSim(t, SimConfig{Nodes: simNodes(3), AutoTieBreaker: true})
	wantInfo(t, "odd, without wait_for_all", info(t, odd, 1, 0), member, 1, 3, 3, 3, 2, fQ)
	odd = newSim(t, SimConfig{Nodes: simNodes(3), AutoTieBreaker: true, WaitForAll: new(true)})
	wantInfo(t, "odd, with wait_for_all", info(t, odd, 1, 0), member, 1, 3, 3, 3, 2, fQ|fWFA|fATB)
	// two_node gives way to the tie-breaker (wait_for_all stays, set by
	// two_node before).
	two := newSim(t, SimConfig{Nodes: simNodes(2), TwoNode: true, AutoTieBreaker: true})
	wantInfo(t, "two_node and auto_tie_breaker", info(t, two, 1, 0), member, 1, 2, 2, 2, 2, fQ|fWFA|fATB)
	bad := newSim(t, SimConfig{Nodes: simNodes(4), AutoTieBreaker: true, AutoTieBreakerNode: "first"})
	wantInfo(t, "auto_tie_breaker_node first", info(t, bad, 1, 0), member, 1, 4, 4, 4, 3, fQ)
}

// What corosync refuses to start with.
func TestSimRefusedConfig(t *testing.T) {
	one := &SimQdevice{Votes: 1}
	for _, cfg := range []SimConfig{
		{Nodes: simNodes(2), TwoNode: true, Qdevice: one},
		{Nodes: simNodes(3), LastManStanding: true, Qdevice: one},
		{Nodes: simNodes(4), AutoTieBreaker: true, Qdevice: one},
		{Nodes: simNodes(3), AutoTieBreaker: true, LastManStanding: true},
		{Nodes: simNodes(3), ExpectedVotes: 4, Qdevice: &SimQdevice{}},
		{Nodes: []SimNode{{ID: 1, Votes: 2}, {ID: 2}}, Qdevice: &SimQdevice{}},
		{Nodes: simNodes(2), ExpectedVotes: 3, Qdevice: &SimQdevice{Votes: 2}},
		{Nodes: simNodes(2), Qdevice: &SimQdevice{TieBreaker: "middle"}},
		{Nodes: []SimNode{{ID: 1, Name: "two words"}}},
		{},
	} {
		if _, err := NewSimClusterConfig(cfg); !errors.Is(err, ErrInvalidParam) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	// Accepted: odd with the tie-breaker and wait_for_all, LMS on top.
	if _, err := NewSimClusterConfig(SimConfig{Nodes: simNodes(3), AutoTieBreaker: true, LastManStanding: true,
		WaitForAll: new(true)}); err != nil {
		t.Error(err)
	}
}

// A reload reads votes, expected votes and two_node again: what
// setexpected and setvotes changed is undone (raised again to the votes
// present); wait_for_all, last_man_standing and auto_tie_breaker stay as
// the nodes started, until they restart.
func TestSimReload(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(3)})
	must(t, c.SetVotes(1, 3, 2))
	wantInfo(t, "node 3 at 2 votes", info(t, c, 1, 0), member, 1, 4, 4, 4, 3, fQ)
	cfg := c.Config()
	cfg.Nodes[1].Name = "second"
	cfg.LastManStanding = true
	must(t, c.Reload(1, cfg))
	wantInfo(t, "reloaded", info(t, c, 1, 0), member, 1, 3, 3, 3, 2, fQ)
	wantInfo(t, "node 3 reloaded", info(t, c, 1, 3), member, 1, 3, 3, 3, 2, fQ)
	must(t, c.Restart(2))
	wantInfo(t, "node 2 restarted", info(t, c, 2, 0), member, 1, 3, 3, 3, 2, fQ|fLMS)
	wantInfo(t, "node 1 not restarted", info(t, c, 1, 0), member, 1, 3, 3, 3, 2, fQ)

	// A reload reaches the issuer's partition only.
	must(t, c.Partition([]uint32{3}))
	cfg = c.Config()
	cfg.Nodes[0].Votes = 3
	must(t, c.Reload(3, cfg))
	wantInfo(t, "node 1 in the other partition", info(t, c, 1, 0), member, 1, 3, 3, 2, 2, fQ)
	if err := c.Reload(1, SimConfig{Nodes: simNodes(4)}); !errors.Is(err, ErrInvalidParam) {
		t.Errorf("a reload adding a node: %v", err)
	}
	must(t, c.Stop(1))
	if err := c.Reload(1, cfg); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("a reload on a stopped node: %v", err)
	}
	// Node 1 starts with the file node 3 reloaded: 3 votes of its own, 5
	// expected, which makes it quorate alone. Node 2, alone and inquorate
	// since node 1 stopped, takes those 5 expected votes, and turns
	// last_man_standing off on seeing a node of 3 votes.
	must(t, c.Start(1))
	wantInfo(t, "node 1 started with 3 votes", info(t, c, 1, 0), member, 3, 5, 5, 4, 3, fQ)
	wantInfo(t, "node 2", info(t, c, 2, 0), member, 1, 5, 5, 4, 3, fQ)

	// A file corosync refuses: accepted by the reload, fatal at start.
	cfg = c.Config()
	cfg.AutoTieBreaker, cfg.LastManStanding = true, true
	must(t, c.Reload(1, cfg))
	if err := c.Restart(1); !errors.Is(err, ErrInvalidParam) {
		t.Fatalf("restart with auto_tie_breaker and last_man_standing, 5 votes: %v", err)
	}
	if _, _, _, err := c.View(1); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("node 1 after a failed start: %v", err)
	}
}

// SetTwoNode is a reload on every partition: on, a lone survivor keeps
// quorum.
func TestSimSetTwoNode(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(2)})
	must(t, c.Stop(2))
	wantInfo(t, "1 of 2", info(t, c, 1, 0), member, 1, 2, 2, 1, 2, 0)
	c.SetTwoNode(true)
	wantInfo(t, "two_node on", info(t, c, 1, 0), member, 1, 2, 2, 1, 1, f2N|fQ|fWFA)
	c.SetTwoNode(false)
	wantInfo(t, "two_node off", info(t, c, 1, 0), member, 1, 2, 2, 1, 2, 0)
}
