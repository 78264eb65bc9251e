package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/corosync-go/quorum"
	"github.com/corosync-go/quorum/internal/syncbuf"
)

// served is quorumwatch serve running in this process on 127.0.0.1:0.
type served struct {
	t      *testing.T
	base   string // scheme://host:port
	client *http.Client
	stderr *syncbuf.Buffer
	cancel context.CancelFunc
	done   chan int
	code   int
	ended  bool
	user   string // basic auth for get and events, when set
	pass   string
}

// startServe runs `quorumwatch serve --backend sim` on c (node 1 unless
// args say otherwise) on a free loopback port, and stops it at the end of
// the test, which fails unless it exits 0.
func startServe(t *testing.T, c *quorum.SimCluster, args ...string) *served {
	t.Helper()
	return startServeScheme(t, c, "http", &http.Client{Transport: &http.Transport{}}, args...)
}

func startServeScheme(t *testing.T, c *quorum.SimCluster, scheme string, client *http.Client, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan []net.Addr, 1)
	s := &served{t: t, client: client, stderr: &syncbuf.Buffer{}, cancel: cancel, done: make(chan int, 1)}
	e := env{sim: c, listening: func(a []net.Addr) { addrs <- a }}
	full := append([]string{"serve", "--backend", "sim", "--web.listen-address", "127.0.0.1:0"}, args...)
	var out syncbuf.Buffer
	go func() { s.done <- runEnv(ctx, full, &out, s.stderr, e) }()
	select {
	case a := <-addrs:
		s.base = scheme + "://" + a[0].String()
	case code := <-s.done:
		cancel()
		t.Fatalf("serve exited %d before listening; stderr:\n%s", code, s.stderr.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("serve did not listen within 10s; stderr:\n%s", s.stderr.String())
	}
	t.Cleanup(func() {
		if code := s.stop(); code != 0 {
			t.Errorf("serve exited %d, want 0; stderr:\n%s", code, s.stderr.String())
		}
	})
	return s
}

// stop ends the server as SIGTERM would and returns its exit code.
func (s *served) stop() int {
	if !s.ended {
		s.cancel()
		select {
		case s.code = <-s.done:
		case <-time.After(10 * time.Second):
			s.t.Fatalf("serve still running 10s after its context ended; stderr:\n%s", s.stderr.String())
		}
		s.ended = true
		s.client.CloseIdleConnections()
	}
	return s.code
}

// get fetches path and returns the status code and body; it fails the test
// if the answer takes more than a second (no request may wait on corosync).
func (s *served) get(path string) (int, string) {
	s.t.Helper()
	start := time.Now()
	resp, err := s.do(path)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("GET %s: reading: %v", path, err)
	}
	if d := time.Since(start); d > time.Second {
		s.t.Errorf("GET %s took %v: a request must never wait for corosync", path, d)
	}
	return resp.StatusCode, string(body)
}

func (s *served) do(path string) (*http.Response, error) {
	req, err := http.NewRequest("GET", s.base+path, nil)
	if err != nil {
		return nil, err
	}
	if s.user != "" {
		req.SetBasicAuth(s.user, s.pass)
	}
	return s.client.Do(req)
}

// metrics scrapes the telemetry path.
func (s *served) metrics() map[string]*dto.MetricFamily {
	s.t.Helper()
	code, body := s.get("/metrics")
	if code != http.StatusOK {
		s.t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	return parseMetrics(s.t, body)
}

func parseMetrics(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := parseText(body)
	if err != nil {
		t.Fatalf("parsing the metrics: %v\n%s", err, body)
	}
	return fams
}

// parseText parses Prometheus's text format, as Prometheus would.
func parseText(body string) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(strings.NewReader(body))
}

// metricValue returns the value of the series of name with exactly the
// labels given (name=value pairs), and whether it exists.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		match := true
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

// wantMetric checks one series' value.
func wantMetric(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := metricValue(fams, name, labels...)
	switch {
	case !ok:
		t.Errorf("no series %s%v", name, labels)
	case got != want:
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// wantType checks a family's type.
func wantType(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType) {
	t.Helper()
	if mf, ok := fams[name]; !ok || mf.GetType() != typ {
		t.Errorf("%s: type %v (present %v), want %v", name, mf.GetType(), ok, typ)
	}
}

// stream reads the server's /events.
type stream struct {
	t    *testing.T
	body io.Closer
	msgs chan pageJSON
}

func (s *served) events() *stream {
	s.t.Helper()
	resp, err := s.do("/events")
	if err != nil {
		s.t.Fatalf("GET /events: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		s.t.Fatalf("GET /events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	st := &stream{t: s.t, body: resp.Body, msgs: make(chan pageJSON, 64)}
	go func() {
		defer close(st.msgs)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var event, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if event == "state" {
					var p pageJSON
					if err := json.Unmarshal([]byte(data), &p); err != nil {
						p.Status = "bad JSON: " + err.Error()
					}
					st.msgs <- p
				}
				event, data = "", ""
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	s.t.Cleanup(func() { resp.Body.Close() })
	return st
}

// waitFor reads the stream until a state satisfies ok.
func (st *stream) waitFor(what string, within time.Duration, ok func(pageJSON) bool) pageJSON {
	st.t.Helper()
	limit := time.After(within)
	var last pageJSON
	for {
		select {
		case p, open := <-st.msgs:
			if !open {
				st.t.Fatalf("waiting for %s: the event stream ended; last state %+v", what, last)
			}
			if strings.HasPrefix(p.Status, "bad JSON") {
				st.t.Fatalf("event stream: %s", p.Status)
			}
			last = p
			if ok(p) {
				return p
			}
		case <-limit:
			st.t.Fatalf("waiting for %s: not within %v; last state %+v", what, within, last)
		}
	}
}

func members(p jsonPicture) []uint32 {
	var m []uint32
	for _, n := range p.Nodes {
		if n.State == "member" {
			m = append(m, n.ID)
		}
	}
	return m
}

// settled: the state is known, complete (not syncing) and has these
// members.
func settled(ids ...uint32) func(pageJSON) bool {
	return func(p pageJSON) bool {
		return p.Picture.Connected && !p.Picture.Syncing && p.Picture.Error == "" && slices.Equal(members(p.Picture), ids)
	}
}

// openPicture opens a Client of its own on node 1 of c, to compare the
// server's output with the Picture the engine gives.
func openPicture(t *testing.T, c *quorum.SimCluster) *quorum.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := quorum.Open(ctx, quorum.WithBackend(c.Backend(1)), quorum.WithPicture())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// settledPicture waits until cl's picture is complete and on ring.
func settledPicture(t *testing.T, cl *quorum.Client, ring string) quorum.Picture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, err := cl.SubscribePicture(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var last quorum.Picture
	for p := range ch {
		last = p
		if p.Connected && !p.Syncing && p.Err == nil && p.RingID.String() == ring {
			cancel()
			for range ch {
			}
			return p
		}
	}
	t.Fatalf("the engine's picture did not settle on ring %s: last %+v", ring, last)
	return last
}

// checkAgainstPicture checks every metric of the own namespace against p
// (the engine's picture, read by a Client of the test's own) and the time
// of the server's state against st (what its event stream said last).
func checkAgainstPicture(t *testing.T, fams map[string]*dto.MetricFamily, p quorum.Picture, st pageJSON) {
	t.Helper()
	learnt, err := time.Parse(time.RFC3339Nano, st.Picture.Time)
	if err != nil {
		t.Fatal(err)
	}
	wantMetric(t, fams, float64(learnt.UnixNano())/1e9, "corosync_quorum_last_change_timestamp_seconds")
	if age, ok := metricValue(fams, "corosync_quorum_state_age_seconds"); !ok || age < 0 || age > time.Since(learnt).Seconds() {
		t.Errorf("state_age_seconds %v (present %v), want between 0 and %v", age, ok, time.Since(learnt).Seconds())
	}
	b := func(v bool) float64 { return b2f(v) }
	wantMetric(t, fams, 1, "corosync_quorum_up")
	wantMetric(t, fams, 1, "corosync_quorum_connected")
	wantMetric(t, fams, 0, "corosync_quorum_syncing")
	wantMetric(t, fams, b(p.Quorate), "corosync_quorum_quorate")
	wantMetric(t, fams, 1, "corosync_quorum_provider_configured")
	wantMetric(t, fams, float64(p.NodeID), "corosync_quorum_local_node_id")
	wantMetric(t, fams, float64(p.ExpectedVotes), "corosync_quorum_expected_votes")
	wantMetric(t, fams, float64(p.HighestExpected), "corosync_quorum_highest_expected_votes")
	wantMetric(t, fams, float64(p.TotalVotes), "corosync_quorum_total_votes")
	wantMetric(t, fams, float64(p.Quorum), "corosync_quorum_threshold_votes")
	wantMetric(t, fams, float64(len(p.Members())), "corosync_quorum_members")
	wantMetric(t, fams, float64(p.RingID.Seq), "corosync_quorum_ring_sequence")
	wantMetric(t, fams, float64(p.RingID.NodeID), "corosync_quorum_ring_node_id")
	for _, f := range flagNames {
		wantMetric(t, fams, b(p.Flags&f.f != 0), "corosync_quorum_flag", "flag", f.name)
	}
	wantMetric(t, fams, b(p.Qdevice.Registered), "corosync_quorum_qdevice_registered")
	wantMetric(t, fams, b(p.Qdevice.Alive), "corosync_quorum_qdevice_alive")
	wantMetric(t, fams, b(p.Qdevice.CastVote), "corosync_quorum_qdevice_cast_vote")
	wantMetric(t, fams, b(p.Qdevice.MasterWins), "corosync_quorum_qdevice_master_wins")
	wantMetric(t, fams, float64(p.Qdevice.Votes), "corosync_quorum_qdevice_votes")
	if n := len(fams["corosync_quorum_node_votes"].GetMetric()); n != len(p.Nodes) {
		t.Errorf("%d node_votes series, want one per node (%d)", n, len(p.Nodes))
	}
	for _, n := range p.Nodes {
		id := strconv.Itoa(int(n.ID))
		wantMetric(t, fams, float64(n.Votes), "corosync_quorum_node_votes", "node_id", id, "name", n.Name)
		wantMetric(t, fams, b(n.State == quorum.NodeMember), "corosync_quorum_node_member", "node_id", id, "name", n.Name)
		for _, st := range nodeStates {
			wantMetric(t, fams, b(n.State == st), "corosync_quorum_node_state", "node_id", id, "name", n.Name, "state", st.String())
		}
	}
	for _, name := range []string{"corosync_quorum_up", "corosync_quorum_quorate", "corosync_quorum_ring_sequence", "corosync_quorum_node_votes"} {
		wantType(t, fams, name, dto.MetricType_GAUGE)
	}
	for _, name := range []string{"corosync_quorum_ring_changes_total", "corosync_quorum_membership_changes_total",
		"corosync_quorum_transitions_total", "corosync_quorum_disconnections_total", "corosync_quorum_event_overflows_total"} {
		wantType(t, fams, name, dto.MetricType_COUNTER)
	}
	// The ring is a value, never a label: a label per ring would make a
	// new series at every change.
	for name, mf := range fams {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetName(), "ring") || l.GetValue() == p.RingID.String() {
					t.Errorf("%s has a ring label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

func TestServeMetricsFollowPicture(t *testing.T) {
	c := newSim(t)
	s := startServe(t, c)
	cl := openPicture(t, c)
	ev := s.events()

	first := ev.waitFor("the first state", 5*time.Second, settled(1, 2, 3, 4, 5))
	checkAgainstPicture(t, s.metrics(), settledPicture(t, cl, first.Picture.RingIDText), first)

	// A node leaves: the change comes through the stream, then the metrics
	// agree with the engine's picture of the new ring.
	if err := c.Stop(5); err != nil {
		t.Fatal(err)
	}
	p := ev.waitFor("node 5 gone", 5*time.Second, settled(1, 2, 3, 4))
	fams := s.metrics()
	checkAgainstPicture(t, fams, settledPicture(t, cl, p.Picture.RingIDText), p)
	wantMetric(t, fams, 4, "corosync_quorum_total_votes")
	wantMetric(t, fams, 0, "corosync_quorum_node_member", "node_id", "5", "name", "node5")
	wantMetric(t, fams, 1, "corosync_quorum_node_state", "node_id", "5", "name", "node5", "state", "dead")

	// Votes changed elsewhere, which corosync does not notify: seen after
	// the next notified change (here, node 4 leaving).
	if err := c.SetVotes(2, 3, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(4); err != nil {
		t.Fatal(err)
	}
	p = ev.waitFor("node 4 gone", 5*time.Second, settled(1, 2, 3))
	fams = s.metrics()
	pic := settledPicture(t, cl, p.Picture.RingIDText)
	checkAgainstPicture(t, fams, pic, p)
	wantMetric(t, fams, 2, "corosync_quorum_node_votes", "node_id", "3", "name", "node3")
}

func TestServeRefreshSeesUnnotifiedVotes(t *testing.T) {
	for _, tc := range []struct {
		refresh string
		seen    bool
	}{{"50ms", true}, {"0", false}} {
		t.Run("refresh "+tc.refresh, func(t *testing.T) {
			c := newSim(t)
			s := startServe(t, c, "--corosync.refresh-interval", tc.refresh)
			ev := s.events()
			ev.waitFor("the first state", 5*time.Second, settled(1, 2, 3, 4, 5))
			// Another node takes node 3's vote: expected votes and
			// quorate stay, and corosync notifies nothing.
			if err := c.SetVotes(2, 3, 0); err != nil {
				t.Fatal(err)
			}
			changed := func(p pageJSON) bool { return settled(1, 2, 3, 4, 5)(p) && p.Picture.TotalVotes == 4 }
			if !tc.seen {
				// Seen only at the next notified change.
				if err := c.Stop(5); err != nil {
					t.Fatal(err)
				}
				p := ev.waitFor("node 5 gone", 5*time.Second, settled(1, 2, 3, 4))
				// One entry: the votes were not seen before.
				if p.Picture.TotalVotes != 3 || !strings.Contains(p.Changes[0].Text, "node3(3) votes 1 → 0") ||
					!strings.Contains(p.Changes[0].Text, "node5(5) left") {
					t.Errorf("after the next change: total %d, change %q", p.Picture.TotalVotes, p.Changes[0].Text)
				}
				return
			}
			p := ev.waitFor("node 3's votes", 5*time.Second, changed)
			if p.Changes[0].Text != "node3(3) votes 1 → 0; total votes 5 → 4" {
				t.Errorf("change log entry %q", p.Changes[0].Text)
			}
			wantMetric(t, s.metrics(), 0, "corosync_quorum_node_votes", "node_id", "3", "name", "node3")
		})
	}
}

// eventually retries cond until it holds (the counters are kept by their
// own goroutine, which nothing else observes).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServeCounters(t *testing.T) {
	c := newSim(t)
	s := startServe(t, c)
	ev := s.events()
	ev.waitFor("the first state", 5*time.Second, settled(1, 2, 3, 4, 5))
	counts := func() [6]float64 {
		fams := s.metrics()
		var v [6]float64
		v[0], _ = metricValue(fams, "corosync_quorum_ring_changes_total")
		v[1], _ = metricValue(fams, "corosync_quorum_membership_changes_total")
		v[2], _ = metricValue(fams, "corosync_quorum_transitions_total", "to", "inquorate")
		v[3], _ = metricValue(fams, "corosync_quorum_transitions_total", "to", "quorate")
		v[4], _ = metricValue(fams, "corosync_quorum_disconnections_total")
		v[5], _ = metricValue(fams, "corosync_quorum_event_overflows_total")
		return v
	}
	expect := func(what string, want [6]float64) {
		t.Helper()
		var got [6]float64
		eventually(t, what, func() bool { got = counts(); return got == want })
	}
	expect("at the start", [6]float64{})
	for _, id := range []uint32{5, 4, 3} {
		if err := c.Stop(id); err != nil {
			t.Fatal(err)
		}
	}
	ev.waitFor("nodes 3 to 5 gone", 5*time.Second, settled(1, 2))
	// three new rings, each with a node fewer; quorum lost at the third
	expect("after three nodes left", [6]float64{3, 3, 1, 0, 0, 0})
	if err := c.Start(3); err != nil {
		t.Fatal(err)
	}
	ev.waitFor("node 3 back", 5*time.Second, settled(1, 2, 3))
	expect("after node 3 came back", [6]float64{4, 4, 1, 1, 0, 0})
	// A restart too fast for the others to notice: a new ring, a node in
	// both joined and left, the same members.
	if err := c.Restart(2); err != nil {
		t.Fatal(err)
	}
	expect("after node 2 restarted", [6]float64{5, 5, 1, 1, 0, 0})
	// A ring re-formed with the same members: a ring change only.
	if err := c.Reform(1); err != nil {
		t.Fatal(err)
	}
	expect("after a re-formed ring", [6]float64{6, 5, 1, 1, 0, 0})
	// corosync restarts under the server (membership kept): one
	// disconnection, and the state after it is the same ring.
	if err := c.Disconnect(1); err != nil {
		t.Fatal(err)
	}
	expect("after a disconnection", [6]float64{6, 5, 1, 1, 1, 0})
	ev.waitFor("reconnected", 5*time.Second, settled(1, 2, 3))
}

func TestServeHealth(t *testing.T) {
	type health struct {
		Status          string          `json:"status"`
		Healthy         bool            `json:"healthy"`
		Reason          string          `json:"reason"`
		StateAgeSeconds *float64        `json:"state_age_seconds"`
		Picture         json.RawMessage `json:"picture"`
	}
	check := func(t *testing.T, s *served, code int, status string) health {
		t.Helper()
		got, body := s.get("/healthz")
		var h health
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("/healthz body %q: %v", body, err)
		}
		if got != code || h.Status != status || h.Healthy != (code == 200) {
			t.Errorf("/healthz: %d %+v, want %d and status %s", got, h, code, status)
		}
		var pj map[string]any
		if err := json.Unmarshal(h.Picture, &pj); err != nil || pj["kind"] != "picture" {
			t.Errorf("/healthz picture %s (%v)", h.Picture, err)
		}
		if pj["state"] != status {
			t.Errorf("/healthz picture state %v, want %s", pj["state"], status)
		}
		return h
	}

	t.Run("quorate, then not", func(t *testing.T) {
		c := newSim(t)
		s := startServe(t, c)
		ev := s.events()
		ev.waitFor("the first state", 5*time.Second, settled(1, 2, 3, 4, 5))
		h := check(t, s, 200, "quorate")
		if h.Reason != "" || h.StateAgeSeconds == nil || *h.StateAgeSeconds < 0 {
			t.Errorf("healthy: %+v", h)
		}
		for _, id := range []uint32{5, 4, 3} {
			if err := c.Stop(id); err != nil {
				t.Fatal(err)
			}
		}
		ev.waitFor("quorum lost", 5*time.Second, settled(1, 2))
		h = check(t, s, 503, "inquorate")
		if !strings.Contains(h.Reason, "not quorate") {
			t.Errorf("reason %q", h.Reason)
		}
		fams := s.metrics()
		wantMetric(t, fams, 0, "corosync_quorum_quorate")
		wantMetric(t, fams, 1, "corosync_quorum_up")
	})

	t.Run("corosync stopped", func(t *testing.T) {
		c := newSim(t)
		s := startServe(t, c, "--compat.ha-cluster-exporter")
		ev := s.events()
		ev.waitFor("the first state", 5*time.Second, settled(1, 2, 3, 4, 5))
		if err := c.Stop(1); err != nil {
			t.Fatal(err)
		}
		ev.waitFor("the state unknown", 5*time.Second, func(p pageJSON) bool { return p.Status == "unknown" })
		h := check(t, s, 503, "unknown")
		if !strings.Contains(h.Reason, "CS_ERR_LIBRARY") && !strings.Contains(h.Reason, "connection") {
			t.Errorf("reason %q should say the connection was lost", h.Reason)
		}
		checkUnknownMetrics(t, s.metrics(), false)
		if err := c.Start(1); err != nil {
			t.Fatal(err)
		}
		ev.waitFor("back", 10*time.Second, settled(1, 2, 3, 4, 5))
		check(t, s, 200, "quorate")
	})

	t.Run("corosync frozen", func(t *testing.T) {
		c := newSim(t)
		s := startServe(t, c, "--corosync.refresh-interval", "100ms", "--compat.ha-cluster-exporter")
		ev := s.events()
		ev.waitFor("the first state", 5*time.Second, settled(1, 2, 3, 4, 5))
		if err := c.Freeze(1); err != nil {
			t.Fatal(err)
		}
		defer c.Thaw(1)
		// Every answer comes at once meanwhile (get fails the test
		// otherwise); the periodic re-read goes unanswered, and after
		// the engine's 5 s limit the state is unknown.
		check(t, s, 200, "quorate")
		ev.waitFor("the re-read to fail", 10*time.Second, func(p pageJSON) bool { return p.Status == "unknown" })
		h := check(t, s, 503, "unknown")
		if !strings.Contains(h.Reason, "does not answer") {
			t.Errorf("reason %q", h.Reason)
		}
		checkUnknownMetrics(t, s.metrics(), true)
		_, body := s.get("/api/picture")
		if !strings.Contains(body, `"state":"unknown","quorate":false`) {
			t.Errorf("/api/picture while frozen: %s", body)
		}
		if err := c.Thaw(1); err != nil {
			t.Fatal(err)
		}
		ev.waitFor("answers again", 10*time.Second, settled(1, 2, 3, 4, 5))
		check(t, s, 200, "quorate")
	})

	t.Run("never connected", func(t *testing.T) {
		c := newSim(t)
		if err := c.Stop(1); err != nil {
			t.Fatal(err)
		}
		s := startServe(t, c, "--compat.ha-cluster-exporter")
		h := check(t, s, 503, "unknown")
		if h.StateAgeSeconds != nil {
			t.Errorf("state age %v before any read", *h.StateAgeSeconds)
		}
		fams := s.metrics()
		checkUnknownMetrics(t, fams, false)
		if _, ok := metricValue(fams, "corosync_quorum_state_age_seconds"); ok {
			t.Errorf("state_age_seconds before any read")
		}
		ev := s.events()
		if err := c.Start(1); err != nil {
			t.Fatal(err)
		}
		ev.waitFor("connected", 10*time.Second, settled(1, 2, 3, 4, 5))
		check(t, s, 200, "quorate")
	})
}

// checkUnknownMetrics: up 0, quorate 0, nothing of the last known state,
// and ha_cluster_exporter's corosync metrics absent as when its tools fail.
func checkUnknownMetrics(t *testing.T, fams map[string]*dto.MetricFamily, connected bool) {
	t.Helper()
	wantMetric(t, fams, 0, "corosync_quorum_up")
	wantMetric(t, fams, 0, "corosync_quorum_quorate")
	wantMetric(t, fams, b2f(connected), "corosync_quorum_connected")
	for _, name := range []string{"corosync_quorum_total_votes", "corosync_quorum_node_votes", "corosync_quorum_members",
		"corosync_quorum_flag", "ha_cluster_corosync_quorate", "ha_cluster_corosync_quorum_votes", "ha_cluster_corosync_member_votes"} {
		if _, ok := fams[name]; ok {
			t.Errorf("%s exported while the state is unknown", name)
		}
	}
	wantMetric(t, fams, 0, "ha_cluster_scrape_success", "collector", "corosync")
}

func TestServeHACompat(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		s := startServe(t, newSim(t))
		s.events().waitFor("the first state", 5*time.Second, settled(1, 2, 3, 4, 5))
		for name := range s.metrics() {
			if strings.HasPrefix(name, "ha_cluster_") {
				t.Errorf("%s without --compat.ha-cluster-exporter", name)
			}
		}
	})
	t.Run("names and labels", func(t *testing.T) {
		c := newSim(t)
		if err := c.Stop(3); err != nil {
			t.Fatal(err)
		}
		s := startServe(t, c, "--compat.ha-cluster-exporter", "--node", "2")
		s.events().waitFor("the first state", 5*time.Second, settled(1, 2, 4, 5))
		code, body := s.get("/metrics")
		if code != 200 {
			t.Fatal(code)
		}
		fams := parseMetrics(t, body)
		wantMetric(t, fams, 1, "ha_cluster_corosync_quorate")
		wantMetric(t, fams, 5, "ha_cluster_corosync_quorum_votes", "type", "expected_votes")
		wantMetric(t, fams, 5, "ha_cluster_corosync_quorum_votes", "type", "highest_expected")
		wantMetric(t, fams, 4, "ha_cluster_corosync_quorum_votes", "type", "total_votes")
		wantMetric(t, fams, 3, "ha_cluster_corosync_quorum_votes", "type", "quorum")
		// Members only, as corosync-quorumtool -p lists them; local is
		// the node served (2 here).
		if n := len(fams["ha_cluster_corosync_member_votes"].GetMetric()); n != 4 {
			t.Errorf("%d member_votes series, want the 4 members", n)
		}
		for _, id := range []string{"1", "2", "4", "5"} {
			wantMetric(t, fams, 1, "ha_cluster_corosync_member_votes", "node_id", id, "node", "node"+id, "local", strconv.FormatBool(id == "2"))
		}
		wantMetric(t, fams, 1, "ha_cluster_scrape_success", "collector", "corosync")
		for _, name := range []string{"ha_cluster_corosync_quorate", "ha_cluster_corosync_quorum_votes", "ha_cluster_corosync_member_votes",
			"ha_cluster_scrape_duration_seconds", "ha_cluster_scrape_success"} {
			wantType(t, fams, name, dto.MetricType_GAUGE)
		}
		// The help texts are ha_cluster_exporter's, so that the
		// families merge with theirs in a federation.
		if !strings.Contains(body, "# HELP ha_cluster_corosync_quorate Whether or not the cluster is quorate\n") {
			t.Errorf("help text of ha_cluster_corosync_quorate")
		}
	})
	t.Run("quorum device row", func(t *testing.T) {
		c, err := quorum.NewSimClusterConfig(quorum.SimConfig{
			Nodes: []quorum.SimNode{{ID: 1}, {ID: 2}}, Qdevice: &quorum.SimQdevice{Votes: 1}})
		if err != nil {
			t.Fatal(err)
		}
		// corosync notifies no change of the device's vote that leaves
		// quorate as it was: the periodic re-read sees it.
		s := startServe(t, c, "--compat.ha-cluster-exporter", "--corosync.refresh-interval", "50ms")
		ev := s.events()
		qd := func(alive bool) func(pageJSON) bool {
			return func(p pageJSON) bool {
				return settled(1, 2)(p) && p.Picture.Qdevice != nil && p.Picture.Qdevice.CastVote == alive
			}
		}
		ev.waitFor("the device voting", 5*time.Second, qd(true))
		fams := s.metrics()
		// corosync-quorumtool's last row: node id 0, the device's name,
		// its votes while this node's device casts them.
		wantMetric(t, fams, 1, "ha_cluster_corosync_member_votes", "node_id", "0", "node", "Qdevice", "local", "false")
		wantMetric(t, fams, 3, "ha_cluster_corosync_quorum_votes", "type", "total_votes")
		wantMetric(t, fams, 1, "corosync_quorum_qdevice_registered")
		wantMetric(t, fams, 1, "corosync_quorum_qdevice_cast_vote")
		wantMetric(t, fams, 1, "corosync_quorum_qdevice_votes")
		wantMetric(t, fams, 1, "corosync_quorum_flag", "flag", "qdevice")
		// Without qnetd the device still polls but casts no vote: the
		// tool shows 0 votes (and the real count after the name).
		if err := c.SetQnetd(false); err != nil {
			t.Fatal(err)
		}
		ev.waitFor("the device not voting", 5*time.Second, qd(false))
		fams = s.metrics()
		wantMetric(t, fams, 0, "ha_cluster_corosync_member_votes", "node_id", "0", "node", "Qdevice", "local", "false")
		wantMetric(t, fams, 0, "corosync_quorum_qdevice_cast_vote")
	})
}

func TestServeEventsLive(t *testing.T) {
	c := newSim(t)
	s := startServe(t, c)
	ev := s.events()
	first := ev.waitFor("the first state", 5*time.Second, settled(1, 2, 3, 4, 5))
	if first.Status != "quorate" || first.Word != "Quorate" ||
		first.Summary != "5 of 5 nodes are members · 5 votes present, 3 needed, 5 expected" {
		t.Errorf("first state %+v", first)
	}
	if n := len(first.Changes); n == 0 || !strings.HasPrefix(first.Changes[0].Text, "connected to corosync: quorate, 5 of 5 nodes members") {
		t.Errorf("changes %+v", first.Changes)
	}
	// Changes arrive on the same stream, without asking again.
	if err := c.Stop(4); err != nil {
		t.Fatal(err)
	}
	p := ev.waitFor("node 4 gone", 5*time.Second, settled(1, 2, 3, 5))
	want := regexp.MustCompile(`^new ring 1\.[0-9a-f]+; node4\(4\) left; total votes 5 → 4$`)
	if !want.MatchString(p.Changes[0].Text) || p.Changes[0].Status != "quorate" {
		t.Errorf("newest change %+v, want one entry matching %s", p.Changes[0], want)
	}
	for _, id := range []uint32{3, 5} {
		if err := c.Stop(id); err != nil {
			t.Fatal(err)
		}
	}
	p = ev.waitFor("quorum lost", 5*time.Second, settled(1, 2))
	if p.Status != "inquorate" || p.Word != "Not quorate" || !strings.Contains(p.Changes[0].Text, "quorum lost") ||
		p.Changes[0].Status != "inquorate" {
		t.Errorf("after quorum loss: %s %s %+v", p.Status, p.Word, p.Changes[0])
	}
	// A second page gets the whole state at once.
	if p2 := s.events().waitFor("a second stream's first state", 5*time.Second, func(pageJSON) bool { return true }); p2.Status != "inquorate" {
		t.Errorf("second stream starts with %+v", p2)
	}
}

func TestServePage(t *testing.T) {
	c := newSim(t)
	s := startServe(t, c, "--web.telemetry-path", "/prom")
	s.events().waitFor("the first state", 5*time.Second, settled(1, 2, 3, 4, 5))
	if err := c.Stop(5); err != nil {
		t.Fatal(err)
	}
	s.events().waitFor("node 5 gone", 5*time.Second, settled(1, 2, 3, 4))
	resp, err := s.client.Get(s.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`<header id="banner" class="banner s-quorate" data-status="quorate">`,
		`<p class="verdict" id="verdict">Quorate</p>`,
		"4 of 5 nodes are members · 4 votes present, 3 needed, 5 expected",
		`<tr class="n-member local" data-node-id="1">`,
		`<td class="name">node1 <span class="tag">this node</span></td>`,
		`<tr class="n-dead" data-node-id="5">`,
		`<dd id="v-quorum">3</dd>`, `<dd id="v-expected">5</dd>`, `<dd class="text" id="v-flags">Quorate</dd>`,
		"node5(5) left",
		`<a href="prom">metrics</a>`,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<script src="static/app.js" defer></script>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if got, _ := s.get("/prom"); got != 200 {
		t.Errorf("--web.telemetry-path /prom: GET /prom %d", got)
	}
	if got, _ := s.get("/metrics"); got != 404 {
		t.Errorf("--web.telemetry-path /prom: GET /metrics %d, want 404", got)
	}
	for path, typ := range map[string]string{"/static/app.js": "text/javascript", "/static/style.css": "text/css"} {
		resp, err := s.client.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	// User data is escaped: a node name cannot inject markup.
	if got, _ := s.get("/nope"); got != 404 {
		t.Errorf("GET /nope: %d", got)
	}
	resp, err = s.client.Post(s.base+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d", resp.StatusCode)
	}
	if got, body := s.get("/-/healthy"); got != 200 || body == "" {
		t.Errorf("/-/healthy: %d %q", got, body)
	}
}

func TestServePageEscapesNames(t *testing.T) {
	c, err := quorum.NewSimClusterConfig(quorum.SimConfig{Nodes: []quorum.SimNode{
		{ID: 1, Name: `<script>alert("x")</script>`}, {ID: 2}, {ID: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	s := startServe(t, c)
	s.events().waitFor("the first state", 5*time.Second, settled(1, 2, 3))
	_, page := s.get("/")
	if strings.Contains(page, `<script>alert`) || !strings.Contains(page, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`) {
		t.Errorf("the node name is not escaped:\n%s", page)
	}
}

func TestServeShutdownEndsStreams(t *testing.T) {
	c := newSim(t)
	s := startServe(t, c)
	ev := s.events()
	ev.waitFor("the first state", 5*time.Second, settled(1, 2, 3, 4, 5))
	start := time.Now()
	if code := s.stop(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, s.stderr.String())
	}
	// A live stream does not hold the shutdown to its 5 s limit.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v with a stream open", d)
	}
	for range ev.msgs {
	}
	if !strings.Contains(s.stderr.String(), "msg=stopping") {
		t.Errorf("stderr:\n%s", s.stderr.String())
	}
}

func TestServeBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--backend", "foo"}, "--backend"},
		{[]string{"--node", "2"}, "--node"},
		{[]string{"--backend", "sim", "--node", "0"}, "--node"},
		{[]string{"--corosync.refresh-interval", "-1s"}, "--corosync.refresh-interval"},
		{[]string{"--web.telemetry-path", "metrics"}, "--web.telemetry-path"},
		{[]string{"--web.telemetry-path", "/healthz"}, "taken"},
		{[]string{"--web.telemetry-path", "/static/m"}, "--web.telemetry-path"},
		{[]string{"--web.listen-address", "nope"}, "--web.listen-address"},
		{[]string{"--web.listen-address", "vsock://:1"}, "vsock"},
		{[]string{"--web.systemd-socket", "--web.listen-address", ":1"}, "--web.systemd-socket"},
		{[]string{"--log.level", "loud"}, "--log.level"},
		{[]string{"--once"}, "once"},
		{[]string{"stray"}, "stray"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runT(t, context.Background(), fastEnv, append([]string{"serve"}, tc.args...)...)
			if code != 1 || out != "" {
				t.Errorf("exit %d stdout %q, want 1 and nothing", code, out)
			}
			if !strings.Contains(errOut, tc.msg) || !strings.Contains(errOut, "quorumwatch serve --help") {
				t.Errorf("stderr %q should mention %q and point to quorumwatch serve --help", errOut, tc.msg)
			}
		})
	}
	t.Run("bad web config", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "web.yml")
		if err := os.WriteFile(path, []byte("tls_server_config:\n  cert_file: /nonexistent.pem\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runT(t, context.Background(), fastEnv, "serve", "--backend", "sim", "--web.config.file", path)
		if code != 1 || !strings.Contains(errOut, "--web.config.file") {
			t.Errorf("exit %d stderr %q", code, errOut)
		}
	})
	t.Run("address in use", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		code, _, errOut := runT(t, context.Background(), fastEnv, "serve", "--backend", "sim", "--web.listen-address", l.Addr().String())
		if code != 1 || !strings.Contains(errOut, "address already in use") {
			t.Errorf("exit %d stderr %q", code, errOut)
		}
	})
	t.Run("corosync refuses", func(t *testing.T) {
		c := newSim(t)
		if err := c.FailConnects(1, 1, quorum.ErrAccess); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runT(t, context.Background(), env{sim: c}, "serve", "--backend", "sim", "--web.listen-address", "127.0.0.1:0")
		if code != 1 || !strings.Contains(errOut, "CS_ERR_ACCESS") {
			t.Errorf("exit %d stderr %q, want 1 and the refusal", code, errOut)
		}
	})
}

func TestServeHelp(t *testing.T) {
	code, out, errOut := runT(t, context.Background(), fastEnv, "serve", "--help")
	if code != 0 || !strings.Contains(out, "Usage: quorumwatch serve") || errOut != "" {
		t.Errorf("exit %d stdout %q stderr %q", code, out, errOut)
	}
	_, out, _ = runT(t, context.Background(), fastEnv, "--help")
	if !strings.Contains(out, "quorumwatch serve") {
		t.Errorf("quorumwatch --help does not mention serve:\n%s", out)
	}
}

// TestServeSystemd runs serve as a process, as systemd would: it says
// READY=1 on $NOTIFY_SOCKET once it has read corosync's state, and on
// SIGTERM STOPPING=1, then exits 0.
func TestServeSystemd(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	notes := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(notes)
				return
			}
			notes <- string(buf[:n])
		}
	}()
	waitNote := func(want string) []string {
		t.Helper()
		var seen []string
		limit := time.After(10 * time.Second)
		for {
			select {
			case n := <-notes:
				seen = append(seen, n)
				if n == want {
					return seen
				}
			case <-limit:
				t.Fatalf("no %q on the notify socket within 10s; got %q", want, seen)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "serve", "--backend", "sim", "--web.listen-address", "127.0.0.1:0")
	cmd.Env = commandEnv(append(os.Environ(), "NOTIFY_SOCKET="+sock))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	var logged syncbuf.Buffer
	go func() {
		re := regexp.MustCompile(`msg=listening address=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(&logged, sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	waitNote("READY=1")
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(10 * time.Second):
		t.Fatalf("no listening address logged; stderr:\n%s", logged.String())
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz %d", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	seen := waitNote("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit 0; stderr:\n%s", err, logged.String())
	}
	t.Logf("notifications after READY: %q", seen)
}

// TestCountersObserve feeds the counting rules the events that the engine
// sends but a simulated cluster cannot easily make: an overflow, and a
// subscription renewed while corosync is down.
func TestCountersObserve(t *testing.T) {
	ring := func(seq uint64) quorum.RingID { return quorum.RingID{NodeID: 1, Seq: seq} }
	nl := func(seq uint64, initial bool, members, joined, left []uint32) quorum.QuorumEvent {
		return quorum.QuorumEvent{Kind: quorum.EventNodeList, Initial: initial, RingID: ring(seq), Members: members, Joined: joined, Left: left}
	}
	q := func(seq uint64, initial, quorate bool) quorum.QuorumEvent {
		return quorum.QuorumEvent{Kind: quorum.EventQuorum, Initial: initial, RingID: ring(seq), Quorate: quorate, Members: []uint32{1}}
	}
	var k counters
	for _, ev := range []quorum.QuorumEvent{
		nl(8, true, []uint32{1, 2, 3}, nil, nil), q(8, true, true), // the snapshot: nothing counted
		nl(9, false, []uint32{1, 2}, nil, []uint32{3}), q(9, false, true),
		// the lossless buffer overflows: the stream ends, and is renewed
		{Kind: quorum.EventError, Err: quorum.ErrSlowConsumer, RingID: ring(11)},
		// the new snapshot: ring 11, node 2 gone too, not quorate
		nl(11, true, []uint32{1}, nil, nil), q(11, true, false),
		{Kind: quorum.EventDisconnected, Err: quorum.ErrConnectionLost},
		// renewed while down: the same disconnection again
		{Kind: quorum.EventDisconnected, Err: quorum.ErrConnectionLost},
		{Kind: quorum.EventReconnected},
		nl(12, true, []uint32{1, 2, 3}, []uint32{2, 3}, nil), q(12, true, true),
	} {
		k.observe(ev)
	}
	got := [6]uint64{k.ringChanges, k.membershipChanges, k.toInquorate, k.toQuorate, k.disconnections, k.overflows}
	if want := [6]uint64{3, 3, 1, 1, 1, 1}; got != want {
		t.Errorf("ring, membership, to inquorate, to quorate, disconnections, overflows = %v, want %v", got, want)
	}
}

// TestServeExporterMetrics: the metrics about quorumwatch itself are there
// by default and left out with --web.disable-exporter-metrics, as with
// node_exporter; the answer is never compressed.
func TestServeExporterMetrics(t *testing.T) {
	c := newSim(t)
	for _, tc := range []struct {
		args []string
		self bool
	}{{nil, true}, {[]string{"--web.disable-exporter-metrics"}, false}} {
		s := startServe(t, c, tc.args...)
		fams := s.metrics()
		for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "promhttp_metric_handler_requests_total"} {
			if _, ok := fams[name]; ok != tc.self {
				t.Errorf("%v: %s present %v, want %v", tc.args, name, ok, tc.self)
			}
		}
		if _, ok := fams["corosync_quorum_quorate"]; !ok {
			t.Errorf("%v: no corosync_quorum_quorate", tc.args)
		}
		req, _ := http.NewRequest("GET", s.base+"/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := s.client.Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if enc := resp.Header.Get("Content-Encoding"); enc != "" {
			t.Errorf("%v: Content-Encoding %q, want none", tc.args, enc)
		}
		if code := s.stop(); code != 0 {
			t.Errorf("%v: exit %d", tc.args, code)
		}
	}
}
