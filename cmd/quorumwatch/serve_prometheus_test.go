//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/testcluster"
)

// prometheusPath is Debian's Prometheus server.
const prometheusPath = "/usr/bin/prometheus"

// prometheusListen is where the test's Prometheus listens: on the loopback
// of node 1's own network namespace, which nothing else uses but
// quorumwatch (on an ephemeral port, above 32767), so a fixed port is free.
const prometheusListen = "127.0.0.1:9090"

// TestServePrometheus has a real Prometheus server (Debian's) scrape
// quorumwatch serve on node 1 of a real 3-node corosync cluster and reads
// the result through Prometheus's HTTP API: our quorate and
// ha_cluster_exporter's, the member series, the target's health; then cuts
// node 1 off the network and sees quorate drop to 0 in Prometheus once
// corosync-quorumtool says node 1 is inquorate, and come back on heal, with
// the drop kept in Prometheus's history and the transitions counted.
//
// Both processes run in node 1's network namespace, Prometheus on its
// loopback: quorumwatch must run there (corosync's IPC is per namespace),
// and a Prometheus beside it scrapes 127.0.0.1 as it would on a real node.
// The test reaches Prometheus's API from inside the namespace too.
func TestServePrometheus(t *testing.T) {
	skipUnlessRealClusterRun(t, "a real Prometheus on a real cluster, about 30 s")
	prom := requireProgram(t, prometheusPath, "prometheus")
	c := testcluster.Start(t, 3)
	s := startNodeServe(t, c, 1, "--corosync.refresh-interval", "1s", "--compat.ha-cluster-exporter")

	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	// Scraping every second keeps the test short; the timeout may not
	// exceed the interval.
	if err := os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: quorumwatch
    static_configs:
      - targets: ['%s']
`, s.addr), 0o644); err != nil {
		t.Fatal(err)
	}
	log := newLogWatch(`(Server is ready to receive web requests)`)
	p := startProcess(t, c, 1, log, nil, prom,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+prometheusListen)
	p.name = "prometheus"
	p.waitLog("readiness", 60*time.Second)
	api := &promAPI{t: t, client: &http.Client{Transport: &http.Transport{DialContext: nodeDialer(c, 1)}}}
	defer api.client.CloseIdleConnections()
	defer func() {
		if t.Failed() {
			t.Logf("quorumwatch serve's log:\n%s\nprometheus's log:\n%s", s.log.String(), p.log.String())
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The state corosync-quorumtool shows must reach Prometheus: within a
	// few scrapes, 60 s being generous for a loaded machine.
	const within = 60 * time.Second
	st, err := c.Quorumtool(1)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Quorate || st.Nodes != 3 {
		t.Fatalf("corosync-quorumtool on node 1 before the test: quorate %v with %d nodes, want quorate with 3", st.Quorate, st.Nodes)
	}
	api.waitState("the 3-node cluster", within, st)
	api.checkTarget(s.addr)

	// Cut off, node 1 is alone with 1 vote of 3: corosync says inquorate,
	// and so must Prometheus, while quorumwatch's state stays known (up 1).
	if err := c.Cut(1); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitStatus(ctx, 1, func(st testcluster.Status) bool { return !st.Quorate && st.Nodes == 1 },
		"node 1 cut off and inquorate"); err != nil {
		t.Fatal(err)
	}
	if st, err = c.Quorumtool(1); err != nil {
		t.Fatal(err)
	}
	api.waitState("node 1 cut off", within, st)

	if err := c.Heal(1); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitStatus(ctx, 1, func(st testcluster.Status) bool { return st.Quorate && st.Nodes == 3 },
		"node 1 back with the others"); err != nil {
		t.Fatal(err)
	}
	if st, err = c.Quorumtool(1); err != nil {
		t.Fatal(err)
	}
	api.waitState("node 1 healed", within, st)

	// Prometheus kept the drop: its history over the test has both values,
	// and the counters it scraped saw one transition each way at least.
	api.wantValue("min_over_time(corosync_quorum_quorate[10m])", 0)
	api.wantValue("max_over_time(corosync_quorum_quorate[10m])", 1)
	api.wantValue("min_over_time(ha_cluster_corosync_quorate[10m])", 0)
	for _, to := range []string{"inquorate", "quorate"} {
		q := `corosync_quorum_transitions_total{to="` + to + `"}`
		if v := api.value(q); v < 1 {
			t.Errorf("%s = %v in Prometheus, want at least 1", q, v)
		}
	}
	api.checkTarget(s.addr)

	p.stop(30 * time.Second)
}

// promAPI queries the test's Prometheus.
type promAPI struct {
	t      *testing.T
	client *http.Client
}

// promSample is one series of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix time, "value"]
}

func (s promSample) float() (float64, error) {
	v, ok := s.Value[1].(string)
	if !ok {
		return 0, fmt.Errorf("value %v is not a string", s.Value[1])
	}
	return strconv.ParseFloat(v, 64)
}

// get fetches a path of the HTTP API and decodes its data into out.
func (a *promAPI) get(path string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+prometheusListen+path, nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("GET %s: %d, decoding: %v", path, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("GET %s: %d %s: %s", path, resp.StatusCode, body.Status, body.Error)
	}
	return json.Unmarshal(body.Data, out)
}

// query runs an instant query and returns its vector.
func (a *promAPI) query(q string) ([]promSample, error) {
	var data struct {
		ResultType string       `json:"resultType"`
		Result     []promSample `json:"result"`
	}
	if err := a.get("/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: result type %q, want vector", q, data.ResultType)
	}
	return data.Result, nil
}

// value is the value of a query that yields one series; the test fails
// otherwise.
func (a *promAPI) value(q string) float64 {
	a.t.Helper()
	res, err := a.query(q)
	if err != nil {
		a.t.Fatal(err)
	}
	if len(res) != 1 {
		a.t.Fatalf("%s: %d series, want 1: %v", q, len(res), res)
	}
	v, err := res[0].float()
	if err != nil {
		a.t.Fatalf("%s: %v", q, err)
	}
	return v
}

func (a *promAPI) wantValue(q string, want float64) {
	a.t.Helper()
	if v := a.value(q); v != want {
		a.t.Errorf("%s = %v in Prometheus, want %v", q, v, want)
	}
}

// waitState polls Prometheus until what it scraped last agrees with st,
// what corosync-quorumtool -s printed on node 1: quorate (ours and
// ha_cluster_exporter's), the state known, and one member series per row
// of the tool's table with its name, votes and local flag.
func (a *promAPI) waitState(what string, within time.Duration, st testcluster.Status) {
	a.t.Helper()
	want := map[string]float64{
		"up":                          1, // Prometheus's own: the scrape worked
		"corosync_quorum_up":          1,
		"corosync_quorum_quorate":     b2f(st.Quorate),
		"ha_cluster_corosync_quorate": b2f(st.Quorate),
		"corosync_quorum_members":     float64(st.Nodes),
		`ha_cluster_corosync_quorum_votes{type="total_votes"}`: float64(st.TotalVotes),
		`ha_cluster_scrape_success{collector="corosync"}`:      1,
	}
	var rows []string
	for _, m := range st.Table {
		rows = append(rows, fmt.Sprintf("node_id=%d node=%s local=%v votes=%d", m.NodeID, m.Name, m.Local, m.Votes))
	}
	sort.Strings(rows)
	poll(a.t, "Prometheus showing "+what, within, 250*time.Millisecond, func() error {
		for q, v := range want {
			res, err := a.query(q)
			if err != nil {
				return err
			}
			if len(res) != 1 {
				return fmt.Errorf("%s: %d series %v, want 1", q, len(res), res)
			}
			if got, err := res[0].float(); err != nil || got != v {
				return fmt.Errorf("%s = %v (%v), corosync-quorumtool says %v", q, got, err, v)
			}
			if res[0].Metric["job"] != "quorumwatch" {
				return fmt.Errorf("%s: labels %v, want job quorumwatch", q, res[0].Metric)
			}
		}
		res, err := a.query("ha_cluster_corosync_member_votes")
		if err != nil {
			return err
		}
		var got []string
		for _, s := range res {
			v, err := s.float()
			if err != nil {
				return err
			}
			got = append(got, fmt.Sprintf("node_id=%s node=%s local=%s votes=%v", s.Metric["node_id"], s.Metric["node"], s.Metric["local"], v))
		}
		sort.Strings(got)
		if strings.Join(got, "; ") != strings.Join(rows, "; ") {
			return fmt.Errorf("ha_cluster_corosync_member_votes in Prometheus: %q; corosync-quorumtool's members: %q", got, rows)
		}
		return nil
	})
}

// checkTarget checks that Prometheus scrapes quorumwatch at addr without
// error: its parser accepted the whole exposition.
func (a *promAPI) checkTarget(addr string) {
	a.t.Helper()
	var data struct {
		ActiveTargets []struct {
			ScrapeURL string `json:"scrapeUrl"`
			Health    string `json:"health"`
			LastError string `json:"lastError"`
		} `json:"activeTargets"`
	}
	if err := a.get("/api/v1/targets?state=active", &data); err != nil {
		a.t.Fatal(err)
	}
	if len(data.ActiveTargets) != 1 {
		a.t.Fatalf("Prometheus has %d active targets, want 1: %+v", len(data.ActiveTargets), data.ActiveTargets)
	}
	tg := data.ActiveTargets[0]
	if tg.ScrapeURL != "http://"+addr+"/metrics" || tg.Health != "up" || tg.LastError != "" {
		a.t.Errorf("Prometheus's target: %+v, want http://%s/metrics up without error", tg, addr)
	}
}
