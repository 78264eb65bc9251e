//go:build linux

package main

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/corosync-go/quorum/internal/testcluster"
)

// TestServeRealCorosync runs quorumwatch serve as a process in node 1's
// network namespace of a real 3-node corosync cluster (the default backend:
// native, or libquorum in a libquorum build) and checks its metrics against
// corosync-quorumtool -s at the same moment, as nodes leave and return;
// then that with node 1's corosync frozen (SIGSTOP) and stopped, every
// endpoint answers at once and says the state is unknown. About 40 s; it
// runs where TestRealCorosync does.
func TestServeRealCorosync(t *testing.T) {
	if !libquorumBuilt && os.Getenv(testcluster.RequireEnv) != "1" {
		t.Skipf("a real-cluster test of about 40 s: run it with -tags libquorum or %s=1", testcluster.RequireEnv)
	}
	c := testcluster.Start(t, 3)
	// The server listens on node 1's loopback; its client dials from
	// inside node 1's namespace.
	ns := startNodeServe(t, c, 1, "--corosync.refresh-interval", "1s", "--compat.ha-cluster-exporter")
	s := &served{t: t, base: "http://" + ns.addr, client: ns.client, ended: true}
	defer func() {
		if t.Failed() {
			t.Logf("quorumwatch serve's log:\n%s", ns.log.String())
		}
	}()
	ev := s.events()

	// compare checks the metrics against corosync-quorumtool -s, run just
	// before and just after the scrape (again if the ring moved between).
	compare := func(what string) {
		t.Helper()
		for try := 0; ; try++ {
			before, err := c.Quorumtool(1)
			if err != nil {
				t.Fatal(err)
			}
			fams := s.metrics()
			after, err := c.Quorumtool(1)
			if err != nil {
				t.Fatal(err)
			}
			if before.Ring != after.Ring && try < 5 {
				continue
			}
			compareQuorumtool(t, what, fams, after)
			return
		}
	}

	ev.waitFor("the first state", 30*time.Second, settled(1, 2, 3))
	compare("3 nodes")
	if code, _ := s.get("/healthz"); code != 200 {
		t.Errorf("/healthz with 3 nodes: %d", code)
	}

	if err := c.Kill(3); err != nil {
		t.Fatal(err)
	}
	ev.waitFor("node 3 gone", 30*time.Second, settled(1, 2))
	compare("node 3 gone")

	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	p := ev.waitFor("node 2 gone", 30*time.Second, settled(1))
	if p.Status != "inquorate" {
		t.Errorf("node 1 alone: %s", p.Status)
	}
	compare("node 1 alone")
	if code, body := s.get("/healthz"); code != 503 || !regexp.MustCompile(`"status":"inquorate"`).MatchString(body) {
		t.Errorf("/healthz alone: %d %s", code, body)
	}

	if err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	ev.waitFor("node 2 back", 30*time.Second, settled(1, 2))
	compare("node 2 back")

	// Frozen: answers at once all along (get fails the test otherwise);
	// once the periodic re-read has gone unanswered for the engine's 5 s,
	// unknown.
	if err := c.Freeze(1); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	s.get("/healthz")
	s.metrics()
	ev.waitFor("the frozen corosync noticed", 15*time.Second, func(p pageJSON) bool { return p.Status == "unknown" })
	t.Logf("frozen corosync reported unknown after %v", time.Since(frozen).Round(time.Millisecond))
	if code, _ := s.get("/healthz"); code != 503 {
		t.Errorf("/healthz while frozen: %d", code)
	}
	checkUnknownMetrics(t, s.metrics(), true)
	if err := c.Thaw(1); err != nil {
		t.Fatal(err)
	}
	ev.waitFor("node 1 thawed", 60*time.Second, settled(1, 2))
	compare("after the thaw")

	// Stopped: the connection is lost, and said at once.
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	ev.waitFor("corosync stopped", 10*time.Second, func(p pageJSON) bool { return p.Status == "unknown" && !p.Picture.Connected })
	if code, _ := s.get("/healthz"); code != 503 {
		t.Errorf("/healthz with corosync stopped: %d", code)
	}
	checkUnknownMetrics(t, s.metrics(), false)
	if v, _ := metricValue(s.metrics(), "corosync_quorum_disconnections_total"); v != 1 {
		t.Errorf("disconnections_total %v, want 1", v)
	}
	if err := c.Start(1); err != nil {
		t.Fatal(err)
	}
	ev.waitFor("corosync back", 60*time.Second, settled(1, 2))
	compare("corosync restarted")

	ns.stop(15 * time.Second)
}

// quorumtoolFlags maps corosync-quorumtool's flag words to the flag label.
var quorumtoolFlags = map[string]string{"2Node": "two_node", "Quorate": "quorate", "WaitForAll": "wait_for_all",
	"LastManStanding": "last_man_standing", "AutoTieBreaker": "auto_tie_breaker", "AllowDownscale": "allow_downscale",
	"Qdevice": "qdevice"}

// compareQuorumtool checks the metrics, ours and ha_cluster_exporter's,
// against what corosync-quorumtool -s printed.
func compareQuorumtool(t *testing.T, what string, fams map[string]*dto.MetricFamily, st testcluster.Status) {
	t.Helper()
	want := func(v float64, name string, labels ...string) {
		t.Helper()
		got, ok := metricValue(fams, name, labels...)
		if !ok || got != v {
			t.Errorf("%s: %s%v = %v (present %v), corosync-quorumtool says %v", what, name, labels, got, ok, v)
		}
	}
	want(1, "corosync_quorum_up")
	want(0, "corosync_quorum_syncing")
	want(b2f(st.Quorate), "corosync_quorum_quorate")
	want(b2f(st.Quorate), "ha_cluster_corosync_quorate")
	want(float64(st.NodeID), "corosync_quorum_local_node_id")
	want(float64(st.Ring.Seq), "corosync_quorum_ring_sequence")
	want(float64(st.Ring.NodeID), "corosync_quorum_ring_node_id")
	want(float64(st.Nodes), "corosync_quorum_members")
	for _, v := range []struct {
		val      uint32
		own, typ string
	}{{st.ExpectedVotes, "expected_votes", "expected_votes"}, {st.HighestExpected, "highest_expected_votes", "highest_expected"},
		{st.TotalVotes, "total_votes", "total_votes"}, {st.Quorum, "threshold_votes", "quorum"}} {
		want(float64(v.val), "corosync_quorum_"+v.own)
		want(float64(v.val), "ha_cluster_corosync_quorum_votes", "type", v.typ)
	}
	for word, label := range quorumtoolFlags {
		want(b2f(st.HasFlag(word)), "corosync_quorum_flag", "flag", label)
	}
	if n := len(fams["ha_cluster_corosync_member_votes"].GetMetric()); n != len(st.Table) {
		t.Errorf("%s: %d ha_cluster_corosync_member_votes series, corosync-quorumtool lists %d members", what, n, len(st.Table))
	}
	for _, m := range st.Table {
		id := strconv.FormatUint(uint64(m.NodeID), 10)
		want(float64(m.Votes), "corosync_quorum_node_votes", "node_id", id, "name", m.Name)
		want(1, "corosync_quorum_node_member", "node_id", id, "name", m.Name)
		want(float64(m.Votes), "ha_cluster_corosync_member_votes", "node_id", id, "node", m.Name, "local", strconv.FormatBool(m.Local))
	}
}
