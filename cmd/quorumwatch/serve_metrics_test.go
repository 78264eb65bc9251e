package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corosync-go/quorum"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The kept text is made again whenever anything it shows changed, and only
// then: a change of the picture (a new Time), of its Err alone (a closed
// Client keeps the last picture's Time) or of a counter alone.
func TestMetricsHandlerKey(t *testing.T) {
	h := newMetricsHandler(&server{log: slog.New(slog.DiscardHandler)}, true, nil)
	t0 := time.Unix(1700000000, 0)
	up := quorum.Picture{Connected: true, Provider: "corosync_votequorum", NodeID: 1, Quorate: true, Time: t0,
		ExpectedVotes: 1, HighestExpected: 1, TotalVotes: 1, Quorum: 1,
		Nodes: []quorum.NodeInfo{{ID: 1, Name: "node1", Votes: 1, State: quorum.NodeMember, Local: true}}}
	text := func(st metricState) (string, []byte) {
		t.Helper()
		var buf bytes.Buffer
		if err := h.encodeState(&buf, st); err != nil {
			t.Fatal(err)
		}
		return buf.String(), h.text
	}
	first, kept := text(metricState{p: up})
	for _, want := range []string{"corosync_quorum_up 1", "corosync_quorum_quorate 1", `ha_cluster_corosync_quorate 1`,
		`corosync_quorum_node_votes{name="node1",node_id="1"} 1`} {
		if !strings.Contains(first, want+"\n") {
			t.Errorf("no %q in\n%s", want, first)
		}
	}
	if again, k := text(metricState{p: up}); again != first || &k[0] != &kept[0] {
		t.Errorf("the same state was encoded again (or differently):\n%s", again)
	}

	if s, _ := text(metricState{p: up, k: tally{disconnections: 3}}); !strings.Contains(s, "corosync_quorum_disconnections_total 3\n") {
		t.Errorf("a counter that moved alone is not served:\n%s", s)
	}
	closed := up
	closed.Connected, closed.Quorate, closed.Err = false, false, quorum.ErrClosed
	if s, _ := text(metricState{p: closed}); !strings.Contains(s, "corosync_quorum_up 0\n") || strings.Contains(s, "node_votes") {
		t.Errorf("a picture changed only in Err (same Time) still served as before:\n%s", s)
	}
	later := up
	later.Time = t0.Add(time.Second)
	if s, _ := text(metricState{p: later, k: tally{disconnections: 3}}); !strings.Contains(s, "corosync_quorum_last_change_timestamp_seconds 1.700000001e+09\n") {
		t.Errorf("a new picture is not served:\n%s", s)
	}
	// Two different states may not share a key, even before any picture.
	a, b := metricState{p: quorum.Picture{Err: errors.New("waiting: a")}}, metricState{p: quorum.Picture{Err: errors.New("waiting: b")}}
	if a.key() == b.key() {
		t.Error("two reasons for an unknown state have the same key")
	}
}

// Between two changes, a scrape serves the same text but for the clock's
// families, which move.
func TestServeMetricsClock(t *testing.T) {
	c := newSim(t)
	s := startServe(t, c, "--compat.ha-cluster-exporter", "--web.disable-exporter-metrics")
	s.events().waitFor("the first state", 5*time.Second, settled(1, 2, 3, 4, 5))
	_, first := s.get("/metrics")
	_, second := s.get("/metrics")
	still := func(body string) string {
		var keep []string
		for _, l := range strings.Split(body, "\n") {
			if !strings.HasPrefix(l, ageName+" ") && !strings.HasPrefix(l, haDurName+"{") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if still(first) != still(second) {
		t.Errorf("an unchanged state served differently:\n%s\n---\n%s", first, second)
	}
	f1, f2 := parseMetrics(t, first), parseMetrics(t, second)
	a1, ok1 := metricValue(f1, ageName)
	a2, ok2 := metricValue(f2, ageName)
	if !ok1 || !ok2 || a2 <= a1 {
		t.Errorf("state age %v (%v) then %v (%v): want it to grow between scrapes", a1, ok1, a2, ok2)
	}
	if d, ok := metricValue(f2, haDurName, "collector", "corosync"); !ok || d <= 0 || d > 1 {
		t.Errorf("%s = %v (%v)", haDurName, d, ok)
	}
	for name, mf := range f2 {
		if mf.GetHelp() == "" || mf.Type == nil {
			t.Errorf("%s: no HELP or TYPE", name)
		}
	}
}

// Scrapes at the same time as changes each see one whole state: the
// members count agrees with the node_member series of the same answer.
func TestServeMetricsConcurrent(t *testing.T) {
	c := newSim(t)
	s := startServe(t, c, "--compat.ha-cluster-exporter")
	ev := s.events()
	ev.waitFor("the first state", 5*time.Second, settled(1, 2, 3, 4, 5))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := s.do("/metrics")
				if err != nil {
					mu.Lock()
					bad = append(bad, err.Error())
					mu.Unlock()
					return
				}
				var body bytes.Buffer
				body.ReadFrom(resp.Body)
				resp.Body.Close()
				if why := torn(body.String()); why != "" {
					mu.Lock()
					bad = append(bad, why)
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range []uint32{5, 4, 3} {
		if err := c.Stop(id); err != nil {
			t.Fatal(err)
		}
	}
	ev.waitFor("nodes 3-5 gone", 5*time.Second, settled(1, 2))
	for _, id := range []uint32{3, 4, 5} {
		if err := c.Start(id); err != nil {
			t.Fatal(err)
		}
	}
	ev.waitFor("all back", 5*time.Second, settled(1, 2, 3, 4, 5))
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d torn answers, the first: %s", len(bad), bad[0])
	}
	fams := s.metrics()
	wantMetric(t, fams, 5, "corosync_quorum_members")
	wantMetric(t, fams, 1, "ha_cluster_corosync_quorate")
}

// torn says how a metrics answer disagrees with itself, or "".
func torn(body string) string {
	fams, err := parseText(body)
	if err != nil {
		return err.Error()
	}
	up, _ := metricValue(fams, "corosync_quorum_up")
	if up != 1 {
		return ""
	}
	members, ok := metricValue(fams, "corosync_quorum_members")
	if !ok {
		return "no members count while up"
	}
	n := 0
	for _, m := range fams["corosync_quorum_node_member"].GetMetric() {
		if m.GetGauge().GetValue() == 1 {
			n++
		}
	}
	haMembers := len(fams["ha_cluster_corosync_member_votes"].GetMetric())
	if int(members) != n || n != haMembers {
		return fmt.Sprintf("corosync_quorum_members %v, %d node_member series at 1, %d ha_cluster_corosync_member_votes", members, n, haMembers)
	}
	return ""
}

// BenchmarkMetricsScrape compares a scrape of an unchanged 5-node state
// served from the kept text with the same metrics gathered and encoded by
// promhttp at every scrape, as the server did before (no network: the
// handler's own cost).
func BenchmarkMetricsScrape(b *testing.B) {
	c := newSim(b)
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(c.Backend(1)), quorum.WithPicture())
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var st metricState
	for st = (metricState{p: cl.Picture()}); !st.p.Connected || st.p.Syncing; st.p = cl.Picture() {
		runtime.Gosched()
	}
	srv := &server{log: slog.New(slog.DiscardHandler)}
	srv.client.Store(cl)
	req := httptest.NewRequest("GET", "/metrics", nil)
	run := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatal(w.Code)
			}
		}
	}
	b.Run("kept", func(b *testing.B) { run(b, newMetricsHandler(srv, true, nil)) })
	b.Run("promhttp", func(b *testing.B) {
		col := newCollector(true)
		col.now = st
		reg := prometheus.NewRegistry()
		reg.MustRegister(col)
		run(b, promhttp.HandlerFor(reg, promhttp.HandlerOpts{DisableCompression: true}))
	})
}
