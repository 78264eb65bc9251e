//go:build libquorum && linux

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/corosync-go/quorum/internal/syncbuf"
	"github.com/corosync-go/quorum/internal/testcluster"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseLine(t *testing.T) {
	tests := []struct {
		line   string
		json   bool
		want   event
		wantOK bool
	}{
		{"2026-11-25T02:12:42.855Z #2 quorum ring 1.9 quorate members [1 2 3] joined [] left [] initial", false,
			event{kind: "quorum", initial: true, quorate: true, members: []uint32{1, 2, 3}}, true},
		{"2026-11-25T02:12:53.891Z #6 quorum ring 1.17 inquorate members [1] joined [] left []", false,
			event{kind: "quorum", members: []uint32{1}}, true},
		{"2026-11-25T02:13:04.027Z #11 disconnected ring 1.25 unknown members [1 2 3] joined [] left [] error: quorum: quorum_dispatch: CS_ERR_LIBRARY (2): connection to corosync lost", false,
			event{kind: "disconnected", members: []uint32{1, 2, 3}}, true},
		{"2026-11-25T02:13:06.666Z #13 nodelist ring 1.30 inquorate members [] joined [] left [2 3] initial coalesced 2", false,
			event{kind: "nodelist", initial: true}, true},
		{"quorumwatch: sim: corosync on node 5 stops", false, event{}, false},
		{"2026-11-25T02:12:42.855Z #2 quorum ring 1.9 quorate members [1 x] joined [] left []", false, event{}, false},
		{"2026-11-25T02:12:42.855Z #2 quorum ring 1.9 quorate members [99999999999] joined [] left []", false, event{}, false},
		{"", false, event{}, false},
		{`{"time":"2026-11-25T02:13:22.599755367Z","seq":2,"kind":"quorum","initial":true,"quorate":true,"ring_id":{"node_id":1,"seq":13},"members":[1,2,3],"joined":[],"left":[],"coalesced":0}`, true,
			event{kind: "quorum", initial: true, quorate: true, members: []uint32{1, 2, 3}}, true},
		{`{"seq":12,"kind":"reconnected","initial":false,"quorate":false,"members":[],"joined":[],"left":[]}`, true,
			event{kind: "reconnected", members: []uint32{}}, true},
		{`{"seq":1}`, true, event{}, false},
		{`{"kind":`, true, event{}, false},
		// A text line read as JSON, and the other way round, is no event.
		{"2026-11-25T02:12:42.855Z #2 quorum ring 1.9 quorate members [1 2 3] joined [] left []", true, event{}, false},
		{`{"kind":"quorum","members":[1]}`, false, event{}, false},
	}
	for _, tt := range tests {
		got, ok := parseLine([]byte(tt.line), tt.json)
		if ok != tt.wantOK || got.kind != tt.want.kind || got.initial != tt.want.initial ||
			got.quorate != tt.want.quorate || !slices.Equal(got.members, tt.want.members) {
			t.Errorf("parseLine(%q, json=%v) = %+v, %v; want %+v, %v", tt.line, tt.json, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestMatchers(t *testing.T) {
	m := quorumEvent([]uint32{2, 1}, true)
	for _, tt := range []struct {
		ev   event
		want bool
	}{
		{event{kind: "quorum", quorate: true, members: []uint32{1, 2}}, true},
		{event{kind: "quorum", quorate: true, members: []uint32{2, 1}}, true},
		{event{kind: "quorum", quorate: false, members: []uint32{1, 2}}, false},
		{event{kind: "nodelist", quorate: true, members: []uint32{1, 2}}, false},
		{event{kind: "quorum", quorate: true, members: []uint32{1, 2, 3}}, false},
		{event{kind: "quorum", quorate: true}, false},
	} {
		if got := m(tt.ev); got != tt.want {
			t.Errorf("quorumEvent([2 1], true)(%+v) = %v, want %v", tt.ev, got, tt.want)
		}
	}
	if !kindEvent("disconnected")(event{kind: "disconnected"}) || kindEvent("disconnected")(event{kind: "reconnected"}) {
		t.Error("kindEvent does not match on the kind alone")
	}
}

func TestParseArgs(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseArgs([]string{"-json", "-fast", "-quorumwatch", "/x"}, &stderr)
	if err != nil || !o.json || o.pause != fastPause || o.quorumwatch != "/x" {
		t.Errorf("parseArgs: %+v, %v", o, err)
	}
	if o, err := parseArgs(nil, &stderr); err != nil || o.json || o.pause != pause || o.quorumwatch != "" {
		t.Errorf("parseArgs defaults: %+v, %v", o, err)
	}
	if _, err := parseArgs([]string{"extra"}, &stderr); err == nil {
		t.Error("parseArgs accepted an argument")
	}
	if code := run(context.Background(), []string{"-nosuchflag"}, &stderr, &stderr); code != exitFailed {
		t.Errorf("run with an unknown flag: exit %d, want %d", code, exitFailed)
	}
	if code := run(context.Background(), []string{"-quorumwatch", t.TempDir()}, &stderr, &stderr); code != exitFailed {
		t.Errorf("run with a folder as -quorumwatch: exit %d, want %d", code, exitFailed)
	}
}

// buildQuorumwatch builds the binary the demo runs.
func buildQuorumwatch(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "quorumwatch")
	cmd := exec.Command("go", "build", "-tags", "libquorum", "-o", bin, "github.com/corosync-go/quorum/cmd/quorumwatch")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building quorumwatch: %v\n%s", err, out)
	}
	return bin
}

// TestFallbackToSim makes the check for a usable cluster fail, so that the
// demo plays quorumwatch's simulated scenario instead.
func TestFallbackToSim(t *testing.T) {
	if testing.Short() {
		t.Skip("builds quorumwatch and plays a 5 s scenario")
	}
	bin := buildQuorumwatch(t)
	unavailable := func() error { return errors.New("testcluster: corosync-quorumtool not installed") }
	var stdout, stderr syncbuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := runWith(ctx, []string{"-quorumwatch", bin}, &stdout, &stderr, unavailable)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "demo: a real corosync cluster cannot run here: testcluster: corosync-quorumtool not installed") {
		t.Errorf("no reason given for the fallback; stderr:\n%s", stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{" disconnected ", " reconnected ", " inquorate "} {
		if !strings.Contains(out, want) {
			t.Errorf("the simulated scenario's output lacks %q:\n%s", want, out)
		}
	}
}

// TestRealCluster plays the whole demo on a real cluster (about 35 s). It
// needs root and corosync; it is skipped without them unless
// QUORUM_REQUIRE_CLUSTER=1.
func TestRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real 3-node cluster and plays every step")
	}
	if err := testcluster.Available(); err != nil {
		if os.Getenv(testcluster.RequireEnv) == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	bin := buildQuorumwatch(t)
	var stdout, stderr syncbuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := run(ctx, []string{"-fast", "-json", "-quorumwatch", bin}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	// run succeeds only when it saw every step; check the sequence of
	// quorum and connection events once more from the output itself.
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		ev, ok := parseLine([]byte(line), true)
		if !ok {
			t.Fatalf("a stdout line that is not a JSON event: %q", line)
		}
		if ev.kind == "nodelist" {
			continue
		}
		s := ev.kind
		if ev.kind == "quorum" {
			s = "quorum"
			for _, id := range ev.members {
				s += " " + strconv.FormatUint(uint64(id), 10)
			}
			if ev.quorate {
				s += " quorate"
			}
		}
		got = append(got, s)
	}
	// After the restart, node 1 may answer before rejoining the others: its
	// fresh snapshot may show it alone first.
	want := []string{"quorum 1 2 3 quorate", "quorum 1 2 quorate", "quorum 1", "quorum 1 2 quorate",
		"quorum 1 2 3 quorate", "disconnected", "reconnected"}
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) || got[len(got)-1] != "quorum 1 2 3 quorate" {
		t.Errorf("events:\n%s\nwant them to start with\n%s\nand end with quorum 1 2 3 quorate",
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(stderr.String(), "demo: cluster removed") {
		t.Errorf("no teardown reported; stderr:\n%s", stderr.String())
	}
}
