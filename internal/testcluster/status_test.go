//go:build linux

package testcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Outputs of corosync-quorumtool -s (corosync 3.1.7) seen in this harness;
// in outBlocked the ring sequence was changed from d to 1d to exercise hex.
const (
	outTwoNode = `Quorum information
------------------
Date:             Wed Nov 25 01:54:20 2026
Quorum provider:  corosync_votequorum
Nodes:            3
Node ID:          1
Ring ID:          1.9
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            2Node Quorate WaitForAll 

Membership information
----------------------
    Nodeid      Votes Name
         1          1 node1 (local)
         2          1 node2
         3          1 node3
`
	outBlocked = `Quorum information
------------------
Date:             Wed Nov 25 01:54:30 2026
Quorum provider:  corosync_votequorum
Nodes:            1
Node ID:          3
Ring ID:          3.1d
Quorate:          No

Votequorum information
----------------------
Expected votes:   4
Highest expected: 4
Total votes:      1
Quorum:           3 Activity blocked
Flags:            

Membership information
----------------------
    Nodeid      Votes Name
         3          1 node3 (local)
`
)

func TestParseStatus(t *testing.T) {
	st, err := ParseStatus(outTwoNode)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Quorate || st.NodeID != 1 || st.Nodes != 3 || st.Ring != (RingID{1, 9}) ||
		st.ExpectedVotes != 3 || st.HighestExpected != 3 || st.TotalVotes != 3 || st.Quorum != 2 ||
		!slices.Equal(st.Members, []uint32{1, 2, 3}) || !slices.Equal(st.Flags, []string{"2Node", "Quorate", "WaitForAll"}) {
		t.Errorf("two_node output: %+v", st)
	}
	if want := []Member{{NodeID: 1, Votes: 1, Name: "node1", Local: true}, {NodeID: 2, Votes: 1, Name: "node2", Local: false}, {NodeID: 3, Votes: 1, Name: "node3", Local: false}}; !slices.Equal(st.Table, want) {
		t.Errorf("table %+v, want %+v", st.Table, want)
	}
	if st.Ring.String() != "1.9" {
		t.Errorf("ring %q", st.Ring)
	}

	st, err = ParseStatus(outBlocked)
	if err != nil {
		t.Fatal(err)
	}
	// The ring sequence is hexadecimal.
	if st.Quorate || st.NodeID != 3 || st.Ring != (RingID{3, 0x1d}) || st.Quorum != 3 || st.TotalVotes != 1 ||
		len(st.Flags) != 0 || !slices.Equal(st.Members, []uint32{3}) {
		t.Errorf("blocked output: %+v", st)
	}
}

// Outputs of corosync-quorumtool -s 2.4.6 (with libqb 1.0.1) in this
// harness: the ring id is "<nodeid>/<seq>" in decimal, and a node's name
// is its ring0_addr (the tool resolves the address, and nodelist names are
// not used).
const (
	out246Quorate = `Quorum information
------------------
Date:             Tue Dec  1 11:28:40 2026
Quorum provider:  corosync_votequorum
Nodes:            3
Node ID:          1
Ring ID:          1/9
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            Quorate 

Membership information
----------------------
    Nodeid      Votes Name
         1          1 10.213.0.1 (local)
         2          1 10.213.0.2
         3          1 10.213.0.3
`
	out246Cut = `Quorum information
------------------
Date:             Tue Dec  1 11:28:44 2026
Quorum provider:  corosync_votequorum
Nodes:            1
Node ID:          3
Ring ID:          3/13
Quorate:          No

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      1
Quorum:           2 Activity blocked
Flags:            

Membership information
----------------------
    Nodeid      Votes Name
         3          1 10.213.0.3 (local)
`
	out246TwoNode = `Quorum information
------------------
Date:             Tue Dec  1 11:28:44 2026
Quorum provider:  corosync_votequorum
Nodes:            2
Node ID:          2
Ring ID:          1/9
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   2
Highest expected: 2
Total votes:      2
Quorum:           1  
Flags:            2Node Quorate WaitForAll 

Membership information
----------------------
    Nodeid      Votes Name
         1          1 10.213.0.1
         2          1 10.213.0.2 (local)
`
)

func TestParseStatus2x(t *testing.T) {
	st, err := ParseStatus(out246Quorate)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Quorate || st.NodeID != 1 || st.Nodes != 3 || st.Ring != (RingID{1, 9}) ||
		st.ExpectedVotes != 3 || st.HighestExpected != 3 || st.TotalVotes != 3 || st.Quorum != 2 ||
		!slices.Equal(st.Members, []uint32{1, 2, 3}) || !slices.Equal(st.Flags, []string{"Quorate"}) {
		t.Errorf("2.4.6 quorate: %+v", st)
	}
	if want := []Member{{NodeID: 1, Votes: 1, Name: "10.213.0.1", Local: true}, {NodeID: 2, Votes: 1, Name: "10.213.0.2", Local: false}, {NodeID: 3, Votes: 1, Name: "10.213.0.3", Local: false}}; !slices.Equal(st.Table, want) {
		t.Errorf("table %+v, want %+v", st.Table, want)
	}
	// The same ring as 3.x prints it.
	if st.Ring.String() != "1.9" {
		t.Errorf("ring %q", st.Ring)
	}

	st, err = ParseStatus(out246Cut)
	if err != nil {
		t.Fatal(err)
	}
	// The ring sequence is decimal: 13, which 3.x prints as d.
	if st.Quorate || st.NodeID != 3 || st.Ring != (RingID{3, 13}) || st.Ring.String() != "3.d" || st.Quorum != 2 ||
		st.TotalVotes != 1 || len(st.Flags) != 0 || !slices.Equal(st.Members, []uint32{3}) {
		t.Errorf("2.4.6 cut off: %+v", st)
	}

	st, err = ParseStatus(out246TwoNode)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Quorate || st.NodeID != 2 || st.Quorum != 1 || !slices.Equal(st.Flags, []string{"2Node", "Quorate", "WaitForAll"}) ||
		!slices.Equal(st.Members, []uint32{1, 2}) || st.Table[1] != (Member{NodeID: 2, Votes: 1, Name: "10.213.0.2", Local: true}) {
		t.Errorf("2.4.6 two_node: %+v", st)
	}
}

// Output of corosync-quorumtool -s 3.0.4 (with libqb 1.0.5) on a node cut
// off: hexadecimal ring id (sequence 0x11) and nodelist names, like 3.1.
const out304Cut = `Quorum information
------------------
Date:             Tue Dec  1 11:34:13 2026
Quorum provider:  corosync_votequorum
Nodes:            1
Node ID:          3
Ring ID:          3.11
Quorate:          No

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      1
Quorum:           2 Activity blocked
Flags:            

Membership information
----------------------
    Nodeid      Votes Name
         3          1 node3 (local)
`

func TestParseStatus304(t *testing.T) {
	st, err := ParseStatus(out304Cut)
	if err != nil {
		t.Fatal(err)
	}
	if st.Quorate || st.NodeID != 3 || st.Ring != (RingID{3, 0x11}) || st.Quorum != 2 || st.TotalVotes != 1 ||
		len(st.Flags) != 0 || !slices.Equal(st.Table, []Member{{NodeID: 3, Votes: 1, Name: "node3", Local: true}}) {
		t.Errorf("3.0.4 cut off: %+v", st)
	}
}

func TestParseStatusErrors(t *testing.T) {
	for name, out := range map[string]string{
		"empty":       "",
		"refused":     "Cannot initialize CMAP service\n",
		"no quorate":  strings.Replace(outTwoNode, "Quorate:          Yes\n", "", 1),
		"bad quorate": strings.Replace(outTwoNode, "Quorate:          Yes", "Quorate:          Maybe", 1),
		"no ring":     strings.Replace(outTwoNode, "Ring ID:          1.9\n", "", 1),
		"bad ring":    strings.Replace(outTwoNode, "1.9", "1:9", 1),
		"hex in 2.x":  strings.Replace(outTwoNode, "1.9", "1/1d", 1),
		"bad 2.x seq": strings.Replace(out246Quorate, "1/9", "1/", 1),
		"bad votes":   strings.Replace(outTwoNode, "Total votes:      3", "Total votes:      -3", 1),
		"no members":  outTwoNode[:strings.Index(outTwoNode, "    Nodeid")],
	} {
		if _, err := ParseStatus(out); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzParseStatus checks that no input panics and that a success always
// carries a membership.
func FuzzParseStatus(f *testing.F) {
	f.Add(outTwoNode)
	f.Add(outBlocked)
	f.Add(out246Cut)
	f.Add(out304Cut)
	f.Add("Ring ID: .\nQuorate: Yes\nMembership information\n 1 1\n")
	f.Add(qdeviceOut)
	if b, err := os.ReadFile(filepath.Join("testdata", "quorumtool", "3.1.7", "qdevice-mixed-unregistered.txt")); err == nil {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStatus(s)
		if err == nil && len(st.Members) == 0 {
			t.Fatalf("success without members: %q", s)
		}
	})
}

func TestReformed(t *testing.T) {
	ids := func(v ...uint32) []uint32 { return v }
	none := []uint32{}
	for _, tc := range []struct {
		name                        string
		prev, members, joined, left []uint32
		want                        bool
	}{
		{"same members, nothing joined or left", ids(1, 2, 3), ids(1, 2, 3), none, none, true},
		{"a node left", ids(1, 2, 3), ids(1, 2), none, ids(3), false},
		{"a node joined", ids(1, 2), ids(1, 2, 3), ids(3), none, false},
		{"cut and healed before noticed", ids(1, 2, 3), ids(1, 2, 3), ids(3), ids(3), false},
		{"members differ with nothing listed", ids(1, 2, 3), ids(1, 2), none, none, false},
		{"no ring before", nil, ids(1), none, none, false},
	} {
		if got := Reformed(tc.prev, tc.members, tc.joined, tc.left); got != tc.want {
			t.Errorf("%s: Reformed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// captured is what the outputs of corosync-quorumtool under
// testdata/quorumtool/<version>/ show, captured from clusters of this
// harness on corosync 2.4.6, 3.0.4 and 3.1.7 (the name of each file says
// the scenario and the flags; -l files are of `corosync-quorumtool -l`).
type captured struct {
	list            bool // -l output
	quorate         bool
	nodeID          uint32 // also the local row's node id
	members         []uint32
	expected        uint32
	highest         uint32
	total           uint32
	quorum          uint32
	blocked         bool
	flags           []string
	votes           []uint32 // per member; nil: all 1
	qcol            bool
	qflags          []string // per member, as the column prints them
	qrow            *QdeviceRow
	names           func(v Version) []string // per member; nil: the default names; a trailing % allows a scope id
	hexIDs          bool
	noVotequorum    bool
	wantErr, listOK bool
}

func addrNames(ids ...int) []string {
	var s []string
	for _, i := range ids {
		s = append(s, fmt.Sprintf("%s.%d", Subnet, i))
	}
	return s
}

func TestParseCaptured(t *testing.T) {
	defaultNames := func(v Version) []string {
		if !v.AtLeast(3, 0, 0) {
			return addrNames(1, 2, 3, 4)
		}
		return []string{"node1", "node2", "node3", "node4"}
	}
	three := []uint32{1, 2, 3}
	all := func(s string, n int) []string { return slices.Repeat([]string{s}, n) }
	voting := &QdeviceRow{Votes: 1, ConfiguredVotes: 1, Voting: true, Name: "Qdevice"}
	notVoting := &QdeviceRow{Votes: 0, ConfiguredVotes: 1, Voting: false, Name: "Qdevice"}
	q := []string{"Quorate"}
	qq := []string{"Quorate", "Qdevice"}
	want := map[string]captured{
		"three":     {quorate: true, nodeID: 1, members: three, expected: 3, highest: 3, total: 3, quorum: 2, flags: q},
		"three-p":   {quorate: true, nodeID: 2, members: three, expected: 3, highest: 3, total: 3, quorum: 2, flags: q, qcol: true, qflags: all("NR", 3)},
		"three-H":   {quorate: true, nodeID: 3, members: three, expected: 3, highest: 3, total: 3, quorum: 2, flags: q, hexIDs: true},
		"three-l":   {list: true, nodeID: 1, members: three},
		"cut":       {nodeID: 3, members: []uint32{3}, expected: 3, highest: 3, total: 1, quorum: 2, blocked: true, flags: []string{}, names: func(v Version) []string { return defaultNames(v)[2:3] }},
		"qdevice":   {quorate: true, nodeID: 1, members: three, expected: 4, highest: 4, total: 4, quorum: 3, flags: qq, qcol: true, qflags: all("A,V,NMW", 3), qrow: voting},
		"qdevice-l": {list: true, nodeID: 2, members: three, qcol: true, qflags: all("A,V,NMW", 3), qrow: voting},
		"qdevice-qnetd-lost-p": {quorate: true, nodeID: 1, members: three, expected: 4, highest: 4, total: 3, quorum: 3, flags: qq, qcol: true,
			qflags: all("A,NV,NMW", 3), qrow: notVoting},
		"qdevice-mixed": {quorate: true, nodeID: 1, members: three, expected: 4, highest: 4, total: 4, quorum: 3, flags: qq, qcol: true,
			qflags: []string{"A,V,NMW", "NA,NV,NMW", "NR"}, qrow: voting},
		// Node 3's own device stopped: its Flags lose Qdevice and the
		// device's votes do not count in its view.
		"qdevice-mixed-unregistered": {quorate: true, nodeID: 3, members: three, expected: 4, highest: 4, total: 3, quorum: 3, flags: q, qcol: true,
			qflags: []string{"A,V,NMW", "NA,NV,NMW", "NR"}, qrow: notVoting},
		"qdevice-lms-masterwins": {quorate: true, nodeID: 2, members: []uint32{1, 2}, expected: 3, highest: 3, total: 3, quorum: 2, flags: qq, qcol: true,
			qflags: all("A,V,MW", 2), qrow: voting},
		"qdevice-lms-cut": {nodeID: 2, members: []uint32{2}, expected: 3, highest: 3, total: 1, quorum: 2, blocked: true, flags: []string{"Qdevice"}, qcol: true,
			qflags: []string{"A,NV,MW"}, qrow: notVoting, names: func(v Version) []string { return defaultNames(v)[1:2] }},
		"qdevice-lms-cut-winner": {quorate: true, nodeID: 1, members: []uint32{1}, expected: 3, highest: 3, total: 2, quorum: 2, flags: qq, qcol: true,
			qflags: []string{"A,V,MW"}, qrow: voting},
		"ipv6": {quorate: true, nodeID: 1, members: []uint32{1, 2}, expected: 2, highest: 2, total: 2, quorum: 2, flags: q,
			names: func(v Version) []string {
				if !v.AtLeast(3, 0, 0) {
					return []string{Subnet6 + "1", Subnet6 + "2"}
				}
				return []string{"node1", "node2"}
			}},
		// getnameinfo appends a scope id to IPv6 addresses in 2.4.6 and
		// 3.1.7, one that changes from run to run (none in 3.0.4).
		"ipv6-i": {quorate: true, nodeID: 2, members: []uint32{1, 2}, expected: 2, highest: 2, total: 2, quorum: 2, flags: q,
			names: func(Version) []string { return []string{Subnet6 + "1%", Subnet6 + "2%"} }},
		"names": {quorate: true, nodeID: 1, members: three, expected: 3, highest: 3, total: 3, quorum: 2, flags: q,
			names: func(v Version) []string {
				if !v.AtLeast(3, 0, 0) {
					return addrNames(1, 2, 3)
				}
				return []string{"node1", "web-2.example", ""}
			}},
		"names-i": {quorate: true, nodeID: 1, members: three, expected: 3, highest: 3, total: 3, quorum: 2, flags: q,
			names: func(Version) []string { return addrNames(1, 2, 3) }},
		"votes": {quorate: true, nodeID: 3, members: three, expected: 5, highest: 5, total: 5, quorum: 3, flags: q, votes: []uint32{1, 3, 1},
			names: func(v Version) []string {
				if !v.AtLeast(3, 0, 0) {
					return addrNames(1, 2, 3)
				}
				return []string{"node1", "web-2.example", ""}
			}},
		// The reload that renamed node 2 also reset its votes (set with
		// -v to 3) to the config's.
		"renamed": {quorate: true, nodeID: 3, members: three, expected: 3, highest: 3, total: 3, quorum: 2, flags: q,
			names: func(v Version) []string {
				if !v.AtLeast(3, 0, 0) {
					return addrNames(1, 2, 3)
				}
				return []string{"node1", "renamed-2", ""}
			}},
		"flags": {quorate: true, nodeID: 4, members: []uint32{1, 2, 3, 4}, expected: 4, highest: 4, total: 4, quorum: 3,
			flags: []string{"Quorate", "WaitForAll", "LastManStanding", "AutoTieBreaker", "AllowDownscale"}},
		"twonode-alone": {quorate: true, nodeID: 1, members: []uint32{1}, expected: 2, highest: 2, total: 1, quorum: 1,
			flags: []string{"2Node", "Quorate", "WaitForAll"}},
		// -s fails without a provider; -l lists nobody.
		"noprovider":   {wantErr: true},
		"noprovider-l": {list: true, listOK: true, noVotequorum: true},
	}
	dirs, err := filepath.Glob(filepath.Join("testdata", "quorumtool", "*"))
	if err != nil || len(dirs) != 3 {
		t.Fatalf("testdata: %v %v", dirs, err)
	}
	for _, dir := range dirs {
		v, err := ParseVersion(fmt.Sprintf("Corosync Cluster Engine, version '%s'", filepath.Base(dir)))
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for name, w := range want {
			b, err := os.ReadFile(filepath.Join(dir, name+".txt"))
			if err != nil {
				t.Errorf("%s: %v", v, err)
				continue
			}
			seen++
			t.Run(v.String()+"/"+name, func(t *testing.T) { checkCaptured(t, v, string(b), w, defaultNames) })
		}
		if files, _ := filepath.Glob(filepath.Join(dir, "*.txt")); len(files) != seen {
			t.Errorf("%s: %d files, %d checked", dir, len(files), seen)
		}
	}
}

func checkCaptured(t *testing.T, v Version, out string, w captured, defaultNames func(Version) []string) {
	var st Status
	var err error
	if w.list {
		st, err = ParseList(out)
	} else {
		st, err = ParseStatusVersion(out, v)
	}
	if w.wantErr {
		if err == nil {
			t.Fatalf("no error for\n%s", out)
		}
		if _, err := ParseList(out); err == nil {
			t.Fatalf("ParseList: no error for\n%s", out)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if w.listOK {
		if len(st.Table) != 0 || st.QdeviceColumn || st.Qdevice != nil {
			t.Errorf("%+v", st)
		}
		return
	}
	if !slices.Equal(st.Members, w.members) {
		t.Errorf("members %v, want %v", st.Members, w.members)
	}
	if !w.list {
		// The ring id read back in the form it was printed in.
		ring := st.Ring.String()
		if !v.AtLeast(3, 0, 0) {
			ring = fmt.Sprintf("%d/%d", st.Ring.NodeID, st.Ring.Seq)
		}
		if !strings.Contains(out, "Ring ID:          "+ring+"\n") || st.Ring.NodeID == 0 {
			t.Errorf("ring %v", st.Ring)
		}
		if st.Provider != "corosync_votequorum" || !st.Votequorum || st.Date == "" || st.Nodes != len(w.members) {
			t.Errorf("provider %q, votequorum %v, date %q, nodes %d", st.Provider, st.Votequorum, st.Date, st.Nodes)
		}
		got := []any{st.Quorate, st.NodeID, st.ExpectedVotes, st.HighestExpected, st.TotalVotes, st.Quorum, st.Blocked}
		exp := []any{w.quorate, w.nodeID, w.expected, w.highest, w.total, w.quorum, w.blocked}
		if !slices.Equal(got, exp) {
			t.Errorf("quorate, node id, expected, highest, total, quorum, blocked: %v, want %v", got, exp)
		}
		if !slices.Equal(st.Flags, w.flags) && !(len(st.Flags) == 0 && len(w.flags) == 0) {
			t.Errorf("flags %q, want %q", st.Flags, w.flags)
		}
	}
	if st.QdeviceColumn != w.qcol {
		t.Errorf("qdevice column %v", st.QdeviceColumn)
	}
	if (st.Qdevice == nil) != (w.qrow == nil) || (w.qrow != nil && *st.Qdevice != *w.qrow) {
		t.Errorf("qdevice row %+v, want %+v", st.Qdevice, w.qrow)
	}
	if w.hexIDs != strings.Contains(out, "0x0000000") {
		t.Errorf("hex ids: %v", w.hexIDs)
	}
	names := defaultNames(v)
	if w.names != nil {
		names = w.names(v)
	}
	for n, m := range st.Table {
		votes := uint32(1)
		if w.votes != nil {
			votes = w.votes[n]
		}
		qf := "NR"
		if w.qflags != nil {
			qf = w.qflags[n]
		}
		name := names[n]
		if w.names == nil {
			name = names[m.NodeID-1]
		}
		nameOK := m.Name == name
		if p, ok := strings.CutSuffix(name, "%"); ok {
			scope, ok := strings.CutPrefix(m.Name, p+"%")
			_, err := strconv.ParseUint(scope, 10, 32)
			nameOK = m.Name == p || (ok && err == nil)
		}
		if m.Votes != votes || m.Qdevice.String() != qf || m.Local != (m.NodeID == w.nodeID) || !nameOK {
			t.Errorf("row %+v: want votes %d, qdevice %s, name %q, local %v", m, votes, qf, name, m.NodeID == w.nodeID)
		}
	}
}

func TestParseStatusForms(t *testing.T) {
	// No votequorum (another provider): the ring's sequence alone, hex
	// from 3.0.3 on and decimal before; no Votes column.
	out := "Quorum information\n------------------\nDate:             Tue Dec  1 14:33:16 2026\n" +
		"Quorum provider:  corosync_testquorum\nNodes:            2\nNode ID:          0\nRing ID:          1d\n" +
		"Quorate:          Yes\n\nMembership information\n----------------------\n    Nodeid Name\n" +
		"         1 node1\n         2 node2\n"
	st, err := ParseStatus(out)
	if err != nil || st.Ring != (RingID{Seq: 0x1d}) || st.Votequorum || st.Provider != "corosync_testquorum" ||
		!slices.Equal(st.Members, []uint32{1, 2}) || st.Table[1] != (Member{NodeID: 2, Name: "node2"}) {
		t.Errorf("no votequorum, 3.x: %+v, %v", st, err)
	}
	st, err = ParseStatusVersion(strings.Replace(out, "1d\n", "29\n", 1), Version{2, 4, 6})
	if err != nil || st.Ring != (RingID{Seq: 29}) {
		t.Errorf("no votequorum, 2.x: %+v, %v", st, err)
	}
	if _, err := ParseStatusVersion(out, Version{2, 4, 6}); err == nil {
		t.Error("hex sequence read as 2.x")
	}
	// 3.0.0 to 3.0.2 still print decimal (CS_PRI_RING_ID came with 3.0.3).
	st, err = ParseStatusVersion(strings.Replace(out, "1d\n", "29\n", 1), Version{3, 0, 2})
	if err != nil || st.Ring != (RingID{Seq: 29}) {
		t.Errorf("no votequorum, 3.0.2: %+v, %v", st, err)
	}
	// -a: every address after the name, separated by ", ".
	st, err = ParseStatus(strings.Replace(outTwoNode, "node2\n", "node2, 10.213.0.2, 10.214.0.2\n", 1))
	if err != nil || st.Table[1].Name != "node2, 10.213.0.2, 10.214.0.2" {
		t.Errorf("-a: %+v, %v", st.Table, err)
	}
	for name, bad := range map[string]string{
		"qdevice flags":     strings.Replace(qdeviceOut, "A,V,NMW node2", "A,X,NMW node2", 1),
		"two flags":         strings.Replace(qdeviceOut, "A,V,NMW node2", "  A,NMW node2", 1),
		"row after qdevice": qdeviceOut + "         4          1    A,V,NMW node4\n",
		"two qdevice rows":  qdeviceOut + "         0          1            Qdevice\n",
		"qdevice votes":     strings.Replace(qdeviceOut, "0          1            Qdevice", "0          x            Qdevice", 1),
		"bad (votes":        strings.Replace(qdeviceOut, "            Qdevice", "            Qdevice (votes 1", 1),
		"no qdevice name":   strings.Replace(qdeviceOut, "            Qdevice", "", 1),
		"id 0 no column":    outTwoNode + "         0          1 Qdevice\n",
		"short row":         strings.Replace(qdeviceOut, "    A,V,NMW node2", "", 1),
		"unknown column":    strings.Replace(qdeviceOut, "Qdevice Name", "Weight Name", 1),
		"no header":         strings.Replace(qdeviceOut, "    Nodeid      Votes    Qdevice Name\n", "", 1),
		"quorum suffix":     strings.Replace(qdeviceOut, "Quorum:           3  ", "Quorum:           3 Maybe", 1),
		"hex id":            strings.Replace(qdeviceOut, "         2          1", "0x0000000g          1", 1),
	} {
		if _, err := ParseStatus(bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if f, err := parseQdeviceFlags("NA,V,MW"); err != nil || f != (QdeviceFlags{Registered: true, CastVote: true, MasterWins: true}) || f.String() != "NA,V,MW" {
		t.Errorf("NA,V,MW: %+v %v", f, err)
	}
}

// qdeviceOut is testdata/quorumtool/3.1.7/qdevice.txt, for variations.
var qdeviceOut = func() string {
	b, err := os.ReadFile(filepath.Join("testdata", "quorumtool", "3.1.7", "qdevice.txt"))
	if err != nil {
		return ""
	}
	return string(b)
}()
