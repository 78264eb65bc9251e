package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/corosync-go/quorum"
)

// Exit codes. Usage errors share 1 with runtime errors because 2 already
// means "not quorate" in --once mode, as with corosync-quorumtool.
const (
	exitOK         = 0
	exitError      = 1
	exitNotQuorate = 2
	// exitInterrupted ends --once when Ctrl-C or SIGTERM came before the
	// state, as shells report a command killed by SIGINT: neither quorate
	// (0) nor not quorate (2) would be true.
	exitInterrupted = 130
)

const (
	defaultTimeout = 10 * time.Second
	// defaultSimPace lets a person follow the scenario step by step.
	defaultSimPace  = 700 * time.Millisecond
	simClusterNodes = 5
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env holds what tests replace: the pace of the --sim scenario, and the
// simulated cluster behind --backend sim.
type env struct {
	pace time.Duration
	sim  *quorum.SimCluster // nil: a fresh cluster of simClusterNodes nodes
	// listening, when set, learns the addresses serve listens on (a test
	// asks for 127.0.0.1:0), once they accept connections.
	listening func([]net.Addr)
}

// run is the whole command: it parses args, watches the quorum stream until
// ctx ends (or the stream does), and returns the exit code. It writes events
// to stdout and diagnostics to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, stdout, stderr, env{pace: defaultSimPace})
}

// config is the parsed command line.
type config struct {
	backend string
	flags   quorum.TrackFlags
	json    bool
	once    bool
	timeout time.Duration
	sim     bool
	node    uint32
	picture bool
}

const usageText = `Usage: quorumwatch [options]
       quorumwatch serve [options]   (a Prometheus exporter, health endpoint and
                                      status page: quorumwatch serve --help)

Prints corosync's quorum and membership events, one line per event, until
interrupted (Ctrl-C). With --once it prints the current state and exits
0 when quorate, 2 when not, 1 on error.

Options:
  --backend NAME   auto (default: the backend built into this program),
                   libquorum, native, or sim (a quiet simulated 5-node cluster)
  --flags LIST     comma-separated: current, changes, changes-only
                   (default current,changes)
  --json           print one JSON object per line instead of text
  --once           print the current state and exit (0 quorate, 2 not, 1 error)
  --picture        the whole picture (votes, thresholds, flags, node names,
                   quorum device) instead of events: one line per change, or
                   with --once a summary laid out as corosync-quorumtool -s
  --timeout D      how long to try connecting, and the limit for --once
                   (default 10s)
  --sim            play a simulated 5-node scenario (nodes leave, a partition
                   forms and heals, nodes rejoin, corosync restarts), then exit
  --node N         the simulated node whose view is shown (default 1)

Exit codes: 0 success (or quorate with --once), 1 error or bad usage,
2 not quorate (--once only).
`

// parseArgs returns the configuration, or an error that says what to fix.
// errHelp asks for the usage text.
func parseArgs(args []string) (config, error) {
	cfg := config{}
	fs := flag.NewFlagSet("quorumwatch", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by the caller, once
	fs.Usage = func() {}
	var flagList string
	var node uint
	fs.StringVar(&cfg.backend, "backend", "auto", "")
	fs.StringVar(&flagList, "flags", "current,changes", "")
	fs.BoolVar(&cfg.json, "json", false, "")
	fs.BoolVar(&cfg.once, "once", false, "")
	fs.DurationVar(&cfg.timeout, "timeout", defaultTimeout, "")
	fs.BoolVar(&cfg.sim, "sim", false, "")
	fs.UintVar(&node, "node", 1, "")
	fs.BoolVar(&cfg.picture, "picture", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, errHelp
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q: quorumwatch takes options only", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	switch cfg.backend {
	case "auto", "sim", "libquorum", "native":
	default:
		return cfg, fmt.Errorf("unknown --backend %q: choose auto, libquorum, native or sim", cfg.backend)
	}
	flags, err := parseTrackFlags(flagList)
	if err != nil {
		return cfg, err
	}
	cfg.flags = flags
	if cfg.timeout <= 0 {
		return cfg, fmt.Errorf("--timeout %v: give a positive duration such as 10s", cfg.timeout)
	}
	if node == 0 || node > 1<<32-1 {
		return cfg, fmt.Errorf("--node %d: give a node id from 1", node)
	}
	cfg.node = uint32(node)
	if cfg.sim {
		if set["backend"] && cfg.backend != "sim" {
			return cfg, fmt.Errorf("--sim plays a simulated cluster: drop --backend %s", cfg.backend)
		}
		cfg.backend = "sim"
		if cfg.once {
			return cfg, errors.New("--sim and --once do not combine: use --backend sim --once for the simulated cluster's state")
		}
		if cfg.flags&(quorum.TrackChanges|quorum.TrackChangesOnly) == 0 {
			return cfg, errors.New("--sim shows changes: include changes or changes-only in --flags")
		}
	}
	if set["node"] && cfg.backend != "sim" {
		return cfg, errors.New("--node selects a simulated node: use it with --sim or --backend sim")
	}
	if cfg.picture && (cfg.sim || set["flags"]) {
		return cfg, errors.New("--picture shows every change of the whole picture: drop --sim and --flags")
	}
	if cfg.once && set["flags"] {
		return cfg, errors.New("--once always asks for the current state: drop --flags")
	}
	if cfg.once {
		cfg.flags = quorum.TrackCurrent
	}
	return cfg, nil
}

var errHelp = errors.New("help requested")

// parseTrackFlags reads a --flags list such as "current,changes".
func parseTrackFlags(list string) (quorum.TrackFlags, error) {
	var f quorum.TrackFlags
	for _, name := range strings.Split(list, ",") {
		switch strings.TrimSpace(name) {
		case "current":
			f |= quorum.TrackCurrent
		case "changes":
			f |= quorum.TrackChanges
		case "changes-only":
			f |= quorum.TrackChangesOnly
		case "":
			return 0, fmt.Errorf("--flags %q has an empty item: give a comma-separated list of current, changes, changes-only", list)
		default:
			return 0, fmt.Errorf("--flags: unknown item %q: give a comma-separated list of current, changes, changes-only", name)
		}
	}
	return f, nil
}

// backendByName resolves --backend. A nil Backend with a nil error means the
// engine's default (the first real backend built into this program). sim is
// the cluster behind "sim"; node is the simulated node to connect to.
func backendByName(name string, sim *quorum.SimCluster, node uint32) (quorum.Backend, error) {
	switch name {
	case "auto":
		return nil, nil
	case "sim":
		return sim.Backend(node), nil
	case "libquorum":
		// Without -tags libquorum this is a stub whose Connect says how
		// to build the backend in.
		return quorum.LibquorumBackend(), nil
	case "native":
		return quorum.NativeBackend(), nil
	}
	return nil, fmt.Errorf("%w: unknown backend %q", quorum.ErrInvalidParam, name)
}

func runEnv(ctx context.Context, args []string, stdout, stderr io.Writer, e env) int {
	if len(args) > 0 && args[0] == "serve" {
		return runServe(ctx, args[1:], stdout, stderr, e)
	}
	cfg, err := parseArgs(args)
	if errors.Is(err, errHelp) {
		io.WriteString(stdout, usageText)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "quorumwatch: %v\nRun 'quorumwatch --help' for usage.\n", err)
		return exitError
	}

	sim, opts, code := backendOptions(cfg.backend, cfg.node, e, stderr, "quorumwatch --help")
	if code != exitOK {
		return code
	}

	w := &watcher{cfg: cfg, out: newPrinter(stdout, cfg.json), stderr: stderr}
	switch {
	case cfg.picture && cfg.once:
		return w.pictureOnce(ctx, opts)
	case cfg.picture:
		return w.streamPictures(ctx, opts)
	}
	if cfg.once {
		return w.once(ctx, opts)
	}
	var sc *scenario
	if cfg.sim {
		sc = newScenario(sim, cfg.node, stderr)
	}
	return w.stream(ctx, opts, sc, e.pace)
}

// backendOptions resolves --backend and --node, shared by the watcher and
// serve: the simulated cluster behind "sim" (nil otherwise) and the options
// that select the backend. A bad choice is reported on stderr, pointing to
// help, and returns exitError.
func backendOptions(name string, node uint32, e env, stderr io.Writer, help string) (*quorum.SimCluster, []quorum.OpenOption, int) {
	var sim *quorum.SimCluster
	var err error
	if name == "sim" {
		sim = e.sim
		if sim == nil {
			if sim, err = quorum.NewSimClusterN(simClusterNodes); err != nil {
				fmt.Fprintf(stderr, "quorumwatch: %v\n", err)
				return nil, nil, exitError
			}
		}
		if _, _, _, err := sim.View(node); errors.Is(err, quorum.ErrInvalidParam) {
			fmt.Fprintf(stderr, "quorumwatch: --node %d: %v\nRun '%s' for usage.\n", node, err, help)
			return nil, nil, exitError
		}
	}
	backend, err := backendByName(name, sim, node)
	if err != nil {
		fmt.Fprintf(stderr, "quorumwatch: %v\n", err)
		return nil, nil, exitError
	}
	var opts []quorum.OpenOption
	if backend != nil {
		opts = append(opts, quorum.WithBackend(backend))
	}
	return sim, opts, exitOK
}

// watcher runs one subscription and prints it.
type watcher struct {
	cfg    config
	out    *printer
	stderr io.Writer
}

// fail reports an error on stderr and, with --json, as an error object on
// stdout, so that a script reading stdout sees it too.
func (w *watcher) fail(format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(w.stderr, "quorumwatch: %s\n", msg)
	if w.cfg.json {
		_ = w.out.printError(time.Now(), msg)
	}
	return exitError
}

// failed reports on stderr an error that ended the stream: the stream has
// already shown it as its last event.
func (w *watcher) failed(err error) int {
	fmt.Fprintf(w.stderr, "quorumwatch: %v\n", err)
	return exitError
}

// connectFailed reports a failed Open, with what to check.
func (w *watcher) connectFailed(err error) int {
	switch {
	case w.cfg.backend == "auto" && errors.Is(err, quorum.ErrNotSupported):
		return w.fail("%v\n(--backend sim or --sim run against a simulated cluster)", err)
	case errors.Is(err, quorum.ErrConnectionLost):
		return w.fail("%v\nIs corosync running on this node (systemctl status corosync)? "+
			"quorumwatch must also run in corosync's network namespace and see its /dev/shm.", err)
	}
	return w.fail("%v", err)
}

// open connects within --timeout; the Client then lives until closed.
func (w *watcher) open(ctx context.Context, opts []quorum.OpenOption) (*quorum.Client, error) {
	octx, cancel := context.WithTimeout(ctx, w.cfg.timeout)
	defer cancel()
	return quorum.Open(octx, opts...)
}

// openOnce connects for --once, as corosync-quorumtool does: a corosync that
// is not running is an error at once, and only one that is still starting
// (ErrTryAgain) is waited for, within ctx.
func (w *watcher) openOnce(ctx context.Context, opts []quorum.OpenOption) (*quorum.Client, error) {
	opts = append(opts[:len(opts):len(opts)], quorum.WithoutReconnect())
	delay := 50 * time.Millisecond
	for {
		c, err := quorum.Open(ctx, opts...)
		if err == nil || !errors.Is(err, quorum.ErrTryAgain) {
			return c, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("corosync was still starting when --timeout %v ran out: %w", w.cfg.timeout, err)
		case <-t.C:
		}
		delay = min(2*delay, time.Second)
	}
}

// once prints the current state and returns exitOK if quorate, exitNotQuorate
// if not, exitError if the state is not known within --timeout, and
// exitInterrupted if the user stopped it first.
func (w *watcher) once(ctx context.Context, opts []quorum.OpenOption) int {
	tctx, cancel := context.WithTimeout(ctx, w.cfg.timeout)
	defer cancel()
	c, err := w.openOnce(tctx, w.withNames(opts))
	if err != nil {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return w.connectFailed(err)
	}
	defer c.Close()
	w.learnNames(tctx, c)
	ch, err := c.Subscribe(tctx, quorum.TrackCurrent)
	if err != nil {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return w.fail("%v", err)
	}
	var last *quorum.QuorumEvent
	var failed error
	for ev := range ch {
		if err := w.out.print(ev); err != nil {
			cancel()
			drain(ch)
			return w.fail("writing output: %v", err)
		}
		switch {
		case ev.Kind == quorum.EventQuorum:
			last = &ev
		case ev.Err != nil:
			failed = ev.Err
		}
	}
	switch {
	case last != nil && last.Quorate:
		return exitOK
	case last != nil:
		return exitNotQuorate
	case ctx.Err() != nil:
		return exitInterrupted
	case failed != nil:
		return w.failed(failed)
	default:
		return w.fail("corosync accepted the connection but sent no quorum state within --timeout %v "+
			"(is it frozen or overloaded?)", w.cfg.timeout)
	}
}

// withNames adds the picture to a text stream's Client, for node names.
func (w *watcher) withNames(opts []quorum.OpenOption) []quorum.OpenOption {
	if w.cfg.json {
		return opts // scripts get ids; names are in --picture's JSON
	}
	return append(opts[:len(opts):len(opts)], quorum.WithPicture())
}

// learnNames waits, within --timeout, for c's first picture, so that even
// the snapshot's lines have names, then lets the printer read the names
// from c's cache. Without the picture (JSON, or corosync unreachable) lines
// show ids alone.
func (w *watcher) learnNames(ctx context.Context, c *quorum.Client) {
	if w.cfg.json {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.timeout)
	defer cancel()
	if ch, err := c.SubscribePicture(ctx); err == nil {
		for p := range ch {
			if p.Connected || p.Err != nil {
				break
			}
		}
		cancel()
		for range ch {
		}
	}
	w.out.names = func() []quorum.NodeInfo { return c.Picture().Nodes }
}

// stream prints events until ctx ends (exit 0), the stream ends in error
// (exit 1), or, with a scenario, the scenario has played out (exit 0).
func (w *watcher) stream(ctx context.Context, opts []quorum.OpenOption, sc *scenario, pace time.Duration) int {
	var subOpts []quorum.SubscribeOption
	if sc != nil {
		// The demo shows every event of the scenario: nothing is
		// coalesced, and the scenario is far smaller than the buffer.
		subOpts = append(subOpts, quorum.WithLossless(64))
	}
	c, err := w.open(ctx, w.withNames(opts))
	if err != nil {
		if ctx.Err() != nil {
			return exitOK // interrupted while connecting
		}
		return w.connectFailed(err)
	}
	defer c.Close()
	w.learnNames(ctx, c)
	subCtx, endSub := context.WithCancel(ctx)
	defer endSub()
	ch, err := c.Subscribe(subCtx, w.cfg.flags, subOpts...)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		return w.fail("%v", err)
	}

	// Two timers drive a scenario: pace separates a step from the previous
	// one's last event, and stepLimit bounds the wait for that event.
	pacer := newTimer()
	stepLimit := newTimer()
	defer pacer.stop()
	defer stepLimit.stop()
	if sc != nil {
		if w.cfg.flags&(quorum.TrackCurrent|quorum.TrackChanges) != 0 {
			sc.expectSnapshot()
			stepLimit.start(w.cfg.timeout)
		} else {
			pacer.start(pace)
		}
	}

	var last quorum.QuorumEvent
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return w.ended(last, subCtx.Err() != nil)
			}
			last = ev
			if err := w.out.print(ev); err != nil {
				endSub()
				drain(ch)
				return w.fail("writing output: %v", err)
			}
			if sc != nil && sc.observe(ev) {
				stepLimit.stop()
				pacer.start(pace)
			}
		case <-pacer.c:
			pacer.fired()
			if sc.done() {
				endSub() // the channel closes next
				continue
			}
			if err := sc.step(); err != nil {
				endSub()
				drain(ch)
				return w.fail("sim: %v", err)
			}
			stepLimit.start(w.cfg.timeout)
		case <-stepLimit.c:
			stepLimit.fired()
			endSub()
			drain(ch)
			return w.fail("sim: %s: the expected events did not come within --timeout %v", sc.current(), w.cfg.timeout)
		}
	}
}

// ended turns the end of a stream into an exit code: an error event, or an
// event with an error when nobody asked the stream to stop, is a failure.
func (w *watcher) ended(last quorum.QuorumEvent, stopped bool) int {
	if last.Kind == quorum.EventError || (last.Err != nil && !stopped) {
		return w.failed(last.Err)
	}
	return exitOK
}

// drain waits for a channel whose subscription was cancelled to close.
func drain(ch <-chan quorum.QuorumEvent) {
	for range ch {
	}
}

// timer is a stoppable one-shot timer whose channel is nil while idle, so
// that a select case on it never fires then.
type timer struct {
	t *time.Timer
	c <-chan time.Time
}

func newTimer() *timer { return &timer{} }

func (t *timer) start(d time.Duration) {
	t.stop()
	t.t = time.NewTimer(d)
	t.c = t.t.C
}

func (t *timer) fired() { t.t, t.c = nil, nil }

func (t *timer) stop() {
	if t.t != nil {
		t.t.Stop()
	}
	t.t, t.c = nil, nil
}
