//go:build linux

package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lines collects what run prints and tells when n lines have arrived.
type lines struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want int
	got  chan struct{}
}

func newLines(want int) *lines { return &lines{want: want, got: make(chan struct{})} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	before := strings.Count(l.buf.String(), "\n")
	l.buf.Write(p)
	if before < l.want && strings.Count(l.buf.String(), "\n") >= l.want {
		close(l.got)
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// runUntilSnapshot runs the command, waits for the snapshot's two lines,
// cancels as a signal would, and returns the exit code and output.
func runUntilSnapshot(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errs := newLines(2), newLines(1)
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, out, errs) }()
	select {
	case <-out.got:
	case code := <-done:
		t.Fatalf("run %q returned %d before its snapshot; stdout %q, stderr %q", args, code, out, errs)
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatalf("run %q: no snapshot within 10 s; stdout %q", args, out)
	}
	cancel()
	select {
	case code := <-done:
		return code, out.String(), errs.String()
	case <-time.After(10 * time.Second):
		t.Fatalf("run %q did not return within 10 s of its context ending", args)
	}
	return 0, "", ""
}

func TestSimSnapshotThenExitOnCancel(t *testing.T) {
	for _, args := range [][]string{
		{"-backend", "sim"},
		{"-backend", "sim", "-control-ticker", "1ms"},
	} {
		code, out, errs := runUntilSnapshot(t, args...)
		if code != 0 {
			t.Errorf("run %q: exit %d after cancel, want 0; stderr %q", args, code, errs)
		}
		got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(got) != 2 || !strings.HasPrefix(got[0], "#1 nodelist ring 1.") ||
			!strings.HasPrefix(got[1], "#2 quorum ring 1.") || !strings.Contains(got[1], " quorate members [1 2 3]") {
			t.Errorf("run %q printed %q, want a nodelist then a quorate quorum event for [1 2 3]", args, out)
		}
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-backend", "nope"},
		{"-control-ticker", "-1s"},
		{"-control-ticker", "soon"},
		{"extra"},
	} {
		var out, errs bytes.Buffer
		if code := run(context.Background(), args, &out, &errs); code != 2 {
			t.Errorf("run %q = %d, want 2", args, code)
		}
		if out.Len() != 0 || errs.Len() == 0 {
			t.Errorf("run %q: stdout %q, stderr %q; want nothing on stdout and a reason on stderr", args, out.String(), errs.String())
		}
	}
}

// Without -tags libquorum the default backend cannot work: run must say so
// and fail instead of waiting.
func TestLibquorumWithoutTagFails(t *testing.T) {
	if libquorumBuilt {
		t.Skip("built with -tags libquorum")
	}
	var out, errs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code := run(ctx, nil, &out, &errs); code != 1 {
		t.Fatalf("run() = %d, want 1; stderr %q", code, errs.String())
	}
	if !strings.Contains(errs.String(), "subscribe (libquorum)") {
		t.Errorf("stderr %q does not say which backend failed", errs.String())
	}
}
