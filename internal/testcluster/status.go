//go:build linux

package testcluster

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// RingID is corosync's ring id as corosync-quorumtool prints it: the node
// id of the ring's representative and the ring's sequence number. Since
// 3.0.3 the tool prints "<nodeid>.<seq>", both hexadecimal; before (2.x,
// 3.0.0-3.0.2) "<nodeid>/<seq>", both decimal. Both parse to the same value.
type RingID struct {
	NodeID uint32
	Seq    uint64
}

// String formats r the way corosync-quorumtool 3.0.3 and later does.
func (r RingID) String() string { return fmt.Sprintf("%x.%x", r.NodeID, r.Seq) }

// Member is one row of the membership table.
type Member struct {
	NodeID uint32
	Votes  uint32
	Name   string
	Local  bool
}

// Status is one node's view as `corosync-quorumtool -s` reports it.
type Status struct {
	NodeID          uint32 // the node that answered
	Quorate         bool
	Ring            RingID
	Nodes           int      // "Nodes:" line
	Members         []uint32 // node ids of the membership, in table order (ascending)
	Table           []Member
	ExpectedVotes   uint32
	HighestExpected uint32
	TotalVotes      uint32
	Quorum          uint32   // votes needed for quorum
	Flags           []string // e.g. Quorate, 2Node, WaitForAll
	Raw             string   // the tool's output
}

// ParseStatus parses the output of `corosync-quorumtool -s`. It needs at
// least the Quorate, Ring ID and membership sections; a missing votequorum
// section (another quorum provider) leaves the vote fields zero.
func ParseStatus(out string) (Status, error) {
	st := Status{Raw: out}
	var haveQuorate, haveRing, inTable bool
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, " \t\r")
		if inTable {
			f := strings.Fields(line)
			if len(f) < 2 {
				if len(f) == 0 && len(st.Table) > 0 {
					inTable = false
				}
				continue
			}
			id, err1 := strconv.ParseUint(f[0], 10, 32)
			votes, err2 := strconv.ParseUint(f[1], 10, 32)
			if err1 != nil || err2 != nil {
				// The header row, or a qdevice row.
				continue
			}
			m := Member{NodeID: uint32(id), Votes: uint32(votes)}
			if len(f) > 2 {
				m.Name = f[2]
			}
			m.Local = strings.Contains(line, "(local)")
			st.Table = append(st.Table, m)
			st.Members = append(st.Members, m.NodeID)
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			if strings.TrimSpace(line) == "Membership information" {
				inTable = true
			}
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch strings.TrimSpace(key) {
		case "Node ID":
			st.NodeID, err = parseU32(val)
		case "Nodes":
			st.Nodes, err = strconv.Atoi(val)
		case "Quorate":
			switch val {
			case "Yes":
				st.Quorate, haveQuorate = true, true
			case "No":
				haveQuorate = true
			default:
				err = fmt.Errorf("unknown value %q", val)
			}
		case "Ring ID":
			st.Ring, err = parseRingID(val)
			haveRing = err == nil
		case "Expected votes":
			st.ExpectedVotes, err = parseU32(val)
		case "Highest expected":
			st.HighestExpected, err = parseU32(val)
		case "Total votes":
			st.TotalVotes, err = parseU32(val)
		case "Quorum":
			// "Quorum:           2  " possibly followed by "Activity blocked".
			if f := strings.Fields(val); len(f) > 0 {
				st.Quorum, err = parseU32(f[0])
			}
		case "Flags":
			st.Flags = strings.Fields(val)
		}
		if err != nil {
			return st, fmt.Errorf("corosync-quorumtool output: %s: %v", strings.TrimSpace(key), err)
		}
	}
	switch {
	case !haveQuorate:
		return st, errors.New("corosync-quorumtool output: no Quorate line")
	case !haveRing:
		return st, errors.New("corosync-quorumtool output: no Ring ID line")
	case len(st.Members) == 0:
		return st, errors.New("corosync-quorumtool output: no membership")
	}
	return st, nil
}

func parseU32(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err
}

// parseRingID parses "<hex nodeid>.<hex seq>" (corosync 3.0.3 and later)
// or "<decimal nodeid>/<decimal seq>" (2.x, 3.0.0-3.0.2).
func parseRingID(s string) (RingID, error) {
	base := 16
	a, b, ok := strings.Cut(s, ".")
	if !ok {
		base = 10
		if a, b, ok = strings.Cut(s, "/"); !ok {
			return RingID{}, fmt.Errorf("ring id %q: no '.' or '/'", s)
		}
	}
	n, err := strconv.ParseUint(a, base, 32)
	if err != nil {
		return RingID{}, fmt.Errorf("ring id %q: %v", s, err)
	}
	q, err := strconv.ParseUint(b, base, 64)
	if err != nil {
		return RingID{}, fmt.Errorf("ring id %q: %v", s, err)
	}
	return RingID{NodeID: uint32(n), Seq: q}, nil
}

// Reformed reports whether a nodelist notification (members, joined, left)
// is a ring corosync re-formed with the members of the last ring, prev.
// Corosync forms such rings at times, for instance while a node fails to
// rejoin at its first attempt; a test that waits for a change skips them
// (and the quorum notification of the same ring), since whether one comes
// depends on timing.
func Reformed(prev, members, joined, left []uint32) bool {
	return prev != nil && len(joined) == 0 && len(left) == 0 && slices.Equal(members, prev)
}
