package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/corosync-go/quorum"
)

// defaultListen is the exporter's port. Prometheus's list of exporter ports
// (9100-9999) has been full since 2023, so no free number is left there;
// 9959 is not ha_cluster_exporter's 9664, so that both can run side by side
// while dashboards move over. --web.listen-address changes it.
const defaultListen = ":9959"

// defaultRefresh bounds how long a change that corosync does not notify
// (votes or expected votes changed elsewhere without quorate changing) and
// a frozen corosync go unseen: a re-read every 10 s, which corosync answers
// in well under a millisecond per node.
const defaultRefresh = 10 * time.Second

// shutdownLimit bounds a clean stop: requests in flight get this long.
const shutdownLimit = 5 * time.Second

// serveConfig is the parsed command line of quorumwatch serve.
type serveConfig struct {
	listen        []string
	webConfig     string
	telemetryPath string
	systemdSocket bool
	backend       string
	node          uint32
	refresh       time.Duration
	haCompat      bool
	noSelfMetrics bool // --web.disable-exporter-metrics
	logLevel      slog.Level
}

const serveUsageText = `Usage: quorumwatch serve [options]

Serves this node's view of corosync's quorum over HTTP, from one connection
kept open to corosync: Prometheus metrics, a health endpoint, the picture as
JSON, and a live status page. No request waits for corosync.

Endpoints:
  /              status page (live with JavaScript, a snapshot without)
  /metrics       Prometheus metrics (see --web.telemetry-path)
  /healthz       200 when connected and quorate, 503 otherwise; JSON body
  /api/picture   the whole picture as JSON (as quorumwatch --picture --json)
  /events        server-sent events: the page's state at every change
  /-/healthy     200 while quorumwatch serves (a liveness check)

Options:
  --web.listen-address ADDR  where to listen (default :9959); repeat it for
                             more than one address
  --web.config.file PATH     TLS and basic auth: a Prometheus exporter-toolkit
                             web configuration file
  --web.systemd-socket       listen on the sockets systemd passes (socket
                             activation) instead of --web.listen-address
  --web.telemetry-path PATH  the metrics path (default /metrics)
  --backend NAME             auto (default), libquorum, native, or sim (a quiet
                             simulated 5-node cluster)
  --node N                   the simulated node to watch (default 1; sim only)
  --corosync.refresh-interval D
                             re-read votequorum every D (default 10s; 0: never).
                             corosync notifies no change of votes or expected
                             votes that leaves quorate as it was, and a frozen
                             corosync notifies nothing: this bounds how long
                             either goes unseen (D plus 5 s for a frozen one)
  --web.disable-exporter-metrics
                             leave out the metrics about quorumwatch itself
                             (go_*, process_*, promhttp_*), as node_exporter's
                             flag of that name does: they cost most of a
                             scrape's CPU (see docs/benchmarks.md)
  --compat.ha-cluster-exporter
                             also export ha_cluster_exporter's corosync metrics
                             (ha_cluster_corosync_quorate, ..._quorum_votes,
                             ..._member_votes, ha_cluster_scrape_*)
  --log.level LEVEL          debug, info (default), warn or error

It tells systemd (Type=notify) it is ready once it has read corosync's state,
and stops cleanly on SIGTERM or Ctrl-C. Exit codes: 0 stopped by a signal,
1 bad usage or a failure (corosync refused the connection, say).
`

// listFlag is a repeatable string flag; the first use replaces the default.
type listFlag struct {
	vals []string
	set  bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(v string) error {
	if !l.set {
		l.vals, l.set = nil, true
	}
	l.vals = append(l.vals, v)
	return nil
}

// Paths the server owns, which the telemetry path must not take.
var reservedPaths = []string{"/", "/healthz", "/api/picture", "/events", "/-/healthy"}

// parseServeArgs returns the configuration, or an error that says what to
// fix. errHelp asks for the usage text.
func parseServeArgs(args []string) (serveConfig, error) {
	cfg := serveConfig{}
	fs := flag.NewFlagSet("quorumwatch serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	listen := &listFlag{vals: []string{defaultListen}}
	var node uint
	var level string
	fs.Var(listen, "web.listen-address", "")
	fs.StringVar(&cfg.webConfig, "web.config.file", "", "")
	fs.BoolVar(&cfg.systemdSocket, "web.systemd-socket", false, "")
	fs.StringVar(&cfg.telemetryPath, "web.telemetry-path", "/metrics", "")
	fs.StringVar(&cfg.backend, "backend", "auto", "")
	fs.UintVar(&node, "node", 1, "")
	fs.DurationVar(&cfg.refresh, "corosync.refresh-interval", defaultRefresh, "")
	fs.BoolVar(&cfg.haCompat, "compat.ha-cluster-exporter", false, "")
	fs.BoolVar(&cfg.noSelfMetrics, "web.disable-exporter-metrics", false, "")
	fs.StringVar(&level, "log.level", "info", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, errHelp
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q: quorumwatch serve takes options only", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg.listen = listen.vals

	switch cfg.backend {
	case "auto", "sim", "libquorum", "native":
	default:
		return cfg, fmt.Errorf("unknown --backend %q: choose auto, libquorum, native or sim", cfg.backend)
	}
	if node == 0 || node > 1<<32-1 {
		return cfg, fmt.Errorf("--node %d: give a node id from 1", node)
	}
	cfg.node = uint32(node)
	if set["node"] && cfg.backend != "sim" {
		return cfg, errors.New("--node selects a simulated node: use it with --backend sim")
	}
	if cfg.refresh < 0 {
		return cfg, fmt.Errorf("--corosync.refresh-interval %v: give a duration such as 10s, or 0 for none", cfg.refresh)
	}
	p := cfg.telemetryPath
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " {}") || strings.HasPrefix(p, "/static/") {
		return cfg, fmt.Errorf("--web.telemetry-path %q: give a path such as /metrics", p)
	}
	for _, r := range reservedPaths {
		if p == r {
			return cfg, fmt.Errorf("--web.telemetry-path %q is taken by another endpoint: give another, such as /metrics", p)
		}
	}
	if set["web.systemd-socket"] && set["web.listen-address"] && cfg.systemdSocket {
		return cfg, errors.New("--web.systemd-socket listens on systemd's sockets: drop --web.listen-address")
	}
	for _, a := range cfg.listen {
		if strings.HasPrefix(a, "vsock://") {
			return cfg, fmt.Errorf("--web.listen-address %q: vsock is not supported; give host:port", a)
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return cfg, fmt.Errorf("--web.listen-address %q: %v; give host:port such as :9959", a, err)
		}
	}
	if err := cfg.logLevel.UnmarshalText([]byte(level)); err != nil {
		return cfg, fmt.Errorf("--log.level %q: choose debug, info, warn or error", level)
	}
	return cfg, nil
}

// runServe is quorumwatch serve: it serves until ctx ends (exit 0) or a
// failure stops it (exit 1).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, e env) int {
	cfg, err := parseServeArgs(args)
	if errors.Is(err, errHelp) {
		io.WriteString(stdout, serveUsageText)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "quorumwatch serve: %v\nRun 'quorumwatch serve --help' for usage.\n", err)
		return exitError
	}
	_, opts, code := backendOptions(cfg.backend, cfg.node, e, stderr, "quorumwatch serve --help")
	if code != exitOK {
		return code
	}
	if cfg.webConfig != "" {
		// The toolkit reads the file per listener as it starts serving;
		// a mistake in it is better said before anything listens.
		if err := web.Validate(cfg.webConfig); err != nil {
			fmt.Fprintf(stderr, "quorumwatch serve: --web.config.file %s: %v\n", cfg.webConfig, err)
			return exitError
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	if cfg.refresh > 0 {
		opts = append(opts, quorum.WithPictureRefresh(cfg.refresh))
	} else {
		opts = append(opts, quorum.WithPicture())
	}

	listeners, err := cfg.listeners()
	if err != nil {
		fmt.Fprintf(stderr, "quorumwatch serve: %v\n", err)
		return exitError
	}
	s := newServer(cfg, log)
	return s.run(ctx, opts, listeners, e.listening)
}

// listeners opens what the server listens on.
func (cfg serveConfig) listeners() ([]net.Listener, error) {
	if cfg.systemdSocket {
		ls, err := activation.Listeners()
		if err != nil {
			return nil, fmt.Errorf("--web.systemd-socket: %w", err)
		}
		var out []net.Listener
		for _, l := range ls {
			if l != nil {
				out = append(out, l)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("--web.systemd-socket: systemd passed no listening socket (is quorumwatch.socket set up?)")
		}
		return out, nil
	}
	var out []net.Listener
	for _, a := range cfg.listen {
		l, err := net.Listen("tcp", a)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("--web.listen-address %s: %w", a, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// run serves on listeners until ctx ends or the server fails, then stops
// everything it started: it returns the exit code.
func (s *server) run(ctx context.Context, opts []quorum.OpenOption, listeners []net.Listener, listening func([]net.Addr)) int {
	engineCtx, stopEngine := context.WithCancel(context.Background())
	defer stopEngine()
	var wg sync.WaitGroup
	wg.Go(func() { s.watch(engineCtx, opts) })

	handler := s.handler()
	servers := make([]*http.Server, len(listeners))
	served := make(chan error, len(listeners))
	flags := &web.FlagConfig{WebListenAddresses: &[]string{}, WebConfigFile: &s.cfg.webConfig}
	addrs := make([]net.Addr, len(listeners))
	for i, l := range listeners {
		// One http.Server per listener: the toolkit wraps the server's
		// handler when it serves, which on a shared server would race.
		servers[i] = &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		addrs[i] = l.Addr()
		s.log.Info("listening", "address", l.Addr().String(), "telemetry_path", s.cfg.telemetryPath)
		wg.Go(func() {
			err := web.Serve(l, servers[i], flags, s.log)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			served <- err
		})
	}
	if listening != nil {
		listening(addrs)
	}

	code := exitOK
	select {
	case <-ctx.Done():
		s.log.Info("stopping", "reason", context.Cause(ctx))
	case err := <-served:
		if err == nil {
			err = errors.New("the server stopped")
		}
		s.log.Error("serving failed", "err", err)
		code = exitError
	case err := <-s.failed:
		s.log.Error("corosync connection failed for good", "err", err)
		code = exitError
	}
	if _, err := daemon.SdNotify(false, daemon.SdNotifyStopping); err != nil {
		s.log.Warn("telling systemd", "err", err)
	}
	// Live streams would hold Shutdown to its limit: they end first.
	close(s.closing)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownLimit)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			s.log.Warn("requests still running at shutdown were cut", "err", err)
			srv.Close()
		}
	}
	stopEngine()
	wg.Wait()
	return code
}
