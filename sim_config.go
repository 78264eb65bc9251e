package quorum

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// SimConfig is the part of corosync.conf that the simulated cluster reads:
// the nodelist and the quorum section. Every node starts with the same
// file. The zero value of each field is what corosync does when the key is
// left out.
type SimConfig struct {
	// Nodes is the nodelist. Node ids must be non-zero and distinct.
	Nodes []SimNode
	// NoProvider leaves quorum.provider out: corosync runs without
	// votequorum (QUORUM_FREE). Every partition is then quorate, the quorum
	// service sends no quorum notification on a membership change (its
	// trackstart snapshot has one, quorate, with ring 0.0 and no members),
	// and votequorum requests fail with an error matching ErrNotSupported.
	NoProvider bool
	// ExpectedVotes is quorum.expected_votes; 0 leaves it out (the sum of
	// the nodes' votes).
	ExpectedVotes uint32
	// TwoNode is quorum.two_node: a partition of at most two nodes needs
	// one vote. It turns wait_for_all on unless WaitForAll says otherwise,
	// and corosync turns it off when AutoTieBreaker is on.
	TwoNode bool
	// WaitForAll is quorum.wait_for_all; nil leaves it out (on with
	// TwoNode, off otherwise). With it, a node that starts, or that loses
	// quorum, is not quorate again until it has seen all its expected votes
	// at once (or a quorate node that no longer waits).
	WaitForAll *bool
	// LastManStanding is quorum.last_man_standing: once the window has
	// passed after nodes left (see EndLastManStandingWindow), expected
	// votes drop to the nodes present. corosync turns it off at run time
	// when a node has more than one vote.
	LastManStanding bool
	// AutoTieBreaker is quorum.auto_tie_breaker: on an even split (exactly
	// half the expected votes present, and the other half unable to be
	// quorate) the partition with the tie-breaker node stays quorate.
	// corosync turns it off in a cluster with an odd total of node votes
	// unless wait_for_all is on.
	AutoTieBreaker bool
	// AutoTieBreakerNode is quorum.auto_tie_breaker_node: "lowest" (the
	// default when empty), "highest", or node ids separated by spaces (the
	// first of them present wins, unless an earlier one was in the last
	// membership). Anything else turns auto_tie_breaker off, as corosync
	// does (it logs a warning).
	AutoTieBreakerNode string
	// Qdevice adds a quorum device (quorum.device, model net): a qnetd
	// server and corosync-qdevice on every node. corosync refuses it
	// together with TwoNode, LastManStanding or AutoTieBreaker.
	Qdevice *SimQdevice
}

// SimNode is one node of the nodelist.
type SimNode struct {
	ID uint32
	// Votes is the node's quorum_votes; 0 leaves the key out, which means
	// 1.
	Votes uint32
	// Name is the node's name key, which corosync-quorumtool shows; ""
	// means node<ID>, the name internal/testcluster gives its nodes. (A
	// node without a name key, which the tool shows by its address, is not
	// modelled.)
	Name string
}

// SimQdevice is the quorum.device section: model net, algorithm ffsplit.
type SimQdevice struct {
	// Votes is quorum.device.votes; 0 leaves it out, and votequorum then
	// gives the device one vote less than the nodes have when every node
	// has one vote (and refuses to start otherwise). The ffsplit algorithm
	// runs only with 1 set here and one vote per node: with anything else
	// corosync-qdevice registers the device and exits, so the device stays
	// registered and never alive.
	Votes uint32
	// TieBreaker is quorum.device.net.tie_breaker: which half of a 50:50
	// split qnetd gives its vote when both halves have as many qdevices
	// connected: "lowest" (the default when empty), "highest", or one node
	// id.
	TieBreaker string
	// MasterWins runs corosync-qdevice with -S master_wins=on: a partition
	// in which a node has its device's vote is quorate whatever the votes.
	MasterWins bool
}

// nodeName is the name corosync-quorumtool shows for n.
func (n SimNode) nodeName() string {
	if n.Name != "" {
		return n.Name
	}
	return "node" + strconv.FormatUint(uint64(n.ID), 10)
}

// clone returns a deep copy of cfg.
func (cfg SimConfig) clone() SimConfig {
	cfg.Nodes = slices.Clone(cfg.Nodes)
	if cfg.WaitForAll != nil {
		cfg.WaitForAll = new(*cfg.WaitForAll)
	}
	if cfg.Qdevice != nil {
		q := *cfg.Qdevice
		cfg.Qdevice = &q
	}
	return cfg
}

// check refuses what the simulation cannot represent. What corosync itself
// refuses at start is checked by readConfig.
func (cfg *SimConfig) check() error {
	if len(cfg.Nodes) == 0 {
		return fmt.Errorf("%w: the simulated cluster needs at least one node", ErrInvalidParam)
	}
	seen := make(map[uint32]bool, len(cfg.Nodes))
	for _, n := range cfg.Nodes {
		if n.ID == 0 {
			return fmt.Errorf("%w: node id 0 is reserved by corosync: use ids from 1", ErrInvalidParam)
		}
		if seen[n.ID] {
			return fmt.Errorf("%w: node id %d given twice", ErrInvalidParam, n.ID)
		}
		seen[n.ID] = true
		if strings.ContainsFunc(n.Name, func(r rune) bool { return r <= ' ' || strings.ContainsRune("{}#", r) }) {
			return fmt.Errorf("%w: node %d's name %q: corosync.conf takes no spaces, control characters, braces or #",
				ErrInvalidParam, n.ID, n.Name)
		}
	}
	if q := cfg.Qdevice; q != nil {
		if _, err := q.tieBreaker(cfg); err != nil {
			return err
		}
	}
	return nil
}

// tieBreaker returns the node ffsplit prefers in a 50:50 split, among
// cfg's nodes.
func (q *SimQdevice) tieBreaker(cfg *SimConfig) (uint32, error) {
	ids := make([]uint32, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		ids[i] = n.ID
	}
	switch q.TieBreaker {
	case "", "lowest":
		return slices.Min(ids), nil
	case "highest":
		return slices.Max(ids), nil
	}
	id, err := strconv.ParseUint(q.TieBreaker, 10, 32)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%w: quorum device tie_breaker %q: want lowest, highest or a node id", ErrInvalidParam, q.TieBreaker)
	}
	return uint32(id), nil
}

// waitForAll is wait_for_all as votequorum reads it at start: explicit, or
// following two_node (autoset).
func (cfg *SimConfig) waitForAll() (on, autoset bool) {
	if cfg.WaitForAll == nil {
		return cfg.TwoNode, true
	}
	return *cfg.WaitForAll, false
}

// atbMode is votequorum's auto_tie_breaker setting.
type atbMode uint8

const (
	atbNone atbMode = iota
	atbLowest
	atbHighest
	atbList
)

// parseATB reads auto_tie_breaker_node as votequorum does: "lowest",
// "highest", or, when the string starts with a number other than 0, the
// numbers that follow each other from its start (the first that is 0 or
// not a number ends the list). Anything else disables the tie-breaker.
func parseATB(s string) (atbMode, []uint32) {
	switch s {
	case "lowest":
		return atbLowest, nil
	case "highest":
		return atbHighest, nil
	}
	var list []uint32
	rest := s
	for {
		v, n := leadingInt(rest)
		if v == 0 {
			break
		}
		list = append(list, uint32(v))
		rest = rest[n:]
	}
	if len(list) == 0 {
		return atbNone, nil
	}
	return atbList, list
}

// leadingInt parses an integer at the start of s as C's strtol does in
// base 10 (leading white space, an optional sign), returning 0 when there
// is none, and how many bytes it read.
func leadingInt(s string) (int64, int) {
	i := 0
	for i < len(s) && strings.ContainsRune(" \t\n\v\f\r", rune(s[i])) {
		i++
	}
	start := i
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == digits {
		return 0, 0
	}
	v, err := strconv.ParseInt(s[start:i], 10, 64)
	if err != nil {
		return 0, 0
	}
	return v, i
}
