//go:build libquorum && linux

// Command notifydelay measures how long after the C API a Go program sees
// each corosync quorum notification on its channel, per backend. bench/notify.sh
// builds and runs it; it needs root, corosync and libquorum.
//
// It has two roles:
//
//	notifydelay -backend libquorum|native|libquorum-raw|native-raw
//
// watches: with libquorum or native it subscribes with
// quorum.Subscribe(TrackCurrent|TrackChanges) through that backend and
// prints one line per nodelist or quorum event, stamped with time.Now() as
// the event is received from the channel:
//
//	ev <unix-ns> <nodelist|quorum> <ring-node>.<ring-seq> <initial 0|1> <members,...> <engine-ns>
//
// (engine-ns is QuorumEvent.Time, when the engine read the notification), the
// same line bench/c/notify_watch prints from its libquorum callbacks. The
// -raw watchers are diagnostics without the engine: the backend's
// connection (internal/libquorum or internal/native) driven the way the C
// watcher drives libquorum, poll(2) then Dispatch, each notification
// stamped in the Dispatch callback (no engine-ns). A watcher prints "ready"
// after the snapshot and exits when its standard input reaches end of file.
//
//	notifydelay -run -cwatch PATH [-nodes 3] [-scenario flap|faults] [-changes 10]
//	            [-method kill|cut] [-runs 1] [-watchers c-control,go-libquorum,go-native]
//	            [-v]
//
// orchestrates: it starts an internal/testcluster cluster, then, -runs
// times, starts watchers in node 1 (the reference C watcher "c", PATH, and
// those -watchers names: c-control, a second C watcher; go-libquorum and
// go-native, one Go watcher per backend; go-libquorum-raw and go-native-raw;
// all subscribed to the same corosync at the same time, started in a random
// order each run), changes the membership as the scenario says (see
// scenario), waiting after each change until every watcher has seen it, and
// stops the watchers. It prints, per run and per watcher, the delay of each
// event after the reference watcher's callback for the same event (same
// kind, same ring id), over all events and per kind: count, median, min,
// max; and with several runs a summary: each run's median, the median of
// those, and the largest delay. The second C watcher is the control:
// corosync writes to its connections one after another, so even two
// identical C clients differ by the order in which they were served.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corosync-go/quorum"
	"github.com/corosync-go/quorum/internal/libquorum"
	"github.com/corosync-go/quorum/internal/model"
	"github.com/corosync-go/quorum/internal/native"
	"github.com/corosync-go/quorum/internal/testcluster"
)

func main() {
	backend := flag.String("backend", "", "watch through this backend: libquorum or native")
	run := flag.Bool("run", false, "orchestrate: start a cluster and the watchers, change the membership, print delays")
	var o options
	flag.StringVar(&o.cwatch, "cwatch", "", "with -run: path of the compiled bench/c/notify_watch.c")
	flag.IntVar(&o.nodes, "nodes", 3, "with -run: cluster size (at least 2; 5 or more for -scenario faults)")
	flag.StringVar(&o.scenario, "scenario", "flap", "with -run: flap (the last node out and back, -changes times) or faults")
	flag.IntVar(&o.changes, "changes", 10, "with -run -scenario flap: membership changes to make")
	flag.StringVar(&o.method, "method", "kill", "with -run -scenario flap: kill (kill and restart corosync) or cut (link down and up)")
	flag.IntVar(&o.runs, "runs", 1, "with -run: runs of the scenario, each with freshly started watchers")
	watchers := flag.String("watchers", strings.Join(watcherNames[:3], ","),
		"with -run: the watchers besides the reference C watcher c, comma-separated")
	flag.BoolVar(&o.verbose, "v", false, "with -run: print every watcher's lines")
	flag.Parse()
	for _, w := range strings.Split(*watchers, ",") {
		if w = strings.TrimSpace(w); w != "" && !slices.Contains(o.watchers, w) {
			o.watchers = append(o.watchers, w)
		}
	}
	var err error
	switch {
	case *run:
		err = orchestrate(o)
	case *backend != "":
		// testcluster's init locks the main goroutine to the main thread,
		// which the orchestrator needs; a watcher is an ordinary program,
		// whose main goroutine runs on whichever thread the scheduler
		// picks. Locked, each event handed to it on its channel would
		// have to wake the main thread in particular.
		runtime.UnlockOSThread()
		err = watch(*backend)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "notifydelay:", err)
		os.Exit(1)
	}
}

// watch is the Go watcher's role.
func watch(name string) error {
	var b quorum.Backend
	switch name {
	case "libquorum":
		b = quorum.LibquorumBackend()
	case "native":
		b = quorum.NativeBackend()
	case "libquorum-raw", "native-raw":
		return watchRaw(name)
	default:
		return fmt.Errorf("-backend %q: want libquorum, native, libquorum-raw or native-raw", name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// The orchestrator closes our standard input to end the watch.
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	// Lossless, so that no event is merged into another and each has its
	// own receive time.
	ch, err := quorum.Subscribe(ctx, quorum.TrackCurrent|quorum.TrackChanges,
		quorum.WithBackend(b), quorum.WithLossless(256))
	if err != nil {
		return err
	}
	snapshot := 2
	var line []byte
	for ev := range ch {
		now := time.Now()
		switch ev.Kind {
		case quorum.EventNodeList, quorum.EventQuorum:
		case quorum.EventError:
			if ctx.Err() != nil {
				return nil
			}
			return ev.Err
		default:
			fmt.Fprintf(os.Stderr, "notifydelay: %s: %v\n", name, ev)
			continue
		}
		line = appendEvent(line[:0], now, ev.Kind.String(), ev.RingID.NodeID, ev.RingID.Seq, ev.Initial, ev.Members)
		line = append(line[:len(line)-1], ' ')
		line = strconv.AppendInt(line, ev.Time.UnixNano(), 10)
		line = append(line, '\n')
		if ev.Initial {
			if snapshot--; snapshot == 0 {
				line = append(line, "ready\n"...)
			}
		}
		if _, err := os.Stdout.Write(line); err != nil {
			return err
		}
	}
	return nil
}

// appendEvent appends an "ev" line without the engine's time.
func appendEvent(line []byte, at time.Time, kind string, ringNode uint32, ringSeq uint64, initial bool, members []uint32) []byte {
	line = append(line, "ev "...)
	line = strconv.AppendInt(line, at.UnixNano(), 10)
	line = append(line, ' ')
	line = append(line, kind...)
	line = fmt.Appendf(line, " %d.%d %d ", ringNode, ringSeq, boolInt(initial))
	for i, m := range members {
		if i > 0 {
			line = append(line, ',')
		}
		line = strconv.AppendUint(line, uint64(m), 10)
	}
	return append(line, '\n')
}

// rawConn is what internal/libquorum's and internal/native's connections
// both are.
type rawConn interface {
	Fd() int
	Dispatch(func(model.Notification)) error
	TrackStart(context.Context, uint32) error
	Close() error
}

// watchRaw watches through a backend's connection without the engine, the
// way bench/c/notify_watch.c uses libquorum: poll(2) on the connection's
// descriptor and standard input, then Dispatch, stamping each notification
// as the callback receives it. Beside the engine's watcher of the same
// backend, it tells the backend's part of a delay from the engine's.
func watchRaw(name string) error {
	ctx := context.Background()
	var c rawConn
	var err error
	if name == "libquorum-raw" {
		c, err = libquorum.Dial(ctx, nil)
	} else {
		c, err = native.Dial(ctx, nil)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	// corosync's CS_TRACK_CURRENT|CS_TRACK_CHANGES: the snapshot, a
	// nodelist then a quorum notification, is queued before this returns.
	if err := c.TrackStart(ctx, 0x03); err != nil {
		return err
	}
	snapshot := 2
	var line []byte
	fn := func(n model.Notification) {
		now := time.Now()
		kind := "quorum"
		if n.Kind == model.KindNodeList {
			kind = "nodelist"
		}
		initial := snapshot > 0
		line = appendEvent(line, now, kind, n.Ring.NodeID, n.Ring.Seq, initial, n.Members)
		if initial {
			if snapshot--; snapshot == 0 {
				line = append(line, "ready\n"...)
			}
		}
	}
	fds := []unix.PollFd{{Fd: int32(c.Fd()), Events: unix.POLLIN}, {Fd: 0, Events: unix.POLLIN}}
	buf := make([]byte, 64)
	for {
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		if fds[0].Revents != 0 {
			line = line[:0]
			err := c.Dispatch(fn)
			if len(line) > 0 {
				if _, werr := os.Stdout.Write(line); werr != nil {
					return werr
				}
			}
			if err != nil {
				return err
			}
		}
		if fds[1].Revents != 0 {
			// The orchestrator closes our standard input to end the watch.
			if n, err := unix.Read(0, buf); n == 0 || (err != nil && err != unix.EINTR && err != unix.EAGAIN) {
				return nil
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// event is one parsed "ev" line.
type event struct {
	at      int64 // unix ns when the watcher saw it
	engine  int64 // Go watchers: when the engine read it; 0 for C
	kind    string
	ring    string
	initial bool
	members string
}

func (e event) key() string { return e.kind + " " + e.ring }

func parseEvent(line string) (event, error) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "ev" {
		return event{}, fmt.Errorf("bad line %q", line)
	}
	at, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return event{}, fmt.Errorf("bad time in %q", line)
	}
	e := event{at: at, kind: f[2], ring: f[3], initial: f[4] == "1"}
	if len(f) > 5 {
		e.members = f[5]
	}
	if len(f) > 6 {
		if e.engine, err = strconv.ParseInt(f[6], 10, 64); err != nil {
			return event{}, fmt.Errorf("bad engine time in %q", line)
		}
	}
	return e, nil
}

// watcher is one watcher process in node 1 and what it printed so far.
type watcher struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu     sync.Mutex
	events []event
	ready  bool
	err    error
	done   chan struct{}
	seen   chan struct{} // receives a token after every line (never blocks)
}

func (w *watcher) read(r io.Reader, verbose bool) {
	defer close(w.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if verbose {
			fmt.Printf("%-17s %s\n", w.name, line)
		}
		w.mu.Lock()
		switch {
		case line == "ready":
			w.ready = true
		case strings.HasPrefix(line, "ev "):
			e, err := parseEvent(line)
			if err != nil {
				w.err = err
			} else {
				w.events = append(w.events, e)
			}
		}
		w.mu.Unlock()
		select {
		case w.seen <- struct{}{}:
		default:
		}
	}
}

// quorumEvents returns how many non-initial quorum events the watcher has
// printed, and the members of the last one.
func (w *watcher) quorumEvents() (n int, last string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		if !e.initial && e.kind == "quorum" {
			n++
			last = e.members
		}
	}
	return n, last
}

// step is one membership change of a scenario: do makes it, and node 1's
// members are then want.
type step struct {
	what string
	do   func() error
	want string
}

// scenario returns the steps of one run and the membership the cluster is
// back to after them.
//
// "flap" alternately takes the last node out (kill, or with method cut its
// link down) and brings it back, changes times. "faults" on 5 or more nodes
// is a mix that a real outage looks like: the last node killed, the one
// before cut off, a third killed (node 1's partition of nodes-3 nodes loses
// quorum on 5 nodes), then the third restarted, the cut healed, the first
// restarted, and last node 2 cut off and healed (a partition in which node 1
// keeps the majority): 8 changes.
func scenario(cl *testcluster.Cluster, name string, nodes, changes int, method string) ([]step, error) {
	up := make([]bool, nodes+1)
	for i := 1; i <= nodes; i++ {
		up[i] = true
	}
	members := func() string {
		var b strings.Builder
		for i := 1; i <= nodes; i++ {
			if up[i] {
				if b.Len() > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.Itoa(i))
			}
		}
		return b.String()
	}
	var steps []step
	add := func(what string, i int, in bool, do func(int) error) {
		up[i] = in
		steps = append(steps, step{what: fmt.Sprintf("%s node %d", what, i), do: func() error { return do(i) }, want: members()})
	}
	switch name {
	case "flap":
		last := nodes
		for i := 0; i < changes; i++ {
			down := i%2 == 0
			switch {
			case down && method == "kill":
				add("kill", last, false, cl.Kill)
			case down:
				add("cut", last, false, cl.Cut)
			case method == "kill":
				add("restart", last, true, cl.Start)
			default:
				add("heal", last, true, cl.Heal)
			}
		}
		if changes%2 == 1 {
			// Back to the whole cluster, so that the next run starts
			// where this one did.
			if method == "kill" {
				add("restart", last, true, cl.Start)
			} else {
				add("heal", last, true, cl.Heal)
			}
		}
	case "faults":
		if nodes < 5 {
			return nil, fmt.Errorf("-scenario faults needs at least 5 nodes, not %d", nodes)
		}
		n := nodes
		add("kill", n, false, cl.Kill)
		add("cut", n-1, false, cl.Cut)
		add("kill", n-2, false, cl.Kill)
		add("restart", n-2, true, cl.Start)
		add("heal", n-1, true, cl.Heal)
		add("restart", n, true, cl.Start)
		add("cut", 2, false, cl.Cut)
		add("heal", 2, true, cl.Heal)
	default:
		return nil, fmt.Errorf("-scenario %q: want flap or faults", name)
	}
	return steps, nil
}

// watcherNames are the watchers besides the reference C watcher "c".
var watcherNames = []string{"c-control", "go-libquorum", "go-native", "go-libquorum-raw", "go-native-raw"}

type options struct {
	cwatch   string
	nodes    int
	changes  int
	method   string
	scenario string
	runs     int
	watchers []string
	verbose  bool
}

func orchestrate(o options) error {
	if o.cwatch == "" {
		return errors.New("-run needs -cwatch, the compiled bench/c/notify_watch.c")
	}
	if o.nodes < 2 || o.changes < 1 || o.runs < 1 {
		return fmt.Errorf("-nodes %d -changes %d -runs %d: want at least 2 nodes, 1 change and 1 run",
			o.nodes, o.changes, o.runs)
	}
	if o.method != "kill" && o.method != "cut" {
		return fmt.Errorf("-method %q: want kill or cut", o.method)
	}
	for _, w := range o.watchers {
		if !slices.Contains(watcherNames, w) {
			return fmt.Errorf("-watchers: unknown watcher %q: want some of %s", w, strings.Join(watcherNames, ","))
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// A run takes about a minute; the bound keeps a stuck cluster from
	// holding the machine, and a signal tears everything down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(o.runs)*15*time.Minute)
	defer cancel()

	fmt.Printf("starting a %d-node cluster...\n", o.nodes)
	cl, err := testcluster.New(ctx, o.nodes)
	if err != nil {
		return err
	}
	defer cl.Close()
	steps, err := scenario(cl, o.scenario, o.nodes, o.changes, o.method)
	if err != nil {
		return err
	}
	argv := map[string][]string{
		"c":            {o.cwatch},
		"c-control":    {o.cwatch},
		"go-libquorum": {self, "-backend", "libquorum"},
		"go-native":    {self, "-backend", "native"},
		// Diagnostics: the backends' connections without the engine.
		"go-libquorum-raw": {self, "-backend", "libquorum-raw"},
		"go-native-raw":    {self, "-backend", "native-raw"},
	}
	var results []runResult
	for r := 1; r <= o.runs; r++ {
		names := append([]string{"c"}, o.watchers...)
		// corosync serves its connections in turn; a random start order
		// per run keeps any fixed position from favouring one watcher
		// every time.
		rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		fmt.Printf("run %d/%d: watchers started in the order %s\n", r, o.runs, strings.Join(names, ", "))
		ws, err := runOnce(ctx, cl, names, argv, steps, o.verbose)
		if err != nil {
			return fmt.Errorf("run %d: %w", r, err)
		}
		res := measure(ws)
		report(res, fmt.Sprintf("run %d", r))
		results = append(results, res)
	}
	if o.runs > 1 {
		summary(results)
	}
	return nil
}

// runOnce starts the watchers in node 1 in the order given, waits for their
// snapshots, goes through the steps, and stops the watchers. It returns
// them with what they printed, the reference watcher "c" first.
func runOnce(ctx context.Context, cl *testcluster.Cluster, names []string, argv map[string][]string,
	steps []step, verbose bool) (ws []*watcher, err error) {
	defer func() {
		for _, w := range ws {
			_ = w.stdin.Close()
		}
		for _, w := range ws {
			select {
			case <-w.done:
			case <-time.After(10 * time.Second):
				_ = w.cmd.Process.Kill()
				<-w.done
			}
			_ = w.cmd.Wait()
		}
	}()
	for _, name := range names {
		w := &watcher{name: name, done: make(chan struct{}), seen: make(chan struct{}, 1)}
		a := argv[name]
		w.cmd = cl.Exec(ctx, 1, a[0], a[1:]...)
		w.cmd.Stderr = os.Stderr
		if w.stdin, err = w.cmd.StdinPipe(); err != nil {
			return ws, err
		}
		out, err := w.cmd.StdoutPipe()
		if err != nil {
			return ws, err
		}
		if err := w.cmd.Start(); err != nil {
			return ws, fmt.Errorf("%s: %w", name, err)
		}
		ws = append(ws, w)
		go w.read(out, verbose)
	}
	if err := waitAll(ctx, ws, "the snapshot", func(w *watcher) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.ready
	}); err != nil {
		return ws, err
	}
	for i, s := range steps {
		before := make(map[*watcher]int, len(ws))
		for _, w := range ws {
			before[w], _ = w.quorumEvents()
		}
		if err := s.do(); err != nil {
			return ws, err
		}
		what := fmt.Sprintf("change %d, %s (members %s)", i+1, s.what, s.want)
		if err := waitAll(ctx, ws, what, func(w *watcher) bool {
			n, last := w.quorumEvents()
			return n > before[w] && last == s.want
		}); err != nil {
			return ws, err
		}
		fmt.Printf("  change %d/%d: %s, members %s\n", i+1, len(steps), s.what, s.want)
		// A short quiet spell keeps each change's events apart from the
		// next change's.
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ws, ctx.Err()
		}
	}
	// The report takes the first C watcher as its reference, wherever it
	// started.
	slices.SortStableFunc(ws, func(a, b *watcher) int { return boolInt(a.name != "c") - boolInt(b.name != "c") })
	return ws, nil
}

// waitAll waits until cond holds for every watcher, a watcher fails or
// exits, or 90 s pass (a killed node leaves within seconds).
func waitAll(ctx context.Context, ws []*watcher, what string, cond func(*watcher) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		var pending *watcher
		for _, w := range ws {
			w.mu.Lock()
			err := w.err
			w.mu.Unlock()
			if err != nil {
				return fmt.Errorf("%s: %w", w.name, err)
			}
			select {
			case <-w.done:
				if !cond(w) {
					return fmt.Errorf("%s exited before %s", w.name, what)
				}
			default:
			}
			if pending == nil && !cond(w) {
				pending = w
			}
		}
		if pending == nil {
			return nil
		}
		select {
		case <-pending.seen:
		case <-pending.done:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %s: %w", what, pending.name, ctx.Err())
		}
	}
}

// kinds are the rows of a report: all events, then each kind alone (a
// change's nodelist event can come a millisecond or more before its quorum
// event, and a watcher woken in between reads them apart, another one
// together).
var kinds = []string{"all", "nodelist", "quorum"}

// series is one watcher's delays for one kind of event in one run, in µs,
// sorted.
type series struct {
	delay   []float64 // after the reference watcher's callback
	engine  []float64 // Go watchers: engine read -> channel receive
	missing int       // events the reference watcher did not see
}

// runResult is what one run measured: per watcher (other than the
// reference), per kind.
type runResult struct {
	ref      string
	refCount int
	watchers []string
	rows     map[string]map[string]*series // watcher -> kind -> series
}

// measure matches each watcher's events with the reference watcher's (the
// first of ws) by kind and ring id.
func measure(ws []*watcher) runResult {
	ref := map[string]int64{}
	ws[0].mu.Lock()
	for _, e := range ws[0].events {
		if !e.initial {
			ref[e.key()] = e.at
		}
	}
	ws[0].mu.Unlock()
	res := runResult{ref: ws[0].name, refCount: len(ref), rows: map[string]map[string]*series{}}
	for _, w := range ws[1:] {
		res.watchers = append(res.watchers, w.name)
		rows := map[string]*series{}
		for _, kind := range kinds {
			s := &series{}
			w.mu.Lock()
			for _, e := range w.events {
				if e.initial || (kind != "all" && e.kind != kind) {
					continue
				}
				t0, ok := ref[e.key()]
				if !ok {
					s.missing++
					continue
				}
				s.delay = append(s.delay, float64(e.at-t0)/1e3)
				if e.engine != 0 {
					s.engine = append(s.engine, float64(e.at-e.engine)/1e3)
				}
			}
			w.mu.Unlock()
			slices.Sort(s.delay)
			slices.Sort(s.engine)
			rows[kind] = s
		}
		res.rows[w.name] = rows
	}
	// Stable rows whatever the start order.
	slices.SortFunc(res.watchers, func(a, b string) int {
		return slices.Index(watcherNames, a) - slices.Index(watcherNames, b)
	})
	return res
}

// report prints one run's delays after the reference watcher, per event.
func report(res runResult, title string) {
	fmt.Printf("\n%s: %d events after the snapshot (nodelist and quorum) seen by %s;\n", title, res.refCount, res.ref)
	fmt.Println("delay of the same event (kind and ring id) after it, per watcher, in microseconds:")
	fmt.Printf("%-17s %-8s %6s %9s %9s %9s   %s\n", "watcher", "events", "count", "median", "min", "max",
		"engine read->channel median/max")
	for _, kind := range kinds {
		for _, name := range res.watchers {
			s := res.rows[name][kind]
			d := s.delay
			if len(d) == 0 {
				fmt.Printf("%-17s %-8s no matching events\n", name, kind)
				continue
			}
			line := fmt.Sprintf("%-17s %-8s %6d %+9.0f %+9.0f %+9.0f", name, kind, len(d), median(d), d[0], d[len(d)-1])
			if len(s.engine) > 0 {
				line += fmt.Sprintf("   %.0f / %.0f", median(s.engine), s.engine[len(s.engine)-1])
			}
			if s.missing > 0 {
				line += fmt.Sprintf("   (%d events not seen by %s)", s.missing, res.ref)
			}
			fmt.Println(line)
		}
	}
}

// summary prints, over all runs, per watcher and kind: each run's median
// delay, the median of those, and the largest delay of any event.
func summary(rs []runResult) {
	fmt.Printf("\nsummary of %d runs, delay after %s in microseconds:\n", len(rs), rs[0].ref)
	fmt.Printf("%-17s %-8s %9s %9s   %s\n", "watcher", "events", "median*", "max", "median of each run")
	for _, kind := range kinds {
		for _, name := range rs[0].watchers {
			var meds, all []float64
			for _, r := range rs {
				s := r.rows[name][kind]
				if len(s.delay) > 0 {
					meds = append(meds, median(s.delay))
					all = append(all, s.delay...)
				}
			}
			if len(meds) == 0 {
				continue
			}
			per := make([]string, len(meds))
			for i, m := range meds {
				per[i] = fmt.Sprintf("%+.0f", m)
			}
			sorted := slices.Clone(meds)
			slices.Sort(sorted)
			slices.Sort(all)
			fmt.Printf("%-17s %-8s %+9.0f %+9.0f   %s\n", name, kind, median(sorted), all[len(all)-1], strings.Join(per, " "))
		}
	}
	fmt.Println("(median*: the median of the runs' medians)")
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
