//go:build linux

package testcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if pidAlive(pid) {
		t.Skipf("pid %d was reused at once", pid)
	}
	return pid
}

// TestSweep fakes the leftovers of a run that died without cleanup (a
// namespace with a process in it, a corosync-like process outside any of
// our namespaces, a folder with recorded pids, /dev/shm entries) and of a
// live run, and checks that sweep removes exactly the former.
func TestSweep(t *testing.T) {
	tl, err := findTools(os.Geteuid(), exec.LookPath)
	if err == nil {
		err = canUnshareNet()
	}
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	dead := deadPid(t)
	tag, err := randomTag()
	if err != nil {
		t.Fatal(err)
	}
	staleNS := fmt.Sprintf("qtc-%d-%s-1", dead, tag)
	liveNS := fmt.Sprintf("qtc-1-%s-1", tag) // pid 1 always exists
	staleDir := filepath.Join(os.TempDir(), fmt.Sprintf("qtc-%d-%s", dead, tag))
	shmDir := fmt.Sprintf("/dev/shm/qb-%d-1-2-test", dead)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, ns := range []string{staleNS, liveNS} {
			if err := deleteNetns(ctx, tl.ip, ns); err != nil {
				t.Error(err)
			}
		}
		os.RemoveAll(staleDir)
		os.RemoveAll(shmDir)
	})

	for _, ns := range []string{staleNS, liveNS} {
		if err := runTool(ctx, tl.ip, "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(staleDir, "n1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(staleDir, "n1", "pids"), []byte(fmt.Sprintf("%d\n", dead)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(shmDir, 0o700); err != nil {
		t.Fatal(err)
	}

	// A process inside the stale namespace, and one outside any namespace
	// of ours whose command line names the stale folder the way a
	// corosync of ours does. Both block on a pipe we hold, so neither can
	// end by itself.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	inNS := exec.Command(tl.ip, "netns", "exec", staleNS, "sh", "-c", "read x")
	inNS.Stdin = r
	byCmdline := exec.Command("sh", "-c", "read x", "corosync", "-c", filepath.Join(staleDir, "n1", "corosync.conf"))
	byCmdline.Stdin = r
	inLive := exec.Command(tl.ip, "netns", "exec", liveNS, "sh", "-c", "read x")
	inLive.Stdin = r
	for _, cmd := range []*exec.Cmd{inNS, byCmdline, inLive} {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	exited := func(cmd *exec.Cmd) chan error {
		ch := make(chan error, 1)
		go func() { ch <- cmd.Wait() }()
		return ch
	}
	inNSDone, byCmdlineDone, inLiveDone := exited(inNS), exited(byCmdline), exited(inLive)
	defer func() {
		// Ends inLive (and anything sweep missed) so no goroutine leaks.
		w.Close()
		<-inLiveDone
	}()

	if err := sweep(ctx, tl.ip); err != nil {
		t.Fatalf("sweep: %v", err)
	}

	for name, ch := range map[string]chan error{"process in stale netns": inNSDone, "corosync-like process": byCmdlineDone} {
		select {
		case err := <-ch:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Errorf("%s ended with %v, want SIGKILL", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s survived the sweep", name)
		}
	}
	if _, err := os.Stat(filepath.Join(netnsDir, staleNS)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale netns %s: %v", staleNS, err)
	}
	if _, err := os.Stat(staleDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale folder: %v", err)
	}
	if _, err := os.Stat(shmDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale /dev/shm entry: %v", err)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, liveNS)); err != nil {
		t.Errorf("live run's netns was removed: %v", err)
	}
	select {
	case err := <-inLiveDone:
		inLiveDone <- err
		t.Errorf("live run's process ended: %v", err)
	default:
	}
}
