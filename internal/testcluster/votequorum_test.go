//go:build linux

package testcluster

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// testFeatures checks wait_for_all, last_man_standing and
// auto_tie_breaker on four nodes: the flags, the tie broken for the half
// with the lowest node id, and expected votes going down after the last
// man standing window. (With allow_downscale too, corosync 3.1.7 lowers
// expected votes to 2 after the window but keeps quorum at 3, from its
// expected votes barrier, and the half loses quorum.)
func testFeatures(t *testing.T, pids *pidLog) {
	c := Start(t, 4, WaitForAll(), LastManStanding(time.Second), AutoTieBreaker("lowest"))
	pids.add(c)
	ctx := context.Background()
	st := status(t, c, 1)
	if want := []string{"Quorate", "WaitForAll", "LastManStanding", "AutoTieBreaker"}; !slices.Equal(st.Flags, want) {
		t.Errorf("flags %v, want %v", st.Flags, want)
	}
	conf, err := os.ReadFile(c.ConfPath(2))
	must(t, err)
	for _, w := range []string{"\twait_for_all: 1\n", "\tlast_man_standing: 1\n\tlast_man_standing_window: 1000\n",
		"\tauto_tie_breaker: 1\n\tauto_tie_breaker_node: lowest\n"} {
		if !strings.Contains(string(conf), w) {
			t.Errorf("config lacks %q", w)
		}
	}
	// Two of four votes: quorate only by the tie breaker, on the side of
	// node 1; nodes 3 and 4 are alone each.
	must(t, c.Cut(3))
	must(t, c.Cut(4))
	waitMembers(t, c, 1, 1, 2)
	waitMembers(t, c, 3, 3)
	must(t, c.WaitStatus(ctx, 1, func(s Status) bool { return s.Quorate && s.TotalVotes == 2 }, "quorate with 2 of 4 votes"))
	if st := status(t, c, 3); st.Quorate {
		t.Errorf("node 3 alone is quorate: %+v", st)
	}
	// After the window, last_man_standing lowers expected votes to the
	// votes present.
	start := time.Now()
	must(t, c.WaitStatus(ctx, 1, func(s Status) bool { return s.ExpectedVotes == 2 && s.Quorate }, "expected votes 2"))
	t.Logf("expected votes down to 2 after %v", time.Since(start).Round(10*time.Millisecond))
	must(t, c.Heal(3))
	must(t, c.Heal(4))
	for i := 1; i <= 4; i++ {
		waitMembers(t, c, i, 1, 2, 3, 4)
	}
	must(t, c.WaitStatus(ctx, 1, func(s Status) bool { return s.ExpectedVotes == 4 }, "expected votes 4"))
}

// testNamesVotesRename checks node names, SetVotes, RenameNode, the
// quorumtool flags -p and -H, and allow_downscale's flag.
func testNamesVotesRename(t *testing.T, pids *pidLog) {
	c := Start(t, 3, NodeName(2, "web-2.example"), NodeName(3, ""), AllowDownscale())
	pids.add(c)
	ctx := context.Background()
	v3 := c.Install().Version.AtLeast(3, 0, 0)
	st := status(t, c, 1)
	names := map[uint32]string{}
	for _, m := range st.Table {
		names[m.NodeID] = m.Name
	}
	if v3 {
		// Without a name key the tool resolves the address; with no name
		// server reachable from the namespace getnameinfo fails (nothing
		// is printed) or falls back to the number, as the resolver goes.
		if names[1] != "node1" || names[2] != "web-2.example" || (names[3] != "" && names[3] != c.Addr(3)) {
			t.Errorf("names %v", names)
		}
		t.Logf("node without a name key shown as %q", names[3])
	} else if names[1] != c.Addr(1) || names[2] != c.Addr(2) || names[3] != c.Addr(3) {
		// 2.x shows ring0_addr as written.
		t.Errorf("names %v", names)
	}
	if c.Name(2) != "web-2.example" || c.Name(3) != "" || c.Name(4) != "" {
		t.Errorf("Name: %q %q %q", c.Name(2), c.Name(3), c.Name(4))
	}

	// -p: the Qdevice column with no device anywhere; -H: hex node ids.
	st, err := c.QuorumtoolStatus(ctx, 2, "-p", "-H")
	must(t, err)
	if !st.QdeviceColumn || st.Qdevice != nil || st.NodeID != 2 || !slices.Equal(st.Members, []uint32{1, 2, 3}) ||
		!slices.Equal(st.Flags, []string{"Quorate", "AllowDownscale"}) ||
		!strings.Contains(st.Raw, "0x00000002 ") || !strings.Contains(st.Raw, " NR ") {
		t.Errorf("-p -H: %+v", st)
	}
	for _, m := range st.Table {
		if m.Qdevice.Registered || m.Votes != 1 {
			t.Errorf("-p: %+v", m)
		}
	}

	// Votes of node 2 set from node 1, seen everywhere; expected votes
	// follow the total up.
	must(t, c.SetVotes(1, 2, 3))
	must(t, c.WaitStatus(ctx, 3, func(s Status) bool { m, _ := s.Member(2); return m.Votes == 3 }, "node 2 with 3 votes"))
	if st := status(t, c, 3); st.TotalVotes != 5 || st.ExpectedVotes != 5 || st.Quorum != 3 {
		t.Errorf("after -v 3: %+v", st)
	}
	if err := c.SetVotes(1, 9, 1); err == nil || !strings.Contains(err.Error(), "CS_ERR_NAME_NOT_FOUND") {
		t.Errorf("votes of node 9: %v, want CS_ERR_NAME_NOT_FOUND", err)
	}
	// 0 votes for node 2 would leave 2 of 5: refused.
	if err := c.SetVotes(1, 2, 0); err == nil || !strings.Contains(err.Error(), "CS_ERR_INVALID_PARAM") {
		t.Errorf("0 votes for node 2: %v, want CS_ERR_INVALID_PARAM", err)
	}
	must(t, c.SetVotes(3, 0, 2)) // node 3 itself
	must(t, c.WaitStatus(ctx, 1, func(s Status) bool { m, _ := s.Member(3); return m.Votes == 2 }, "node 3 with 2 votes"))

	start := time.Now()
	must(t, c.RenameNode(2, "renamed-2"))
	t.Logf("renamed after %v", time.Since(start).Round(10*time.Millisecond))
	for i := 1; i <= 3; i++ {
		if got, err := c.CmapGet(ctx, i, "nodelist.node.1.name"); err != nil || got != "renamed-2" {
			t.Errorf("node %d: cmap name %q, %v", i, got, err)
		}
		b, err := os.ReadFile(c.ConfPath(i))
		must(t, err)
		if !strings.Contains(string(b), "\t\tname: renamed-2\n\t\tnodeid: 2\n") || strings.Contains(string(b), "web-2") {
			t.Errorf("node %d config:\n%s", i, b)
		}
	}
	// A name where there was none: the key is added.
	must(t, c.RenameNode(3, "three"))
	if got, err := c.CmapGet(ctx, 1, "nodelist.node.2.name"); err != nil || got != "three" || c.Name(3) != "three" {
		t.Errorf("cmap name of node 3 %q, %v", got, err)
	}
	st = status(t, c, 3)
	names = map[uint32]string{}
	for _, m := range st.Table {
		names[m.NodeID] = m.Name
	}
	if v3 && (names[2] != "renamed-2" || names[3] != "three") {
		t.Errorf("names after rename %v", names)
	}
	if err := c.RenameNode(2, "two words"); err == nil {
		t.Error("a name with a space was accepted")
	}
	if err := c.RenameNode(4, "four"); err == nil {
		t.Error("RenameNode of node 4 of 3 succeeded")
	}
	if _, err := c.CmapGet(ctx, 1, "no.such.key"); err == nil || !strings.Contains(err.Error(), "CS_ERR_NOT_EXIST") {
		t.Errorf("missing key: %v", err)
	}
	// A stopped node gets the name from its file when it comes back.
	must(t, c.Kill(1))
	must(t, c.RenameNode(1, "first"))
	must(t, c.Start(1))
	pids.add(c)
	if got, err := c.CmapGet(ctx, 1, "nodelist.node.0.name"); err != nil || got != "first" {
		t.Errorf("restarted node 1: cmap name %q, %v", got, err)
	}
}

// testNoProvider checks a cluster without quorum provider: the harness
// still waits for members (through cmap), while corosync-quorumtool -s
// fails and -l lists nobody.
func testNoProvider(t *testing.T, pids *pidLog) {
	c := Start(t, 2, NoQuorumProvider())
	pids.add(c)
	ctx := context.Background()
	conf, err := os.ReadFile(c.ConfPath(1))
	must(t, err)
	if strings.Contains(string(conf), "quorum {") {
		t.Errorf("config has a quorum section:\n%s", conf)
	}
	_, err = c.QuorumtoolStatus(ctx, 1)
	if err == nil || !strings.Contains(err.Error(), "Unable to start votequorum status tracking: CS_ERR_BAD_HANDLE") {
		t.Errorf("corosync-quorumtool -s without provider: %v", err)
	}
	st, err := c.QuorumtoolList(ctx, 1)
	if err != nil || len(st.Table) != 0 || st.QdeviceColumn {
		t.Errorf("corosync-quorumtool -l without provider: %+v, %v", st, err)
	}
	ids, err := c.CmapMembers(ctx, 2)
	if err != nil || !slices.Equal(ids, []uint32{1, 2}) {
		t.Errorf("cmap members %v, %v", ids, err)
	}
	if _, err := c.CmapGet(ctx, 1, "quorum.provider"); err == nil {
		t.Error("quorum.provider is set")
	}
	must(t, c.Kill(2))
	waitMembers(t, c, 1, 1)
	must(t, c.Start(2))
	pids.add(c)
	waitMembers(t, c, 2, 1, 2)
}

func TestVotequorumOptions(t *testing.T) {
	for name, o := range map[string]Option{
		"atb words":  AutoTieBreaker("lowest highest"),
		"atb zero":   AutoTieBreaker("0"),
		"atb junk":   AutoTieBreaker("first"),
		"lms neg":    LastManStanding(-time.Second),
		"lms tiny":   LastManStanding(time.Microsecond),
		"name space": NodeName(1, "a b"),
		"name brace": NodeName(1, "a{"),
		"name high":  NodeName(4, "four"),
	} {
		cfg := newConfig([]Option{o})
		if err := cfg.check(3); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	cfg := newConfig([]Option{AutoTieBreaker(" 3  1 "), NodeName(2, "fd00::2"), LastManStanding(0)})
	if err := cfg.check(3); err != nil || cfg.atbNode != "3 1" || cfg.names[2] != "fd00::2" || !cfg.lms {
		t.Errorf("good options: %v, %+v", err, cfg)
	}
	if _, err := New(context.Background(), 2, NodeName(3, "x")); err == nil || !strings.Contains(err.Error(), "NodeName for node 3 of 2") {
		if Available() == nil {
			t.Errorf("New with NodeName(3) on 2 nodes: %v", err)
		}
	}
}

func TestSetNodeName(t *testing.T) {
	c := fakeCluster(Version{3, 1, 7}, 3, NodeName(3, ""))
	text := c.configText(c.nodes[0])
	got, err := setNodeName(text, 2, "b")
	if err != nil || !strings.Contains(got, "\t\tname: node1\n\t\tnodeid: 1\n") || !strings.Contains(got, "\t\tname: b\n\t\tnodeid: 2\n") ||
		strings.Contains(got, "node2") || len(got) != len(text)-len("node2")+len("b") {
		t.Errorf("rename node 2: %v\n%s", err, got)
	}
	got, err = setNodeName(text, 3, "c")
	if err != nil || !strings.Contains(got, "\t}\n\tnode {\n\t\tname: c\n\t\tnodeid: 3\n\t\tring0_addr:") {
		t.Errorf("name for node 3: %v\n%s", err, got)
	}
	if _, err := setNodeName(text, 4, "d"); err == nil {
		t.Error("node 4 renamed")
	}
	// Only the exact nodeid line: 1 is not 10.
	if got, _ := setNodeName("\tnode {\n\t\tnodeid: 10\n\t}\n\tnode {\n\t\tnodeid: 1\n\t}\n", 1, "x"); got !=
		"\tnode {\n\t\tnodeid: 10\n\t}\n\tnode {\n\t\tname: x\n\t\tnodeid: 1\n\t}\n" {
		t.Errorf("nodeid 1 among 10: %q", got)
	}
}

func TestConfigTextVotequorum(t *testing.T) {
	for _, v := range []Version{{2, 4, 6}, {3, 1, 7}} {
		c := fakeCluster(v, 3, WaitForAll(), LastManStanding(1500*time.Millisecond), AutoTieBreaker("3 1"), AllowDownscale(),
			NodeName(2, "web-2"), NodeName(3, ""), ExpectedVotes(5),
			Qdevice(QdeviceOptions{Algorithm: "lms", Votes: 2, TieBreaker: "highest", SyncTimeout: 4 * time.Second}))
		got := c.configText(c.nodes[0])
		want := "quorum {\n\tprovider: corosync_votequorum\n\texpected_votes: 5\n\twait_for_all: 1\n" +
			"\tlast_man_standing: 1\n\tlast_man_standing_window: 1500\n\tauto_tie_breaker: 1\n\tauto_tie_breaker_node: 3 1\n" +
			"\tallow_downscale: 1\n\tdevice {\n\t\tmodel: net\n\t\tvotes: 2\n\t\ttimeout: 2000\n\t\tsync_timeout: 4000\n" +
			"\t\tnet {\n\t\t\thost: 10.213.0.254\n\t\t\talgorithm: lms\n\t\t\ttie_breaker: highest\n\t\t\ttls: on\n\t\t}\n\t}\n}\n"
		if !strings.Contains(got, want) {
			t.Errorf("%s: quorum section, want\n%s\nin\n%s", v, want, got)
		}
		for _, w := range []string{"\t\tname: node1\n\t\tnodeid: 1\n", "\t\tname: web-2\n\t\tnodeid: 2\n", "\t}\n\tnode {\n\t\tnodeid: 3\n"} {
			if !strings.Contains(got, w) {
				t.Errorf("%s: no %q in\n%s", v, w, got)
			}
		}
		if strings.Contains(got, "ip_version") {
			t.Errorf("%s: ip_version without IPv6", v)
		}
	}
	// Defaults: the sections as before; no quorum section without
	// provider; IPv6 addresses.
	c := fakeCluster(Version{3, 1, 7}, 2, Qdevice(QdeviceOptions{}))
	if got := c.configText(c.nodes[1]); !strings.Contains(got, "\tdevice {\n\t\tmodel: net\n\t\ttimeout: 2000\n\t\tsync_timeout: 3000\n\t\tnet {\n\t\t\thost: 10.213.0.254\n\t\t\talgorithm: ffsplit\n\t\t\ttls: on\n") {
		t.Errorf("default device:\n%s", got)
	}
	c = fakeCluster(Version{3, 1, 7}, 2, NoQuorumProvider(), IPv6())
	if got := c.configText(c.nodes[1]); strings.Contains(got, "quorum {") || !strings.Contains(got, "\tip_version: ipv6\n") {
		t.Errorf("no provider, IPv6:\n%s", got)
	}
	if a := c.cfg.hostAddr(10); a != "fd00:213::a" {
		t.Errorf("IPv6 address of 10: %s", a)
	}
	c = fakeCluster(Version{3, 1, 7}, 2, NoQuorumProvider(), TwoNode())
	if got := c.configText(c.nodes[1]); !strings.Contains(got, "quorum {\n\ttwo_node: 1\n}\n") {
		t.Errorf("no provider, two_node:\n%s", got)
	}
}
