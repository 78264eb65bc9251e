//go:build libquorum && linux

// Command notifydelay measures how long after the C API a Go program sees
// each corosync quorum notification on its channel, per backend. bench/notify.sh
// builds and runs it; it needs root, corosync and libquorum.
//
// It has two roles:
//
//	notifydelay -backend libquorum|native
//
// watches: it subscribes with quorum.Subscribe(TrackCurrent|TrackChanges)
// through that backend and prints one line per nodelist or quorum event,
// stamped with time.Now() as the event is received from the channel:
//
//	ev <unix-ns> <nodelist|quorum> <ring-node>.<ring-seq> <initial 0|1> <members,...> <engine-ns>
//
// (engine-ns is QuorumEvent.Time, when the engine read the notification), the
// same line bench/c/notify_watch prints from its libquorum callbacks. It
// prints "ready" after the snapshot and exits when its standard input
// reaches end of file.
//
//	notifydelay -run -cwatch PATH [-nodes 3] [-changes 10] [-method kill|cut]
//
// orchestrates: it starts an internal/testcluster cluster, starts watchers
// in node 1 (two C watchers, PATH, and one Go watcher per backend, all
// subscribed to the same corosync at the same time), changes the
// membership -changes times by killing and restarting (or cutting off and
// healing) the last node, waiting after each change until every watcher has
// seen it, and then prints, per watcher, the delay of each event after the
// first C watcher's callback for the same event (same kind, same ring id):
// count, median, min, max. The watchers start in a random order each run. The second C watcher is the control: corosync
// writes to its connections one after another, so even two identical C
// clients differ by the order in which they were served.
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/corosync-go/quorum"
	"github.com/corosync-go/quorum/internal/testcluster"
)

func main() {
	backend := flag.String("backend", "", "watch through this backend: libquorum or native")
	run := flag.Bool("run", false, "orchestrate: start a cluster and the watchers, change the membership, print delays")
	cwatch := flag.String("cwatch", "", "with -run: path of the compiled bench/c/notify_watch.c")
	nodes := flag.Int("nodes", 3, "with -run: cluster size (at least 2)")
	changes := flag.Int("changes", 10, "with -run: membership changes to make")
	method := flag.String("method", "kill", "with -run: kill (kill and restart corosync) or cut (link down and up)")
	verbose := flag.Bool("v", false, "with -run: print every watcher's lines")
	flag.Parse()
	var err error
	switch {
	case *run:
		err = orchestrate(*cwatch, *nodes, *changes, *method, *verbose)
	case *backend != "":
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
	default:
		return fmt.Errorf("-backend %q: want libquorum or native", name)
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
		line = append(line[:0], "ev "...)
		line = strconv.AppendInt(line, now.UnixNano(), 10)
		line = append(line, ' ')
		line = append(line, ev.Kind.String()...)
		line = fmt.Appendf(line, " %d.%d %d ", ev.RingID.NodeID, ev.RingID.Seq, boolInt(ev.Initial))
		for i, m := range ev.Members {
			if i > 0 {
				line = append(line, ',')
			}
			line = strconv.AppendUint(line, uint64(m), 10)
		}
		line = append(line, ' ')
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
			fmt.Printf("%-14s %s\n", w.name, line)
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

// has reports whether the watcher has a non-initial quorum event whose
// members are want.
func (w *watcher) has(want string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		if !e.initial && e.kind == "quorum" && e.members == want {
			return true
		}
	}
	return false
}

func (w *watcher) changesSeen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.events {
		if !e.initial && e.kind == "quorum" {
			n++
		}
	}
	return n
}

func orchestrate(cwatch string, nodes, changes int, method string, verbose bool) error {
	if cwatch == "" {
		return errors.New("-run needs -cwatch, the compiled bench/c/notify_watch.c")
	}
	if nodes < 2 || changes < 1 {
		return fmt.Errorf("-nodes %d -changes %d: want at least 2 nodes and 1 change", nodes, changes)
	}
	if method != "kill" && method != "cut" {
		return fmt.Errorf("-method %q: want kill or cut", method)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// A whole run takes about a minute; the bound keeps a stuck cluster
	// from holding the machine, and a signal tears everything down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()

	fmt.Printf("starting a %d-node cluster...\n", nodes)
	cl, err := testcluster.New(ctx, nodes)
	if err != nil {
		return err
	}
	defer cl.Close()

	specs := []struct {
		name string
		argv []string
	}{
		{"c", []string{cwatch}},
		{"c-control", []string{cwatch}},
		{"go-libquorum", []string{self, "-backend", "libquorum"}},
		{"go-native", []string{self, "-backend", "native"}},
	}
	var ws []*watcher
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
	// corosync serves its connections in turn; a random start order per
	// run keeps any fixed position from favouring one watcher every time.
	rand.Shuffle(len(specs), func(i, j int) { specs[i], specs[j] = specs[j], specs[i] })
	order := make([]string, len(specs))
	for i, s := range specs {
		order[i] = s.name
	}
	fmt.Printf("watchers started in the order %s\n", strings.Join(order, ", "))
	for _, s := range specs {
		w := &watcher{name: s.name, done: make(chan struct{}), seen: make(chan struct{}, 1)}
		w.cmd = cl.Exec(ctx, 1, s.argv[0], s.argv[1:]...)
		w.cmd.Stderr = os.Stderr
		if w.stdin, err = w.cmd.StdinPipe(); err != nil {
			return err
		}
		out, err := w.cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := w.cmd.Start(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		ws = append(ws, w)
		go w.read(out, verbose)
	}
	if err := waitAll(ctx, ws, "the snapshot", func(w *watcher) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.ready
	}); err != nil {
		return err
	}

	last := nodes
	all := memberList(nodes)
	rest := memberList(nodes - 1)
	for i := 0; i < changes; i++ {
		down := i%2 == 0
		want := all
		switch {
		case down && method == "kill":
			err, want = cl.Kill(last), rest
		case down:
			err, want = cl.Cut(last), rest
		case method == "kill":
			err = cl.Start(last)
		default:
			err = cl.Heal(last)
		}
		if err != nil {
			return err
		}
		what := fmt.Sprintf("change %d (members %s)", i+1, want)
		n := i + 1
		if err := waitAll(ctx, ws, what, func(w *watcher) bool { return w.changesSeen() >= n && w.has(want) }); err != nil {
			return err
		}
		fmt.Printf("change %d/%d: members %s\n", i+1, changes, want)
		// A short quiet spell keeps each change's events apart from the
		// next change's.
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// The report takes the first C watcher as its reference, wherever it
	// started.
	slices.SortStableFunc(ws, func(a, b *watcher) int { return boolInt(a.name != "c") - boolInt(b.name != "c") })
	report(ws)
	return nil
}

// memberList is "1,2,...,n", as the watchers print members.
func memberList(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i))
	}
	return b.String()
}

// waitAll waits until cond holds for every watcher, a watcher fails or
// exits, or 90 s pass (a killed node leaves within seconds).
func waitAll(ctx context.Context, ws []*watcher, what string, cond func(*watcher) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		pending := ""
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
			if !cond(w) && pending == "" {
				pending = w.name
			}
		}
		if pending == "" {
			return nil
		}
		var w *watcher
		for _, x := range ws {
			if x.name == pending {
				w = x
			}
		}
		select {
		case <-w.seen:
		case <-w.done:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %s: %w", what, pending, ctx.Err())
		}
	}
}

// report prints each watcher's delays after the first C watcher, per event:
// over all events, then over each kind alone (a change's nodelist event can
// come a millisecond or more before its quorum event, and a watcher woken in
// between reads them apart, another one together).
func report(ws []*watcher) {
	ref := map[string]int64{}
	ws[0].mu.Lock()
	for _, e := range ws[0].events {
		if !e.initial {
			ref[e.key()] = e.at
		}
	}
	ws[0].mu.Unlock()
	fmt.Printf("\n%d events after the snapshot (nodelist and quorum, %d changes) seen by %s;\n",
		len(ref), len(ref)/2, ws[0].name)
	fmt.Println("delay of the same event (kind and ring id) after it, per watcher, in microseconds:")
	fmt.Printf("%-14s %-8s %6s %9s %9s %9s   %s\n", "watcher", "events", "count", "median", "min", "max",
		"engine read->channel median/max")
	for _, kind := range []string{"all", "nodelist", "quorum"} {
		for _, w := range ws[1:] {
			var d, hand []float64
			missing := 0
			w.mu.Lock()
			for _, e := range w.events {
				if e.initial || (kind != "all" && e.kind != kind) {
					continue
				}
				t0, ok := ref[e.key()]
				if !ok {
					missing++
					continue
				}
				d = append(d, float64(e.at-t0)/1e3)
				if e.engine != 0 {
					hand = append(hand, float64(e.at-e.engine)/1e3)
				}
			}
			w.mu.Unlock()
			if len(d) == 0 {
				fmt.Printf("%-14s %-8s no matching events\n", w.name, kind)
				continue
			}
			slices.Sort(d)
			line := fmt.Sprintf("%-14s %-8s %6d %+9.0f %+9.0f %+9.0f", w.name, kind, len(d), median(d), d[0], d[len(d)-1])
			if len(hand) > 0 {
				slices.Sort(hand)
				line += fmt.Sprintf("   %.0f / %.0f", median(hand), hand[len(hand)-1])
			}
			if missing > 0 {
				line += fmt.Sprintf("   (%d events not seen by %s)", missing, ws[0].name)
			}
			fmt.Println(line)
		}
	}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
