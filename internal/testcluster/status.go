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
// Without votequorum the tool prints the sequence alone (NodeID is 0 then).
type RingID struct {
	NodeID uint32
	Seq    uint64
}

// String formats r the way corosync-quorumtool 3.0.3 and later does.
func (r RingID) String() string { return fmt.Sprintf("%x.%x", r.NodeID, r.Seq) }

// ProviderNone is what corosync-quorumtool prints as the quorum provider
// when corosync has none (every partition is quorate then).
const ProviderNone = "Not configured"

// QdeviceFlags is a node's entry in the Qdevice column of the membership
// table: NR (not registered), or A/NA (alive), V/NV (casts its vote),
// MW/NMW (master wins).
type QdeviceFlags struct {
	Registered bool
	Alive      bool
	CastVote   bool
	MasterWins bool
}

// String formats f as the Qdevice column does.
func (f QdeviceFlags) String() string {
	if !f.Registered {
		return "NR"
	}
	pick := func(b bool, yes, no string) string {
		if b {
			return yes
		}
		return no
	}
	return pick(f.Alive, "A", "NA") + "," + pick(f.CastVote, "V", "NV") + "," + pick(f.MasterWins, "MW", "NMW")
}

// parseQdeviceFlags reads a Qdevice column entry.
func parseQdeviceFlags(s string) (QdeviceFlags, error) {
	if s == "NR" {
		return QdeviceFlags{}, nil
	}
	p := strings.Split(s, ",")
	if len(p) != 3 {
		return QdeviceFlags{}, fmt.Errorf("qdevice column %q: want NR or three comma-separated flags", s)
	}
	f := QdeviceFlags{Registered: true}
	for i, x := range []struct {
		dst     *bool
		yes, no string
	}{{&f.Alive, "A", "NA"}, {&f.CastVote, "V", "NV"}, {&f.MasterWins, "MW", "NMW"}} {
		switch p[i] {
		case x.yes:
			*x.dst = true
		case x.no:
		default:
			return QdeviceFlags{}, fmt.Errorf("qdevice column %q: %q is neither %s nor %s", s, p[i], x.yes, x.no)
		}
	}
	return f, nil
}

// Member is one node's row of the membership table.
type Member struct {
	NodeID uint32
	Votes  uint32 // 0 when the table has no Votes column (no votequorum)
	// Name as the tool prints it: the nodelist name (3.x), the ring0_addr
	// as written in the config (2.x), or the first address, resolved or
	// numeric (-i), when there is no nodelist name. Empty if the tool
	// could not get the node's address.
	Name  string
	Local bool // marked "(local)"
	// Qdevice is the node's Qdevice column, zero when the column is
	// absent (see Status.QdeviceColumn) or reads NR.
	Qdevice QdeviceFlags
}

// QdeviceRow is the table's last row, node id 0, printed when a quorum
// device is registered on any member.
type QdeviceRow struct {
	// Votes is the Votes column: the device's votes when this node's
	// device casts its vote, else 0 ("so that the display is not
	// confusing", the tool says) with the real count in ConfiguredVotes.
	Votes uint32
	// ConfiguredVotes is the device's votes, from the "(votes N)" suffix
	// when it does not vote, else equal to Votes.
	ConfiguredVotes uint32
	Voting          bool   // no "(votes N)" suffix
	Name            string // votequorum's device name, "Qdevice" by default
}

// Status is one node's view as `corosync-quorumtool -s` reports it (with
// or without -p and -H).
type Status struct {
	Date     string // the Date line, as printed (the local time, ctime format)
	Provider string // "corosync_votequorum", or ProviderNone
	NodeID   uint32 // the node that answered; 0 without votequorum
	Quorate  bool
	Ring     RingID
	Nodes    int      // "Nodes:" line
	Members  []uint32 // node ids of the membership, in table order (ascending)
	Table    []Member

	// Votequorum reports whether the votequorum section was printed; the
	// fields below it are zero otherwise.
	Votequorum      bool
	ExpectedVotes   uint32
	HighestExpected uint32
	TotalVotes      uint32
	Quorum          uint32   // votes needed for quorum
	Blocked         bool     // "Activity blocked" after the quorum (not quorate)
	Flags           []string // e.g. Quorate, 2Node, WaitForAll, Qdevice

	// QdeviceColumn reports whether the table has a Qdevice column: a
	// device is registered on some member, or -p asked for it.
	QdeviceColumn bool
	Qdevice       *QdeviceRow // nil when the table has no qdevice row

	Raw string // the tool's output
}

// HasFlag reports whether the Flags line lists flag (e.g. "WaitForAll").
func (s Status) HasFlag(flag string) bool { return slices.Contains(s.Flags, flag) }

// Member returns the table's row of node id, ok false when absent.
func (s Status) Member(id uint32) (Member, bool) {
	for _, m := range s.Table {
		if m.NodeID == id {
			return m, true
		}
	}
	return Member{}, false
}

// ParseStatus parses the output of `corosync-quorumtool -s` as corosync
// 3.0.3 and later print it; it reads older output as well, except that a
// ring id printed without a node id (no votequorum) is taken as
// hexadecimal, which 2.x and 3.0.0-3.0.2 print in decimal: use
// ParseStatusVersion for those. It needs at least the
// Quorate, Ring ID and membership sections; a missing votequorum section
// (another quorum provider, or none) leaves the vote fields zero.
func ParseStatus(out string) (Status, error) {
	return ParseStatusVersion(out, Version{3, 0, 3})
}

// ParseStatusVersion is ParseStatus for the output of corosync-quorumtool
// of version v, which decides the base of a ring sequence printed alone.
func ParseStatusVersion(out string, v Version) (Status, error) {
	st := Status{Raw: out}
	var haveQuorate, haveRing bool
	lines := strings.Split(out, "\n")
	for n := 0; n < len(lines); n++ {
		line := strings.TrimRight(lines[n], " \t\r")
		if strings.TrimSpace(line) == "Membership information" {
			used, err := st.parseTable(lines[n+1:])
			if err != nil {
				return st, fmt.Errorf("corosync-quorumtool output: %w", err)
			}
			n += used
			continue
		}
		if strings.TrimSpace(line) == "Votequorum information" {
			st.Votequorum = true
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch strings.TrimSpace(key) {
		case "Date":
			st.Date = val
		case "Quorum provider":
			st.Provider = val
		case "Node ID":
			st.NodeID, err = parseNodeID(val)
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
			st.Ring, err = parseRingID(val, v)
			haveRing = err == nil
		case "Expected votes":
			st.ExpectedVotes, err = parseU32(val)
		case "Highest expected":
			st.HighestExpected, err = parseU32(val)
		case "Total votes":
			st.TotalVotes, err = parseU32(val)
		case "Quorum":
			// "Quorum:           2  ", or "... 2 Activity blocked".
			f := strings.Fields(val)
			if len(f) == 0 {
				err = errors.New("no value")
				break
			}
			st.Quorum, err = parseU32(f[0])
			switch rest := strings.Join(f[1:], " "); rest {
			case "":
			case "Activity blocked":
				st.Blocked = true
			default:
				err = fmt.Errorf("unknown suffix %q", rest)
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

// ParseList parses the output of `corosync-quorumtool -l`: the membership
// table alone. Only Members, Table, QdeviceColumn, Qdevice and Raw of the
// result are set. The table may be empty: without a quorum provider the
// quorum service reports no members.
func ParseList(out string) (Status, error) {
	st := Status{Raw: out}
	lines := strings.Split(out, "\n")
	for n, line := range lines {
		if strings.TrimSpace(line) != "Membership information" {
			continue
		}
		if _, err := st.parseTable(lines[n+1:]); err != nil {
			return st, fmt.Errorf("corosync-quorumtool -l output: %w", err)
		}
		return st, nil
	}
	return st, errors.New("corosync-quorumtool -l output: no membership table")
}

// parseTable reads the membership table from the lines after its title
// and returns how many lines it used. The header names the columns before
// Name: Nodeid, then Votes with votequorum, then Qdevice when shown. Each
// of them is printed right-aligned in 10 characters plus a space (hex node
// ids as 0x%08x plus a space), so the name starts after the last value
// field and may hold spaces (-a lists addresses separated by ", ").
func (st *Status) parseTable(lines []string) (int, error) {
	var cols []string
	n := 0
	for ; n < len(lines); n++ {
		line := strings.TrimRight(lines[n], " \t\r")
		t := strings.TrimSpace(line)
		if cols == nil {
			if t == "" || strings.Trim(t, "-") == "" {
				continue // the underline
			}
			cols = strings.Fields(t)
			if len(cols) < 2 || cols[0] != "Nodeid" || cols[len(cols)-1] != "Name" {
				return n, fmt.Errorf("membership header %q: want Nodeid ... Name", t)
			}
			cols = cols[:len(cols)-1]
			for _, c := range cols[1:] {
				switch c {
				case "Votes":
				case "Qdevice":
					st.QdeviceColumn = true
				default:
					return n, fmt.Errorf("membership header %q: unknown column %q", t, c)
				}
			}
			if st.QdeviceColumn && !slices.Contains(cols, "Votes") {
				return n, fmt.Errorf("membership header %q: Qdevice without Votes", t)
			}
			continue
		}
		if t == "" {
			break
		}
		if err := st.parseRow(line, cols); err != nil {
			return n, err
		}
	}
	if cols == nil {
		return n, errors.New("membership table without header")
	}
	return n, nil
}

// parseRow reads one row of the membership table with the value columns
// cols.
func (st *Status) parseRow(line string, cols []string) error {
	vals, rest := splitFields(line, len(cols))
	if len(vals) == 0 {
		return fmt.Errorf("membership row %q", line)
	}
	id, err := parseNodeID(vals[0])
	if err != nil {
		return fmt.Errorf("membership row %q: node id: %v", line, err)
	}
	if id == 0 && st.QdeviceColumn {
		// The qdevice row has no Qdevice column value: its name follows
		// the votes after a blank column.
		if st.Qdevice != nil {
			return fmt.Errorf("membership row %q: a second qdevice row", line)
		}
		vals, rest = splitFields(line, 2)
		if len(vals) < 2 {
			return fmt.Errorf("qdevice row %q: no votes", line)
		}
		q := &QdeviceRow{Voting: true}
		if q.Votes, err = parseU32(vals[1]); err != nil {
			return fmt.Errorf("qdevice row %q: votes: %v", line, err)
		}
		q.ConfiguredVotes = q.Votes
		if name, suffix, ok := strings.Cut(rest, " (votes "); ok {
			v, ok := strings.CutSuffix(suffix, ")")
			if !ok {
				return fmt.Errorf("qdevice row %q: unterminated (votes", line)
			}
			if q.ConfiguredVotes, err = parseU32(v); err != nil {
				return fmt.Errorf("qdevice row %q: votes: %v", line, err)
			}
			q.Voting, rest = false, name
		}
		if q.Name = rest; q.Name == "" {
			return fmt.Errorf("qdevice row %q: no name", line)
		}
		st.Qdevice = q
		return nil
	}
	if id == 0 {
		return fmt.Errorf("membership row %q: node id 0 is the qdevice's, and the table has no Qdevice column", line)
	}
	if st.Qdevice != nil {
		return fmt.Errorf("membership row %q after the qdevice row", line)
	}
	if len(vals) < len(cols) {
		return fmt.Errorf("membership row %q: %d of %d columns", line, len(vals), len(cols))
	}
	m := Member{NodeID: id}
	for i, c := range cols[1:] {
		v := vals[i+1]
		switch c {
		case "Votes":
			m.Votes, err = parseU32(v)
		case "Qdevice":
			m.Qdevice, err = parseQdeviceFlags(v)
		}
		if err != nil {
			return fmt.Errorf("membership row %q: %s: %v", line, c, err)
		}
	}
	if rest == "(local)" {
		m.Local, rest = true, ""
	} else if name, ok := strings.CutSuffix(rest, " (local)"); ok {
		m.Local, rest = true, name
	}
	m.Name = rest
	st.Table = append(st.Table, m)
	st.Members = append(st.Members, m.NodeID)
	return nil
}

// splitFields returns up to n leading whitespace-separated fields of line
// and the rest of the line after them, with its inner spacing kept.
func splitFields(line string, n int) (fields []string, rest string) {
	rest = line
	for len(fields) < n {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		fields = append(fields, rest[:end])
		rest = rest[end:]
	}
	return fields, strings.TrimSpace(rest)
}

func parseU32(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err
}

// parseNodeID reads a node id in decimal, or as -H prints it (0x%08x).
func parseNodeID(s string) (uint32, error) {
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		v, err := strconv.ParseUint(h, 16, 32)
		return uint32(v), err
	}
	return parseU32(s)
}

// parseRingID parses "<hex nodeid>.<hex seq>" (corosync 3.0.3 and later)
// or "<decimal nodeid>/<decimal seq>" (2.x, 3.0.0-3.0.2), or a sequence
// alone (without votequorum), hexadecimal from 3.0.3 on, decimal before.
func parseRingID(s string, v Version) (RingID, error) {
	base := 16
	a, b, ok := strings.Cut(s, ".")
	if !ok {
		base = 10
		if a, b, ok = strings.Cut(s, "/"); !ok {
			if s == "" || strings.ContainsAny(s, " \t:") {
				return RingID{}, fmt.Errorf("ring id %q: no '.' or '/'", s)
			}
			if v.AtLeast(3, 0, 3) {
				base = 16
			}
			q, err := strconv.ParseUint(s, base, 64)
			if err != nil {
				return RingID{}, fmt.Errorf("ring id %q: %v", s, err)
			}
			return RingID{Seq: q}, nil
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
