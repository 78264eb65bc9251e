//go:build linux

// Command scrape measures what a Prometheus scrape of quorumwatch serve
// costs, beside what ha_cluster_exporter does at every scrape (start
// `corosync-quorumtool -p` and parse its output), under the same load in
// the same run; and whether an idle quorumwatch serve wakes up between
// scrapes. bench/scrape.sh builds and runs it; it needs root and corosync.
//
//	scrape -quorumwatch PATH [-scrapers 50] [-duration 10s] [-interval 1s]
//	       [-idle 10s] [-settle 2s] [-between 15s] [-between-count 2]
//	       [-nodes 3] [-threads]
//
// It starts a real cluster (internal/testcluster, Debian's corosync unless
// QUORUM_COROSYNC_PREFIX says otherwise) and, in node 1's network
// namespace, on its loopback:
//   - quorumwatch serve --corosync.refresh-interval 0
//     --compat.ha-cluster-exporter: the server measured;
//   - quorumwatch serve --corosync.refresh-interval 1s: a control for the
//     idle counts, which must see its re-reads;
//   - this program as "quorumtool-exporter": an HTTP server that does what
//     ha_cluster_exporter does for its corosync metrics: promhttp with
//     gzip over a registry with the Go and process collectors and one that,
//     at each scrape, runs `corosync-quorumtool -p` and parses it
//     (internal/testcluster's parser) into ha_cluster_exporter's quorum
//     metrics. ha_cluster_exporter also runs `corosync-cfgtool -s` at each
//     scrape; this does not, so its figures are a lower bound of that
//     exporter's;
//   - this program as "static": a bare net/http server answering every
//     request with a copy of quorumwatch's first answer, with nothing to
//     gather or encode: the floor of any Go exporter on this machine,
//     measured paced and flooded like the others.
//
// Then:
//  1. idle: once both quorumwatch servers have read corosync's state, and
//     -settle later, the context switches of every thread of each
//     (/proc/PID/task/*/status, voluntary and involuntary) over -idle, as
//     bench/idle.sh counts them; corosync's own CPU use meanwhile is the
//     baseline subtracted below;
//  2. load: -scrapers goroutines, each on a keep-alive connection of its
//     own, fetch /metrics as Prometheus does (its Accept header, gzip, the
//     body read whole), for -duration per round: "paced", each every
//     -interval at a phase of its own (50 Prometheus servers scraping every
//     second), then "flood", each again as soon as it has its answer (the
//     most the server can do on this machine). quorumwatch, then the
//     quorumtool exporter, then the static server, in each mode, and last
//     quorumwatch flooded by scrapers that do not ask for gzip. Per round: the scrapes, their
//     latency (median, p99, max), the server's CPU time per scrape (user
//     and system from /proc/PID/stat, its waited-for children included:
//     the tools the quorumtool exporter runs), corosync's CPU per scrape
//     beyond its baseline, and what the server allocated per scrape and
//     its GC cycles (its own go_memstats_alloc_bytes_total and
//     go_gc_duration_seconds_count);
//  3. quorumwatch's resident memory (VmRSS, and the peak VmHWM) before and
//     after the load;
//  4. idle again, -settle after the scrapers' connections closed;
//  5. between scrapes: one scraper, every -between over one keep-alive
//     connection, and quorumwatch's context switches in the 0.1 s after
//     each answer and in the rest of the interval.
//
// The load generator runs on the same 2 CPUs as the servers: latencies
// include its own scheduling. Nothing is asserted; it exits 1 when
// something fails (a scrape error, a server that does not start, a
// quorumtool run that failed or did not parse).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/corosync-go/quorum/internal/testcluster"
)

func main() {
	fs := flag.NewFlagSet("scrape", flag.ExitOnError)
	role := fs.String("role", "", `"quorumtool-exporter": serve ha_cluster_exporter's way; "static": serve the file -body (both used by the run itself)`)
	body := fs.String("body", "", "static: the file whose bytes every answer carries")
	listen := fs.String("listen", "127.0.0.1:0", "quorumtool-exporter: where to listen")
	tool := fs.String("quorumtool", "corosync-quorumtool", "quorumtool-exporter: the tool to run")
	var o options
	fs.StringVar(&o.quorumwatch, "quorumwatch", "", "the quorumwatch binary to measure (required)")
	fs.StringVar(&o.serveArgs, "serve-args", "", "more options for the measured quorumwatch serve, space separated (e.g. --web.disable-exporter-metrics)")
	fs.StringVar(&o.serveEnv, "serve-env", "", "environment variables for the measured quorumwatch serve, space separated (e.g. GOMAXPROCS=1)")
	fs.IntVar(&o.scrapers, "scrapers", 50, "concurrent scrapers")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each load round lasts")
	fs.DurationVar(&o.interval, "interval", time.Second, "the paced rounds' scrape interval of each scraper")
	fs.BoolVar(&o.threads, "threads", false, "also list the idle context switches of each thread that had any")
	fs.DurationVar(&o.between, "between", 15*time.Second, "the interval of the scrapes between which wake-ups are counted (0: skip)")
	fs.IntVar(&o.betweenN, "between-count", 2, "how many such intervals")
	fs.DurationVar(&o.idle, "idle", 10*time.Second, "how long each idle window lasts")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "the pause before an idle window")
	fs.IntVar(&o.nodes, "nodes", 3, "nodes of the cluster")
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "scrape: unexpected arguments %q\n", fs.Args())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch *role {
	case "quorumtool-exporter":
		err = serveQuorumtool(ctx, *listen, *tool)
	case "static":
		err = serveStatic(ctx, *listen, *body)
	case "":
		err = o.run(ctx)
	default:
		err = fmt.Errorf("-role %q: want quorumtool-exporter, static or none", *role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "scrape: %v\n", err)
		stop()
		os.Exit(1)
	}
}

// --- the quorumtool exporter: ha_cluster_exporter's way ---

// quorumtoolCollector runs corosync-quorumtool -p at each collection, as
// ha_cluster_exporter's corosync collector does, and exports its quorum
// metrics under that exporter's names.
type quorumtoolCollector struct {
	tool     string
	failures *atomic.Int64 // collections where the tool or its parsing failed
}

var (
	descQuorate  = prometheus.NewDesc("ha_cluster_corosync_quorate", "Whether or not the cluster is quorate", nil, nil)
	descVotes    = prometheus.NewDesc("ha_cluster_corosync_quorum_votes", "Cluster quorum votes; one line per type", []string{"type"}, nil)
	descMember   = prometheus.NewDesc("ha_cluster_corosync_member_votes", "How many votes each member node has contributed with to the current quorum", []string{"node_id", "node", "local"}, nil)
	descSuccess  = prometheus.NewDesc("ha_cluster_scrape_success", "Whether the last scrape of the collector succeeded", []string{"collector"}, nil)
	descDuration = prometheus.NewDesc("ha_cluster_scrape_duration_seconds", "Duration of the last scrape of the collector", []string{"collector"}, nil)
	// Not ha_cluster_exporter's: the run reads it to make sure that every
	// scrape it measured ran and parsed the tool.
	descFailures = prometheus.NewDesc("bench_quorumtool_failures_total", "Collections where corosync-quorumtool or its parsing failed", nil, nil)
)

// Describe sends nothing: the collector is unchecked, as the series it
// makes depend on the tool's output.
func (quorumtoolCollector) Describe(chan<- *prometheus.Desc) {}

func (q quorumtoolCollector) Collect(ch chan<- prometheus.Metric) {
	start := time.Now()
	ok := q.collect(ch) == nil
	if !ok {
		q.failures.Add(1)
	}
	ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(q.failures.Load()))
	ch <- prometheus.MustNewConstMetric(descSuccess, prometheus.GaugeValue, b2f(ok), "corosync")
	ch <- prometheus.MustNewConstMetric(descDuration, prometheus.GaugeValue, time.Since(start).Seconds(), "corosync")
}

func (q quorumtoolCollector) collect(ch chan<- prometheus.Metric) error {
	out, err := exec.Command(q.tool, "-p").Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 2) { // 2: not quorate
		return err
	}
	st, err := testcluster.ParseStatus(string(out))
	if err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(descQuorate, prometheus.GaugeValue, b2f(st.Quorate))
	for _, v := range []struct {
		typ string
		n   uint32
	}{{"expected_votes", st.ExpectedVotes}, {"highest_expected", st.HighestExpected}, {"total_votes", st.TotalVotes}, {"quorum", st.Quorum}} {
		ch <- prometheus.MustNewConstMetric(descVotes, prometheus.GaugeValue, float64(v.n), v.typ)
	}
	for _, m := range st.Table {
		ch <- prometheus.MustNewConstMetric(descMember, prometheus.GaugeValue, float64(m.Votes),
			strconv.FormatUint(uint64(m.NodeID), 10), m.Name, strconv.FormatBool(m.Local))
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// serveQuorumtool serves /metrics from a quorumtoolCollector until ctx
// ends. It logs its address as quorumwatch does.
// serveStatic answers GET /metrics with the bytes of the file body, and
// /healthz with 200.
func serveStatic(ctx context.Context, listen, body string) error {
	b, err := os.ReadFile(body)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	return serveUntil(ctx, listen, mux)
}

// serveUntil serves h on listen until ctx ends, saying where it listens
// on stderr as quorumwatch does.
func serveUntil(ctx context.Context, listen string, h http.Handler) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "msg=listening address=%s\n", l.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func serveQuorumtool(ctx context.Context, listen, tool string) error {
	// ha_cluster_exporter serves promhttp.Handler(): the default registry,
	// which has the Go and process collectors besides its own, and gzip.
	reg := prometheus.NewRegistry()
	reg.MustRegister(quorumtoolCollector{tool: tool, failures: new(atomic.Int64)}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return serveUntil(ctx, listen, mux)
}

// --- the run ---

type options struct {
	serveArgs   string // more options of the measured quorumwatch serve
	serveEnv    string // more environment of the measured quorumwatch serve
	quorumwatch string
	scrapers    int
	duration    time.Duration
	interval    time.Duration
	threads     bool
	between     time.Duration
	betweenN    int
	idle        time.Duration
	settle      time.Duration
	nodes       int
}

// server is a process started in node 1 that listens on its loopback.
type server struct {
	name string
	cmd  *exec.Cmd
	pid  int
	addr string
	done chan error
	log  *strings.Builder
	mu   *sync.Mutex
}

func (s *server) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

var listeningRE = regexp.MustCompile(`msg=listening address=(\S+)`)

// start runs argv in node 1 and waits until it logs its address.
func start(ctx context.Context, c *testcluster.Cluster, name string, env []string, argv ...string) (*server, error) {
	cmd := c.Exec(ctx, 1, argv[0], argv[1:]...)
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: name, cmd: cmd, pid: cmd.Process.Pid, done: make(chan error, 1), log: &strings.Builder{}, mu: &sync.Mutex{}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		s.done <- cmd.Wait()
	}()
	select {
	case s.addr = <-addr:
		return s, nil
	case err := <-s.done:
		return nil, fmt.Errorf("%s exited before listening: %v\n%s", name, err, s.logText())
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s did not listen within 30 s:\n%s", name, s.logText())
	}
}

// stop ends the server with SIGTERM (SIGKILL after 10 s) and returns an
// error unless it exited 0.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			return fmt.Errorf("%s after SIGTERM: %v\n%s", s.name, err, s.logText())
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("%s still running 10 s after SIGTERM: killed", s.name)
	}
}

// procCPU is the process's CPU time, user and system, its waited-for
// children's included, in seconds (/proc/PID/stat fields 14 to 17).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	var ticks float64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime, after pid and comm
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	return ticks / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// statusFields reads "Name: value" lines of /proc/PID/status (or a
// thread's), the values as numbers (kB for memory).
func statusFields(path string, names ...string) (map[string]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !slices.Contains(names, k) {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", path, line, err)
		}
		out[k] = n
	}
	return out, nil
}

// switches sums the context switches of every thread of pid, and returns
// them with the thread ids.
func switches(pid int) (int64, []string, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil {
		return 0, nil, err
	}
	var sum int64
	var tids []string
	for _, t := range tasks {
		f, err := statusFields(t+"/status", "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
		if err != nil {
			continue // the thread ended meanwhile
		}
		sum += f["voluntary_ctxt_switches"] + f["nonvoluntary_ctxt_switches"]
		tids = append(tids, filepath.Base(t))
	}
	return sum, tids, nil
}

// idleWindow counts each server's context switches over d; with
// perThread, the lines list each thread that had any.
func idleWindow(ctx context.Context, d time.Duration, perThread bool, servers ...*server) ([]string, error) {
	before := make([]int64, len(servers))
	tidsBefore := make([][]string, len(servers))
	threadsBefore := make([]map[string]int64, len(servers))
	for i, s := range servers {
		n, tids, err := switches(s.pid)
		if err != nil {
			return nil, err
		}
		before[i], tidsBefore[i], threadsBefore[i] = n, tids, threadSwitches(s.pid)
	}
	start := time.Now()
	if err := sleep(ctx, d); err != nil {
		return nil, err
	}
	took := time.Since(start)
	var lines []string
	for i, s := range servers {
		n, tids, err := switches(s.pid)
		if err != nil {
			return nil, err
		}
		note := ""
		if !slices.Equal(tids, tidsBefore[i]) {
			note = fmt.Sprintf(" [threads changed: %d at the start, %d at the end]", len(tidsBefore[i]), len(tids))
		}
		lines = append(lines, fmt.Sprintf("%s: %d context switches in %.1f s (%d threads)%s", s.name, n-before[i], took.Seconds(), len(tids), note))
		if perThread {
			after := threadSwitches(s.pid)
			for _, tid := range tids {
				if d := after[tid] - threadsBefore[i][tid]; d != 0 {
					lines = append(lines, fmt.Sprintf("  thread %s (%s): %d", tid, threadName(s.pid, tid), d))
				}
			}
		}
	}
	return lines, nil
}

// threadSwitches is the context switches of each thread of pid.
func threadSwitches(pid int) map[string]int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	out := map[string]int64{}
	for _, t := range tasks {
		if f, err := statusFields(t+"/status", "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"); err == nil {
			out[filepath.Base(t)] = f["voluntary_ctxt_switches"] + f["nonvoluntary_ctxt_switches"]
		}
	}
	return out
}

// threadName says which of the process's threads tid is, in creation
// order (#1 is the main thread; in a Go program #2 is usually sysmon).
func threadName(pid int, tid string) string {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	ids := make([]int, 0, len(tasks))
	for _, t := range tasks {
		if id, err := strconv.Atoi(filepath.Base(t)); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	want, _ := strconv.Atoi(tid)
	return fmt.Sprintf("#%d by tid", slices.Index(ids, want)+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scrapeClient makes connections from inside node 1's namespace, one per
// scraper, kept alive.
func scrapeClient(c *testcluster.Cluster, scrapers int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
				var conn net.Conn
				err := c.InNode(1, func() error {
					var err error
					conn, err = (&net.Dialer{}).DialContext(ctx, network, address)
					return err
				})
				return conn, err
			},
			MaxIdleConnsPerHost: scrapers,
			// The body is read as sent (gzip), as Prometheus reads it
			// before it decompresses: the server's cost is the same.
			DisableCompression: true,
		},
	}
}

// round is one load round's result.
type round struct {
	name          string
	lat           []time.Duration // sorted
	bytes         int64
	took          time.Duration
	cpu, corosync float64 // seconds: the server's, and corosync's beyond its own use
	alloc, gcs    float64 // bytes the server allocated, its GC cycles
	errs          int
	firstErr      error
}

// load runs o.scrapers scrapers against s for o.duration: back to back
// (flood), or each every o.interval at a phase of its own (paced), as
// Prometheus servers do: a scrape that overruns its interval skips the
// ticks it missed.
func (o options) load(ctx context.Context, client *http.Client, s *server, corosyncPid int, paced, gzip bool) (round, error) {
	url := "http://" + s.addr + "/metrics"
	r := round{name: s.name}
	if !gzip {
		r.name += ", no gzip"
	}
	cpu0, err := procCPU(s.pid)
	if err != nil {
		return r, err
	}
	cs0, err := procCPU(corosyncPid)
	if err != nil {
		return r, err
	}
	alloc0, gc0, err := goStats(ctx, client, url)
	if err != nil {
		return r, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(o.duration)
	for i := range o.scrapers {
		// Phases spread evenly over the interval, as Prometheus spreads
		// its targets.
		next := start.Add(o.interval * time.Duration(i) / time.Duration(o.scrapers))
		wg.Go(func() {
			var lat []time.Duration
			var n int64
			var errs int
			var first error
			for ctx.Err() == nil {
				if paced {
					for next.Before(time.Now()) {
						next = next.Add(o.interval)
					}
					if !next.Before(deadline) || sleep(ctx, time.Until(next)) != nil {
						break
					}
				} else if !time.Now().Before(deadline) {
					break
				}
				t0 := time.Now()
				got, err := scrapeOnce(ctx, client, url, gzip)
				d := time.Since(t0)
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				lat = append(lat, d)
				n += got
			}
			mu.Lock()
			r.lat = append(r.lat, lat...)
			r.bytes += n
			r.errs += errs
			if r.firstErr == nil {
				r.firstErr = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	r.took = time.Since(start)
	cpu1, err := procCPU(s.pid)
	if err != nil {
		return r, err
	}
	cs1, err := procCPU(corosyncPid)
	if err != nil {
		return r, err
	}
	r.cpu, r.corosync = cpu1-cpu0, cs1-cs0
	alloc1, gc1, err := goStats(ctx, client, url)
	if err != nil {
		return r, err
	}
	r.alloc, r.gcs = alloc1-alloc0, gc1-gc0
	slices.Sort(r.lat)
	return r, ctx.Err()
}

// goStats reads the bytes allocated and the GC cycles so far from the
// Go collector's metrics; NaN when the server does not export them.
func goStats(ctx context.Context, client *http.Client, url string) (alloc, gcs float64, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, _ := strings.Cut(sc.Text(), " ")
		var dst *float64
		switch name {
		case "go_memstats_alloc_bytes_total":
			dst = &alloc
		case "go_gc_duration_seconds_count":
			dst = &gcs
		default:
			continue
		}
		if *dst, err = strconv.ParseFloat(v, 64); err != nil {
			return 0, 0, fmt.Errorf("%s: %s: %v", url, sc.Text(), err)
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if found != 2 {
		// A server run with --web.disable-exporter-metrics: unknown.
		return math.NaN(), math.NaN(), nil
	}
	return alloc, gcs, nil
}

// prometheusAccept is what Prometheus 2.x asks for when it scrapes.
const prometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

func scrapeOnce(ctx context.Context, client *http.Client, url string, gzip bool) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", prometheusAccept)
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return n, err
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func fmtCPU(s float64) string {
	if s < 1e-3 {
		return fmt.Sprintf("%.1f µs", s*1e6)
	}
	return fmt.Sprintf("%.2f ms", s*1e3)
}

func (r round) print() {
	n := len(r.lat)
	per := func(v float64) float64 { return v / float64(max(n, 1)) }
	alloc := "unknown (no go_* metrics)"
	if !math.IsNaN(r.alloc) {
		alloc = fmt.Sprintf("%5.0f KiB, %d GC cycles", per(r.alloc)/1024, int(r.gcs))
	}
	fmt.Printf("%-34s %7d scrapes (%6.0f/s, %5.1f KiB each)  latency median %-8s p99 %-8s max %-8s  CPU per scrape %-9s corosync's %-9s  allocated per scrape %s",
		r.name, n, float64(n)/r.took.Seconds(), float64(r.bytes)/float64(max(n, 1))/1024,
		fmtDur(pct(r.lat, 0.5)), fmtDur(pct(r.lat, 0.99)), fmtDur(pct(r.lat, 1)), fmtCPU(per(r.cpu)), fmtCPU(per(r.corosync)), alloc)
	if r.errs > 0 {
		fmt.Printf("  %d errors, the first: %v", r.errs, r.firstErr)
	}
	fmt.Println()
}

func memory(pid int) (rss, hwm int64, err error) {
	f, err := statusFields(fmt.Sprintf("/proc/%d/status", pid), "VmRSS", "VmHWM")
	return f["VmRSS"], f["VmHWM"], err
}

func (o options) run(ctx context.Context) (err error) {
	if o.quorumwatch == "" {
		return errors.New("-quorumwatch PATH is required (bench/scrape.sh builds it)")
	}
	if o.scrapers < 1 || o.duration <= 0 || o.interval <= 0 || o.idle <= 0 || o.settle < 0 || o.nodes < 1 {
		return errors.New("-scrapers, -duration, -interval, -idle and -nodes must be positive")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	qw, err := filepath.Abs(o.quorumwatch)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	fmt.Printf("starting a %d-node cluster...\n", o.nodes)
	c, err := testcluster.New(ctx, o.nodes)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}()
	inst := c.Install()
	fmt.Printf("corosync %s, %d CPUs, %s; %d scrapers, %v per round, idle windows of %v\n",
		inst.Version, runtime.NumCPU(), runtime.Version(), o.scrapers, o.duration, o.idle)

	var servers []*server
	defer func() {
		for _, s := range servers {
			if serr := s.stop(); err == nil {
				err = serr
			}
		}
	}()
	startOne := func(name string, env []string, argv ...string) (*server, error) {
		s, err := start(ctx, c, name, env, argv...)
		if err == nil {
			servers = append(servers, s)
		}
		return s, err
	}
	qwIdle, err := startOne("quorumwatch serve, refresh 0", strings.Fields(o.serveEnv), append([]string{qw, "serve", "--web.listen-address", "127.0.0.1:0",
		"--corosync.refresh-interval", "0", "--compat.ha-cluster-exporter"}, strings.Fields(o.serveArgs)...)...)
	if err != nil {
		return err
	}
	control, err := startOne("control: serve, refresh 1s", nil, qw, "serve", "--web.listen-address", "127.0.0.1:0",
		"--corosync.refresh-interval", "1s")
	if err != nil {
		return err
	}
	qt, err := startOne("corosync-quorumtool -p per scrape", nil, self, "-role", "quorumtool-exporter",
		"-listen", "127.0.0.1:0", "-quorumtool", inst.Quorumtool)
	if err != nil {
		return err
	}
	client := scrapeClient(c, o.scrapers)
	defer client.CloseIdleConnections()

	// Both quorumwatch servers have corosync's state (and the quorumtool
	// exporter answers) before anything is measured.
	for _, s := range []*server{qwIdle, control} {
		if err := waitHealthy(ctx, client, s); err != nil {
			return err
		}
	}
	if err := checkQuorumtool(ctx, client, qt, true); err != nil {
		return err
	}
	// The floor: quorumwatch's answer served as it is by a bare server.
	answer, err := fetch(ctx, client, qwIdle)
	if err != nil {
		return err
	}
	bodyFile := filepath.Join(c.Dir(1), "static-body")
	if err := os.WriteFile(bodyFile, answer, 0o644); err != nil {
		return err
	}
	static, err := startOne("static answer, bare net/http", nil, self, "-role", "static", "-listen", "127.0.0.1:0", "-body", bodyFile)
	if err != nil {
		return err
	}
	if err := waitHealthy(ctx, client, static); err != nil {
		return err
	}
	client.CloseIdleConnections()

	idle := func(when string) error {
		if err := sleep(ctx, o.settle); err != nil {
			return err
		}
		lines, err := idleWindow(ctx, o.idle, o.threads, qwIdle, control)
		if err != nil {
			return err
		}
		fmt.Printf("idle, %s:\n", when)
		for _, l := range lines {
			fmt.Println("  " + l)
		}
		return nil
	}
	// corosync's own CPU use (the token going round) is subtracted from
	// what it uses during a round: what is left is the scrapes'.
	cs0, err := procCPU(c.Pid(1))
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := idle("before any scrape"); err != nil {
		return err
	}
	cs1, err := procCPU(c.Pid(1))
	if err != nil {
		return err
	}
	baseline := (cs1 - cs0) / time.Since(t0).Seconds()
	fmt.Printf("corosync's own CPU use meanwhile: %.2f%% of a CPU (subtracted from its use during the rounds)\n", baseline*100)

	rss0, hwm0, err := memory(qwIdle.pid)
	if err != nil {
		return err
	}
	var rounds []round
	for i, spec := range []struct {
		s           *server
		paced, gzip bool
	}{{qwIdle, true, true}, {qt, true, true}, {static, true, true},
		{qwIdle, false, true}, {qt, false, true}, {static, false, true}, {qwIdle, false, false}} {
		switch i {
		case 0:
			fmt.Printf("paced: %d scrapers, each scraping every %v, for %v per round\n", o.scrapers, o.interval, o.duration)
		case 3:
			fmt.Printf("flood: %d scrapers, each scraping again as soon as it has the answer, for %v per round\n", o.scrapers, o.duration)
		}
		r, err := o.load(ctx, client, spec.s, c.Pid(1), spec.paced, spec.gzip)
		if err != nil {
			return err
		}
		r.corosync = max(0, r.corosync-baseline*r.took.Seconds())
		r.print()
		rounds = append(rounds, r)
		if r.errs > 0 {
			return fmt.Errorf("%s: %d scrapes failed", spec.s.name, r.errs)
		}
	}
	if err := checkQuorumtool(ctx, client, qt, false); err != nil {
		return err
	}
	rss1, hwm1, err := memory(qwIdle.pid)
	if err != nil {
		return err
	}
	perScrape := func(r round) float64 { return r.cpu / float64(len(r.lat)) }
	withCorosync := func(r round) float64 { return (r.cpu + r.corosync) / float64(len(r.lat)) }
	for _, trio := range [][3]int{{0, 1, 2}, {3, 4, 5}} {
		q, t, f := rounds[trio[0]], rounds[trio[1]], rounds[trio[2]]
		mode := "paced"
		if trio[0] == 3 {
			mode = "flood"
		}
		fmt.Printf("CPU per scrape, %s: corosync-quorumtool -p per scrape / quorumwatch = %.0fx (the exporters alone), %.0fx (with corosync's); / the bare server = %.0fx, %.0fx\n",
			mode, perScrape(t)/perScrape(q), withCorosync(t)/withCorosync(q), perScrape(t)/perScrape(f), withCorosync(t)/withCorosync(f))
	}
	fmt.Printf("quorumwatch serve's resident memory: %.1f MiB before the load (peak %.1f MiB), %.1f MiB after it (peak %.1f MiB)\n",
		float64(rss0)/1024, float64(hwm0)/1024, float64(rss1)/1024, float64(hwm1)/1024)

	client.CloseIdleConnections()
	if err := idle("after the load, its connections closed"); err != nil {
		return err
	}
	if o.between > 0 {
		return o.betweenScrapes(ctx, c, qwIdle)
	}
	return nil
}

// betweenScrapes scrapes s every o.between, o.betweenN times over one
// keep-alive connection (as one Prometheus server does), and counts the
// server's context switches between the scrapes: in the first 100 ms
// after an answer (the threads that served it going back to sleep), and
// in the rest of the interval.
func (o options) betweenScrapes(ctx context.Context, c *testcluster.Cluster, s *server) error {
	client := scrapeClient(c, 1)
	defer client.CloseIdleConnections()
	url := "http://" + s.addr + "/metrics"
	fmt.Printf("between scrapes: one scraper, every %v, over one connection:\n", o.between)
	for i := 0; i <= o.betweenN; i++ {
		if _, err := scrapeOnce(ctx, client, url, true); err != nil {
			return err
		}
		if i == o.betweenN {
			return nil
		}
		answered := time.Now()
		c0, _, err := switches(s.pid)
		if err != nil {
			return err
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		c1, _, err := switches(s.pid)
		if err != nil {
			return err
		}
		t1 := threadSwitches(s.pid)
		if err := sleep(ctx, time.Until(answered.Add(o.between))); err != nil {
			return err
		}
		c2, tids, err := switches(s.pid)
		if err != nil {
			return err
		}
		fmt.Printf("  %s: %d context switches in the first 0.1 s after scrape %d, %d in the %.1f s after that\n",
			s.name, c1-c0, i+1, c2-c1, time.Since(answered).Seconds()-0.1)
		if o.threads {
			t2 := threadSwitches(s.pid)
			for _, tid := range tids {
				if d := t2[tid] - t1[tid]; d != 0 {
					fmt.Printf("    thread %s (%s): %d\n", tid, threadName(s.pid, tid), d)
				}
			}
		}
	}
	return nil
}

// checkQuorumtool checks that the quorumtool exporter's scrapes so far
// all ran and parsed the tool, and, when first, that it read this node as
// quorate.
// fetch returns the body of s's /metrics.
func fetch(ctx context.Context, client *http.Client, s *server) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: /metrics: %s", s.name, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func checkQuorumtool(ctx context.Context, client *http.Client, s *server, first bool) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	want := []string{"\nbench_quorumtool_failures_total 0\n", "\nha_cluster_scrape_success{collector=\"corosync\"} 1\n"}
	if first {
		want = append(want, "\nha_cluster_corosync_quorate 1\n")
	}
	for _, w := range want {
		if !strings.Contains(string(body), w) {
			return fmt.Errorf("%s: no %q in its metrics:\n%s\nits log:\n%s", s.name, strings.TrimSpace(w), body, s.logText())
		}
	}
	return nil
}

// waitHealthy waits until s's /healthz says the state is read (200:
// quorate).
func waitHealthy(ctx context.Context, client *http.Client, s *server) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not quorate within 30 s: %v\n%s", s.name, err, s.logText())
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}
