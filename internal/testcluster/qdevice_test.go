//go:build linux

package testcluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// qdevicePids adds the quorum device processes of c to the log, so that
// checkNoLeftovers checks them too.
func (p *pidLog) addQdevice(c *Cluster) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pid := c.QnetdPid(); pid != 0 {
		p.pids = append(p.pids, pid)
	}
	for i := 1; i <= c.N(); i++ {
		if pid := c.QdevicePid(i); pid != 0 {
			p.pids = append(p.pids, pid)
		}
	}
}

// requireQdevice skips (or fails under QUORUM_REQUIRE_CLUSTER=1) like Start
// does with the Qdevice option.
func requireQdevice(t *testing.T) {
	t.Helper()
	if err := QdeviceAvailable(); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestVotequorumHarness runs the tests of the quorum device, the
// votequorum options and the admin actions in parallel inside a group,
// then checks that nothing of this process is left.
func TestVotequorumHarness(t *testing.T) {
	requireCluster(t)
	var pids pidLog
	t.Run("group", func(t *testing.T) {
		t.Run("QdeviceThreeNodes", func(t *testing.T) { t.Parallel(); requireQdevice(t); testQdeviceThreeNodes(t, &pids) })
		t.Run("QdeviceTwoNodesLMS", func(t *testing.T) { t.Parallel(); requireQdevice(t); testQdeviceTwoNodesLMS(t, &pids) })
		t.Run("Features", func(t *testing.T) { t.Parallel(); testFeatures(t, &pids) })
		t.Run("NamesVotesRename", func(t *testing.T) { t.Parallel(); testNamesVotesRename(t, &pids) })
		t.Run("NoProvider", func(t *testing.T) { t.Parallel(); testNoProvider(t, &pids) })
	})
	checkNoLeftovers(t, pids.list())
}

// qdeviceRow returns a condition on the qdevice row of a view.
func qdeviceRow(voting bool) func(Status) bool {
	return func(s Status) bool { return s.Qdevice != nil && s.Qdevice.Voting == voting }
}

// testQdeviceThreeNodes checks the quorum device's life cycle on three
// nodes (ffsplit, 1 vote) as corosync-quorumtool shows it.
func testQdeviceThreeNodes(t *testing.T, pids *pidLog) {
	start := time.Now()
	c := Start(t, 3, Qdevice(QdeviceOptions{Votes: 1}))
	t.Logf("3-node cluster with a voting qdevice in %v", time.Since(start).Round(10*time.Millisecond))
	pids.add(c)
	pids.addQdevice(c)
	ctx := context.Background()

	st := status(t, c, 1)
	if !st.Quorate || st.ExpectedVotes != 4 || st.TotalVotes != 4 || st.Quorum != 3 || !st.HasFlag("Qdevice") ||
		!st.QdeviceColumn || st.Qdevice == nil || *st.Qdevice != (QdeviceRow{Votes: 1, ConfiguredVotes: 1, Voting: true, Name: "Qdevice"}) {
		t.Fatalf("node 1 view: %+v", st)
	}
	for _, m := range st.Table {
		if m.Qdevice != (QdeviceFlags{Registered: true, Alive: true, CastVote: true}) || m.Qdevice.String() != "A,V,NMW" {
			t.Errorf("node %d: qdevice %v, want A,V,NMW", m.NodeID, m.Qdevice)
		}
	}
	if s, err := c.QdeviceState(ctx, 2); err != nil || s != "Connected" {
		t.Errorf("node 2 qdevice state %q, %v", s, err)
	}
	out, err := c.QnetdTool(ctx, "-l")
	if err != nil || !strings.Contains(out, `Cluster "`+c.prefix+`"`) || strings.Count(out, "Node ID ") != 3 {
		t.Errorf("corosync-qnetd-tool -l: %v\n%s", err, out)
	}
	// Inside its own namespace on the bridge, with the certificates made
	// for the cluster.
	if a := c.QnetdAddr(); a != Subnet+".254" || !strings.Contains(out, "::ffff:"+Subnet+".1") {
		t.Errorf("qnetd at %s; clients:\n%s", a, out)
	}
	if out, err := c.QdeviceTool(ctx, 1, "-s", "-v"); err != nil || !strings.Contains(out, "TLS active:\t\tYes (client certificate sent)") {
		t.Errorf("corosync-qdevice-tool -s -v: %v\n%s", err, out)
	}
	if err := c.StartQnetd(); err == nil {
		t.Error("StartQnetd of a running qnetd succeeded")
	}
	if err := c.StartQdevice(1); err == nil {
		t.Error("StartQdevice of a running qdevice succeeded")
	}

	if !t.Run("QnetdLost", func(t *testing.T) {
		// Killed, its connections close and every qdevice stops casting
		// its vote at once: the device's row shows 0 votes "(votes 1)".
		start := time.Now()
		must(t, c.KillQnetd())
		if c.QnetdPid() != 0 {
			t.Fatal("qnetd still running after KillQnetd")
		}
		must(t, c.WaitStatus(ctx, 1, qdeviceRow(false), "the qdevice not voting"))
		t.Logf("loss of qnetd seen after %v", time.Since(start).Round(10*time.Millisecond))
		st := status(t, c, 1)
		if !st.Quorate || st.TotalVotes != 3 || *st.Qdevice != (QdeviceRow{Votes: 0, ConfiguredVotes: 1, Voting: false, Name: "Qdevice"}) {
			t.Fatalf("without qnetd: %+v", st)
		}
		if m, _ := st.Member(1); m.Qdevice.String() != "A,NV,NMW" {
			t.Errorf("node 1 without qnetd: %v", m.Qdevice)
		}
		start = time.Now()
		must(t, c.StartQnetd())
		pids.addQdevice(c)
		for i := 1; i <= 3; i++ {
			must(t, c.WaitStatus(ctx, i, qdeviceVoting, "every qdevice voting again"))
		}
		t.Logf("qnetd back and voting after %v", time.Since(start).Round(10*time.Millisecond))

		// Cut off, qnetd keeps its connections open and the qdevices
		// notice only when their heartbeats go unanswered.
		start = time.Now()
		must(t, c.CutQnetd())
		must(t, c.WaitStatus(ctx, 1, qdeviceRow(false), "the qdevice not voting"))
		t.Logf("cut qnetd seen after %v", time.Since(start).Round(10*time.Millisecond))
		must(t, c.HealQnetd())
		must(t, c.WaitStatus(ctx, 1, qdeviceVoting, "every qdevice voting again"))

		must(t, c.StopQnetd())
		must(t, c.WaitStatus(ctx, 1, qdeviceRow(false), "the qdevice not voting"))
		if err := c.StopQnetd(); err == nil {
			t.Error("StopQnetd of a stopped qnetd succeeded")
		}
		must(t, c.StartQnetd())
		pids.addQdevice(c)
		must(t, c.WaitStatus(ctx, 1, qdeviceVoting, "every qdevice voting again"))
	}) {
		return
	}

	if !t.Run("QdeviceStopKill", func(t *testing.T) {
		// A stopped qdevice unregisters: NR, and node 3's own flags lose
		// Qdevice; a killed one stays registered and goes NA,NV once its
		// timeout passes without a poll.
		pid := c.QdevicePid(3)
		must(t, c.StopQdevice(3))
		if c.QdevicePid(3) != 0 || !gone(pid) {
			t.Fatal("qdevice of node 3 still running")
		}
		if err := c.StopQdevice(3); err == nil {
			t.Error("StopQdevice of a stopped qdevice succeeded")
		}
		must(t, c.WaitStatus(ctx, 1, func(s Status) bool {
			m, ok := s.Member(3)
			return ok && !m.Qdevice.Registered
		}, "node 3's qdevice NR"))
		if st := status(t, c, 3); st.HasFlag("Qdevice") || !st.QdeviceColumn {
			t.Errorf("node 3 without qdevice: %+v", st)
		}
		start := time.Now()
		pid = c.QdevicePid(2)
		must(t, c.KillQdevice(2))
		if !gone(pid) || len(groupPids(pid)) > 0 {
			t.Fatalf("qdevice of node 2 or its heuristics worker still running: %v", groupPids(pid))
		}
		must(t, c.WaitStatus(ctx, 1, func(s Status) bool {
			m, ok := s.Member(2)
			return ok && m.Qdevice == QdeviceFlags{Registered: true}
		}, "node 2's qdevice NA,NV,NMW"))
		t.Logf("killed qdevice not alive after %v", time.Since(start).Round(10*time.Millisecond))
		// Voting is per node: the device's row on node 1, whose qdevice
		// still votes, shows its vote; on node 2 it does not.
		if st := status(t, c, 1); st.Qdevice == nil || !st.Qdevice.Voting {
			t.Errorf("node 1's view: %+v", st)
		}
		must(t, c.WaitStatus(ctx, 2, qdeviceRow(false), "node 2's qdevice not voting"))
	}) {
		return
	}

	if !t.Run("KillStartNode", func(t *testing.T) {
		// Kill takes the node's qdevice down first; Start brings it back,
		// but not those stopped on purpose.
		pid, qpid := c.Pid(1), c.QdevicePid(1)
		must(t, c.Kill(1))
		if !gone(pid) || !gone(qpid) || len(groupPids(qpid)) > 0 {
			t.Fatalf("corosync %d or qdevice %d of node 1 still running", pid, qpid)
		}
		waitMembers(t, c, 2, 2, 3)
		must(t, c.Start(1))
		pids.add(c)
		pids.addQdevice(c)
		if c.QdevicePid(1) == 0 || c.QdevicePid(2) != 0 || c.QdevicePid(3) != 0 {
			t.Fatalf("qdevice pids after Start(1): %d %d %d", c.QdevicePid(1), c.QdevicePid(2), c.QdevicePid(3))
		}
		waitMembers(t, c, 1, 1, 2, 3)
		must(t, c.StartQdevice(2))
		must(t, c.StartQdevice(3))
		pids.addQdevice(c)
		for i := 1; i <= 3; i++ {
			must(t, c.WaitStatus(ctx, i, qdeviceVoting, "every qdevice voting again"))
		}
		// Killed without its qdevice running, Start(3) leaves it off.
		must(t, c.StopQdevice(3))
		must(t, c.Kill(3))
		must(t, c.Start(3))
		pids.add(c)
		if c.QdevicePid(3) != 0 {
			t.Error("Start(3) started a qdevice stopped on purpose")
		}
	}) {
		return
	}

	t.Run("BadIndex", func(t *testing.T) {
		for _, i := range []int{0, 4} {
			if c.StartQdevice(i) == nil || c.StopQdevice(i) == nil || c.KillQdevice(i) == nil || c.QdevicePid(i) != 0 ||
				c.QdeviceLogPath(i) != "" {
				t.Errorf("node %d: qdevice control succeeded", i)
			}
			if _, err := c.QdeviceTool(ctx, i, "-s"); err == nil {
				t.Errorf("node %d: QdeviceTool succeeded", i)
			}
		}
	})
}

// testQdeviceTwoNodesLMS checks a quorum device on a two-node cluster over
// IPv6 with the lms algorithm: when the nodes are split, the device gives
// its vote to the lowest node id's side only.
func testQdeviceTwoNodesLMS(t *testing.T, pids *pidLog) {
	c := Start(t, 2, IPv6(), Qdevice(QdeviceOptions{Algorithm: "lms", TieBreaker: "lowest", Timeout: 1500 * time.Millisecond}))
	pids.add(c)
	pids.addQdevice(c)
	ctx := context.Background()
	if !strings.HasPrefix(c.Addr(1), Subnet6) || !strings.HasPrefix(c.QnetdAddr(), Subnet6) {
		t.Fatalf("addresses %s, qnetd %s: want %s...", c.Addr(1), c.QnetdAddr(), Subnet6)
	}
	conf, err := os.ReadFile(c.ConfPath(1))
	must(t, err)
	for _, w := range []string{"\tip_version: ipv6\n", "\t\tring0_addr: " + Subnet6 + "1\n", "\t\t\thost: " + Subnet6 + "fe\n",
		"\t\t\talgorithm: lms\n", "\t\ttimeout: 1500\n"} {
		if !strings.Contains(string(conf), w) {
			t.Errorf("config lacks %q", w)
		}
	}
	// Votes left to votequorum: one fewer than the nodes.
	st := status(t, c, 1)
	if !st.Quorate || st.ExpectedVotes != 3 || st.TotalVotes != 3 || st.Quorum != 2 || st.Qdevice == nil || st.Qdevice.Votes != 1 {
		t.Fatalf("node 1 view: %+v", st)
	}
	if out, err := c.QnetdTool(ctx, "-l"); err != nil || !strings.Contains(out, Subnet6+"1") {
		t.Errorf("qnetd clients: %v\n%s", err, out)
	}
	// -i prints addresses: over IPv6, as getnameinfo formats them.
	st, err = c.QuorumtoolStatus(ctx, 2, "-i")
	must(t, err)
	if m, _ := st.Member(2); !strings.HasPrefix(m.Name, Subnet6+"2") || !m.Local {
		t.Errorf("node 2 by address: %+v", st.Table)
	}

	must(t, c.Cut(2))
	waitMembers(t, c, 1, 1)
	waitMembers(t, c, 2, 2)
	must(t, c.WaitStatus(ctx, 1, func(s Status) bool { return s.Quorate && s.TotalVotes == 2 }, "node 1 quorate with the device's vote"))
	must(t, c.WaitStatus(ctx, 2, func(s Status) bool { return !s.Quorate && s.Blocked }, "node 2 not quorate"))
	if st := status(t, c, 2); st.TotalVotes != 1 || st.Qdevice == nil || st.Qdevice.Voting {
		t.Errorf("node 2 cut off: %+v", st)
	}
	must(t, c.Heal(2))
	waitMembers(t, c, 2, 1, 2)
	must(t, c.WaitStatus(ctx, 2, qdeviceVoting, "every qdevice voting again"))
}

// TestQdeviceErrors checks the failures of the quorum device calls that
// need no cluster.
func TestQdeviceErrors(t *testing.T) {
	c := fakeCluster(Version{3, 1, 7}, 2)
	if c.QnetdAddr() != "" || c.QnetdPid() != 0 || c.QnetdLogPath() != "" || c.QnetdNetns() != "" {
		t.Error("accessors of a cluster without qdevice gave a value")
	}
	for name, err := range map[string]error{
		"StartQnetd": c.StartQnetd(), "StopQnetd": c.StopQnetd(), "KillQnetd": c.KillQnetd(),
		"CutQnetd": c.CutQnetd(), "StartQdevice": c.StartQdevice(1), "StopQdevice": c.StopQdevice(1),
	} {
		if err == nil || (!strings.Contains(err.Error(), "no quorum device") && !strings.Contains(err.Error(), "not running")) {
			t.Errorf("%s without Qdevice: %v", name, err)
		}
	}
	if _, err := c.QnetdTool(context.Background(), "-s"); err == nil {
		t.Error("QnetdTool without Qdevice succeeded")
	}
	for _, o := range []QdeviceOptions{
		{Algorithm: "2nodelms"}, {TieBreaker: "1 2"}, {TieBreaker: "0"}, {Timeout: -time.Second}, {SyncTimeout: time.Microsecond},
	} {
		if cfg := newConfig([]Option{Qdevice(o)}); cfg.check(2) == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	_, err := findQdeviceTools(func(name string) (string, error) {
		if filepath.Base(name) == "corosync-qnetd" {
			return "", errors.New("not found")
		}
		return name, nil
	})
	if err == nil || !strings.Contains(err.Error(), "apt-get install corosync-qnetd") {
		t.Errorf("missing qnetd: %v", err)
	}
}

// TestStopProcGroup checks that stopping a group leader waits for the rest
// of its group, and falls back to SIGKILL when SIGTERM is ignored.
func TestStopProcGroup(t *testing.T) {
	requireCluster(t)
	c := &Cluster{spawn: make(chan spawnReq)}
	go c.spawner()
	defer close(c.spawn)
	dir := t.TempDir()
	// A leader that ignores SIGTERM, with a child that outlives it unless
	// the whole group is killed.
	cmd := exec.Command("/bin/sh", "-c", `trap "" TERM; sleep 300 & echo $! > child; wait`)
	cmd.Dir = dir
	p, err := c.spawnDaemon(cmd, filepath.Join(dir, "log"), "test daemon")
	must(t, err)
	var child int
	deadline := time.Now().Add(5 * time.Second)
	for child == 0 && time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(dir, "child"))
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(10 * time.Millisecond)
	}
	if child == 0 {
		t.Fatal("no child pid")
	}
	err = stopProcWithin(p, syscall.SIGTERM, "test daemon", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not exit on terminated within 300ms") {
		t.Errorf("stopProc: %v, want the SIGTERM failure reported", err)
	}
	if !gone(p.pid) || !gone(child) || len(groupPids(p.pid)) > 0 {
		t.Fatalf("group of %d left: %v", p.pid, groupPids(p.pid))
	}
	if p.err == nil || p.err.Error() != "signal: killed" {
		t.Errorf("leader's end: %v, want SIGKILL", p.err)
	}
}
