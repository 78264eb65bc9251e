package testcluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireCluster skips (or fails under QUORUM_REQUIRE_CLUSTER=1) like Start.
func requireCluster(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// fakeTB records what Start reports instead of ending the real test, so
// that Start's failure path can be checked.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	fatal    string
	errs     []string
	logs     []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Skip(args ...any)  { f.Fatalf("skip: %s", fmt.Sprint(args...)) }

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fatal != "" || len(f.errs) > 0
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// TestStartFailure starts a cluster whose node 2 cannot parse its config:
// Start must fail at once with that node's log in the message, and the
// cleanup must still remove everything, including the running node 1.
func TestStartFailure(t *testing.T) {
	requireCluster(t)
	f := &fakeTB{TB: t}
	done := make(chan *Cluster, 1)
	start := time.Now()
	go func() {
		defer close(done)
		done <- Start(f, 2, NodeExtraConfig(2, "this is { not a config"))
	}()
	if c := <-done; c != nil {
		f.runCleanups()
		t.Fatal("Start succeeded with a broken config")
	}
	elapsed := time.Since(start)
	defer func() {
		f.runCleanups()
		if len(f.errs) > 0 {
			t.Errorf("teardown errors: %v", f.errs)
		}
		checkNoLeftovers(t, nil)
	}()
	if !strings.Contains(f.fatal, "node 2") || !strings.Contains(f.fatal, "exited") || !strings.Contains(f.fatal, "parser error") {
		t.Errorf("failure message lacks node, exit or log:\n%s", f.fatal)
	}
	if elapsed > 15*time.Second {
		t.Errorf("failure took %v: the exit was not noticed", elapsed)
	}
	f.runCleanups()
	f.cleanups = nil
	if !strings.Contains(strings.Join(f.logs, "\n"), "log tail") {
		t.Errorf("teardown of a failed test did not dump logs: %v", f.logs)
	}
}

const crashHelperEnv = "TESTCLUSTER_CRASH_HELPER"

// TestCrashedRun starts a cluster in a child test process that exits
// without running its cleanup: its corosync must die with it (parent-death
// signal). The child names its cluster after this process, so that sweeps
// of other test binaries leave it alone while it is checked.
func TestCrashedRun(t *testing.T) {
	if owner := os.Getenv(crashHelperEnv); owner != "" {
		pid, err := strconv.Atoi(owner)
		if err != nil {
			t.Fatal(err)
		}
		c := Start(t, 1, func(c *config) { c.owner = pid })
		fmt.Printf("CLUSTER %s %d %s\n", c.Netns(1), c.Pid(1), filepath.Dir(filepath.Dir(c.Dir(1))))
		os.Exit(7) // no cleanup, like a test binary killed on timeout
	}
	requireCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashedRun$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", crashHelperEnv, os.Getpid()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("helper: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	var ns, dir string
	var pid int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "CLUSTER" {
			ns, dir = f[1], f[3]
			pid, _ = strconv.Atoi(f[2])
		}
	}
	if ns == "" || pid == 0 {
		t.Fatalf("helper printed no cluster:\n%s", out)
	}
	tl, err := findTools(os.Geteuid(), exec.LookPath)
	if err != nil {
		t.Fatal(err)
	}
	brNS := strings.TrimSuffix(ns, "-1") + "-b"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = killAndWait(ctx, []int{pid})
		for _, n := range []string{ns, brNS} {
			if err := deleteNetns(ctx, tl.ip, n); err != nil {
				t.Error(err)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("corosync pid %d outlived its test process", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The namespaces outlive the process; Start's sweep handles them once
	// their owner is gone (TestSweep).
	for _, n := range []string{ns, brNS} {
		if _, err := os.Stat(filepath.Join(netnsDir, n)); err != nil {
			t.Errorf("netns %s of the crashed run: %v", n, err)
		}
	}
}
