//go:build linux

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

// TestNewFailure starts a cluster whose node 2 cannot parse its config:
// New must fail at once with that node's log in the error, and must remove
// everything it created, including the running node 1.
func TestNewFailure(t *testing.T) {
	requireCluster(t)
	start := time.Now()
	c, err := New(context.Background(), 2, NodeExtraConfig(2, "this is { not a config"))
	if err == nil {
		c.Close()
		t.Fatal("New succeeded with a broken config")
	}
	if elapsed := time.Since(start); elapsed > 15*time.Second {
		t.Errorf("failure took %v: the exit was not noticed", elapsed)
	}
	msg := err.Error()
	if !strings.Contains(msg, "node 2") || !strings.Contains(msg, "exited") || !strings.Contains(msg, "parser error") {
		t.Errorf("error lacks node, exit or log:\n%s", msg)
	}
	checkNoLeftovers(t, nil)
}

// TestStartCleanupOnFailure checks that Start's cleanup logs the nodes'
// logs when the test failed, and removes the cluster.
func TestStartCleanupOnFailure(t *testing.T) {
	requireCluster(t)
	f := &fakeTB{TB: t}
	done := make(chan *Cluster, 1)
	go func() {
		defer close(done)
		done <- Start(f, 1)
	}()
	c := <-done
	if c == nil {
		f.runCleanups()
		t.Fatalf("Start: %s", f.fatal)
	}
	pid := c.Pid(1)
	f.Errorf("the test failed")
	f.runCleanups()
	logs := strings.Join(f.logs, "\n")
	// corosync 2.x logs its "Corosync Cluster Engine ... started" line
	// before it applies the logging config, so not to stderr.
	want := "Corosync Cluster Engine"
	if !c.Install().Version.AtLeast(3, 0, 0) {
		want = "[TOTEM ]"
	}
	if !strings.Contains(logs, "node 1") || !strings.Contains(logs, want) {
		t.Errorf("cleanup of a failed test did not log the node's log:\n%s", logs)
	}
	if len(f.errs) != 1 {
		t.Errorf("cleanup errors: %v", f.errs[1:])
	}
	if !gone(pid) {
		t.Errorf("corosync pid %d survived the cleanup", pid)
	}
	checkNoLeftovers(t, []int{pid})
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
		// SIGKILLed with its parent, that corosync removed nothing of its
		// IPC; no process of this run reaped it to do so.
		removeShm(pid)
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
