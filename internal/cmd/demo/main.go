//go:build libquorum && linux

// Command demo runs quorumwatch against a real 3-node corosync cluster on
// this machine and walks through the failures a cluster sees: a node dies,
// a node is cut off so the watching node loses quorum, the network heals,
// the dead node comes back, and the watching node's own corosync restarts.
//
// Each node runs in a network namespace of its own (internal/testcluster);
// nothing is configured in the caller's network namespace. quorumwatch runs
// inside node 1's namespace with the libquorum backend and its output goes
// to this program's stdout unchanged. The demo's own narration goes to
// stderr, each line starting with "demo: ", so that `-json` output on stdout
// stays one JSON object per line.
//
// It needs root and corosync (see testcluster.Available); when either is
// missing it says why and plays quorumwatch's simulated scenario (--sim)
// instead. It is meant to be started by `make demo`, which builds
// quorumwatch and passes it with -quorumwatch; without that flag the demo
// builds quorumwatch itself from the module in the working directory.
//
// Exit status: 0 when every step was seen in quorumwatch's output, 1 when a
// step failed or took too long, 130 when interrupted. Whatever happens, the
// cluster is torn down and quorumwatch stopped before the demo exits.
//
// Flags:
//
//	-json              pass --json to quorumwatch
//	-fast              shorten the pauses between steps
//	-quorumwatch PATH  the quorumwatch binary to run (built with -tags libquorum)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/corosync-go/quorum/internal/testcluster"
)

const (
	exitOK          = 0
	exitFailed      = 1
	exitInterrupted = 130 // as a shell reports a process ended by SIGINT

	nodes = 3

	// pause lets a person read the events of one step before the next
	// step's narration; fastPause is for -fast (and the test).
	pause     = 2 * time.Second
	fastPause = 300 * time.Millisecond

	// clusterWait bounds one membership change as corosync-quorumtool sees
	// it. A cut-off node takes about 8 s to leave with token 1000; the
	// margin is for a loaded machine.
	clusterWait = 60 * time.Second
	// streamWait bounds how long quorumwatch may lag behind what
	// corosync-quorumtool already reports, and the wait for a disconnect.
	streamWait = 20 * time.Second
	// buildWait bounds building quorumwatch when no binary was given.
	buildWait = 5 * time.Minute
)

func main() {
	// The signal context stays in force until the end, so that a second
	// Ctrl-C does not interrupt the teardown the first one started.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options is the parsed command line.
type options struct {
	json        bool
	pause       time.Duration
	quorumwatch string
}

func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	var fast bool
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.json, "json", false, "pass --json to quorumwatch (one JSON object per event)")
	fs.BoolVar(&fast, "fast", false, "shorten the pauses between steps")
	fs.StringVar(&o.quorumwatch, "quorumwatch", "", "quorumwatch binary built with -tags libquorum (default: build it from the module in the working directory)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: the demo takes flags only", fs.Arg(0))
	}
	o.pause = pause
	if fast {
		o.pause = fastPause
	}
	return o, nil
}

// narrator prints the demo's own lines, told apart from quorumwatch's by
// their prefix.
type narrator struct{ w io.Writer }

func (n narrator) say(format string, args ...any) {
	fmt.Fprintf(n.w, "demo: "+format+"\n", args...)
}

// run is the whole demo; it returns the exit status. stdout receives
// quorumwatch's output, stderr the narration and quorumwatch's diagnostics.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, testcluster.Available)
}

// runWith is run with the check for a usable cluster passed in, so that a
// test can take the fallback path on a machine that could run a cluster.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, available func() error) int {
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	n := narrator{stderr}
	if err != nil {
		n.say("%v", err)
		return exitFailed
	}

	bin, cleanup, err := quorumwatchBinary(ctx, o.quorumwatch, n)
	if err != nil {
		if ctx.Err() != nil {
			n.say("interrupted")
			return exitInterrupted
		}
		n.say("%v", err)
		return exitFailed
	}
	defer cleanup()

	if err := available(); err != nil {
		n.say("a real corosync cluster cannot run here: %v", err)
		n.say("playing quorumwatch's simulated cluster instead (quorumwatch --sim)")
		return runSim(ctx, bin, o, stdout, stderr, n)
	}
	return runCluster(ctx, bin, o, stdout, stderr, n)
}

// quorumwatchBinary returns the binary to run, building it into a temporary
// folder when none was given; cleanup removes what was built.
func quorumwatchBinary(ctx context.Context, given string, n narrator) (string, func(), error) {
	if given != "" {
		abs, err := filepath.Abs(given)
		if err != nil {
			return "", nil, fmt.Errorf("-quorumwatch %s: %v", given, err)
		}
		if st, err := os.Stat(abs); err != nil {
			return "", nil, fmt.Errorf("-quorumwatch: %v", err)
		} else if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			return "", nil, fmt.Errorf("-quorumwatch %s: not an executable file", given)
		}
		return abs, func() {}, nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", nil, errors.New("no quorumwatch given (-quorumwatch PATH) and no go command in PATH to build one")
	}
	ctx, cancel := context.WithTimeout(ctx, buildWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", nil, fmt.Errorf("finding the module: go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", nil, errors.New("no quorumwatch given (-quorumwatch PATH) and the working directory is not inside the quorum module: run the demo from the module root")
	}
	dir, err := os.MkdirTemp("", "quorum-demo-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	bin := filepath.Join(dir, "quorumwatch")
	n.say("building quorumwatch with -tags libquorum")
	build := exec.CommandContext(ctx, goTool, "build", "-tags", "libquorum", "-o", bin, "./cmd/quorumwatch")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building quorumwatch: %v\n%s", err, out)
	}
	return bin, cleanup, nil
}

// runSim plays quorumwatch's own simulated scenario in the foreground and
// returns its exit status.
func runSim(ctx context.Context, bin string, o options, stdout, stderr io.Writer, n narrator) int {
	args := []string{"--sim"}
	if o.json {
		args = append(args, "--json")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	stopWithSIGINT(cmd)
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return exitInterrupted
	case errors.As(err, &ee):
		return ee.ExitCode()
	case err != nil:
		n.say("running quorumwatch --sim: %v", err)
		return exitFailed
	}
	return exitOK
}

// stopWithSIGINT makes cancelling cmd's context ask it to stop as Ctrl-C
// would, and kill it only if it has not exited a few seconds later.
func stopWithSIGINT(cmd *exec.Cmd) {
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
}

// runCluster is the real demo: it starts the cluster, runs quorumwatch in
// node 1 and plays the steps, tearing everything down on every path.
func runCluster(ctx context.Context, bin string, o options, stdout, stderr io.Writer, n narrator) (code int) {
	n.say("starting a %d-node corosync cluster, one network namespace per node (a few seconds)", nodes)
	cl, err := testcluster.New(ctx, nodes)
	if err != nil {
		if ctx.Err() != nil {
			n.say("interrupted while the cluster was starting (it has been removed)")
			return exitInterrupted
		}
		n.say("the cluster did not start: %v", err)
		return exitFailed
	}
	names := make([]string, 0, nodes+1)
	for i := 1; i <= nodes; i++ {
		names = append(names, cl.Netns(i))
		n.say("node %d: corosync pid %d, address %s, network namespace %s", i, cl.Pid(i), cl.Addr(i), cl.Netns(i))
	}
	names = append(names, cl.BridgeNetns())

	var w *watcher
	defer func() {
		if w != nil {
			n.say("stopping quorumwatch (SIGINT)")
			if err := w.stop(); err != nil {
				n.say("quorumwatch: %v", err)
				if code == exitOK {
					code = exitFailed
				}
			}
		}
		n.say("tearing down the cluster")
		if err := cl.Close(); err != nil {
			n.say("teardown: %v", err)
			code = exitFailed
		}
		if left := leftNamespaces(names); len(left) > 0 {
			n.say("teardown left these network namespaces: %s", strings.Join(left, " "))
			code = exitFailed
		} else {
			n.say("cluster removed: its corosync processes and network namespaces are gone")
		}
	}()

	args := []string{"--backend", "libquorum"}
	if o.json {
		args = append(args, "--json")
	}
	n.say("running quorumwatch %s inside node 1's namespace; its output follows", strings.Join(args, " "))
	// Not bound to ctx: a Ctrl-C reaches quorumwatch from the terminal
	// anyway, and otherwise stop is what ends it, after the steps.
	w, err = startWatcher(func(wctx context.Context) *exec.Cmd {
		return cl.Exec(wctx, 1, bin, args...)
	}, stdout, stderr, o.json)
	if err != nil {
		n.say("starting quorumwatch: %v", err)
		return exitFailed
	}

	d := &demo{ctx: ctx, cl: cl, w: w, n: n, pause: o.pause}
	if err := d.play(); err != nil {
		if ctx.Err() != nil {
			n.say("interrupted")
			return exitInterrupted
		}
		n.say("FAILED: %v", err)
		return exitFailed
	}
	n.say("all steps seen in quorumwatch's output")
	return exitOK
}

// leftNamespaces returns the names in names that still exist.
func leftNamespaces(names []string) []string {
	var left []string
	for _, name := range names {
		if name == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join("/run/netns", name)); err == nil {
			left = append(left, name)
		}
	}
	return left
}

// demo holds what the steps act on.
type demo struct {
	ctx   context.Context
	cl    *testcluster.Cluster
	w     *watcher
	n     narrator
	pause time.Duration
}

// play runs the steps in order; each waits until node 1's corosync and then
// quorumwatch have shown its effect.
func (d *demo) play() error {
	all := []uint32{1, 2, 3}
	if err := d.w.waitFor(d.ctx, "the initial snapshot: quorate with members [1 2 3]", quorumEvent(all, true)); err != nil {
		return err
	}
	if err := d.rest(); err != nil {
		return err
	}

	steps := []struct {
		say     string
		act     func() error
		members []uint32
		quorate bool
	}{
		{"killing node 3's corosync: node 1 sees members [1 2], still quorate (2 of 3 votes)",
			func() error { return d.cl.Kill(3) }, []uint32{1, 2}, true},
		{"cutting node 2 off the network: node 1 is alone with 1 vote of 3 and loses quorum (corosync takes several seconds to notice)",
			func() error { return d.cl.Cut(2) }, []uint32{1}, false},
		{"healing node 2's link: nodes 1 and 2 meet again and regain quorum",
			func() error { return d.cl.Heal(2) }, []uint32{1, 2}, true},
		{"starting node 3's corosync again: all three are members",
			func() error { return d.cl.Start(3) }, all, true},
	}
	for _, s := range steps {
		d.n.say("%s", s.say)
		if err := s.act(); err != nil {
			return err
		}
		if err := d.expect(s.members, s.quorate); err != nil {
			return err
		}
		if err := d.rest(); err != nil {
			return err
		}
	}

	d.n.say("killing node 1's own corosync: quorumwatch loses its connection and keeps retrying")
	if err := d.cl.Kill(1); err != nil {
		return err
	}
	if err := d.w.waitFor(d.ctx, "a disconnected event", kindEvent("disconnected")); err != nil {
		return err
	}
	if err := d.rest(); err != nil {
		return err
	}
	d.n.say("starting node 1's corosync again: quorumwatch reconnects and gets a fresh snapshot")
	if err := d.cl.Start(1); err != nil {
		return err
	}
	if err := d.w.waitFor(d.ctx, "a reconnected event", kindEvent("reconnected")); err != nil {
		return err
	}
	// node 1 may answer IPC before it has rejoined, so the fresh snapshot
	// can show it alone, followed by a change to all three.
	if err := d.expect(all, true); err != nil {
		return err
	}
	return d.rest()
}

// expect waits until node 1's corosync reports exactly members, then until
// quorumwatch has printed a quorum event with those members and quorate.
func (d *demo) expect(members []uint32, quorate bool) error {
	ctx, cancel := context.WithTimeout(d.ctx, clusterWait)
	defer cancel()
	if err := d.cl.WaitMembers(ctx, 1, members); err != nil {
		return err
	}
	state := "quorate"
	if !quorate {
		state = "not quorate"
	}
	return d.w.waitFor(d.ctx, fmt.Sprintf("a quorum event with members %v, %s", members, state), quorumEvent(members, quorate))
}

// rest pauses so that the step's events can be read before the next step.
func (d *demo) rest() error {
	t := time.NewTimer(d.pause)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-d.ctx.Done():
		return d.ctx.Err()
	}
}
