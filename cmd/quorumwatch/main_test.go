package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/corosync-go/quorum"
	"github.com/corosync-go/quorum/internal/syncbuf"
)

// asCommandEnv makes the test binary run as quorumwatch itself, so that the
// corosync tests can start the command inside a node's network namespace
// without building it separately.
const asCommandEnv = "QUORUMWATCH_TEST_AS_COMMAND"

// commandEnv is base (the environment a command would have, such as a
// node's) with what makes this binary run as the command. A race build
// otherwise lingers a second at exit.
func commandEnv(base []string) []string {
	return append(base, asCommandEnv+"=1", "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

func TestMain(m *testing.M) {
	if os.Getenv(asCommandEnv) == "1" {
		main() // exits
	}
	goleak.VerifyTestMain(m)
}

// fastEnv runs the scenario without pauses: its steps still wait for each
// other's events, so the output is the same as at human pace.
var fastEnv = env{pace: 0}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func runT(t *testing.T, ctx context.Context, e env, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncbuf.Buffer
	code = runEnv(ctx, args, &out, &errOut, e)
	return code, out.String(), errOut.String()
}

// want is one expected event of the scenario.
type want struct {
	kind    string
	initial bool
	quorate bool
	members []uint32
	joined  []uint32
	left    []uint32
}

// scenarioFor lists the events the viewer sees in the scenario, with the
// nodes named by role (see scenario): ids maps roles to node ids and keeps
// each list in id order, as corosync sends it.
func scenarioFor(viewer uint32) []want {
	role := [6]uint32{1: viewer}
	r := 2
	for id := uint32(1); id <= 5; id++ {
		if id != viewer {
			role[r] = id
			r++
		}
	}
	ids := func(roles ...int) []uint32 {
		s := []uint32{}
		for _, r := range roles {
			s = append(s, role[r])
		}
		slices.Sort(s)
		return s
	}
	all := ids(1, 2, 3, 4, 5)
	// A change's nodelist event carries the quorum state from before the
	// change; a snapshot's nodelist carries the snapshot's state.
	return []want{
		{"nodelist", true, true, all, ids(), ids()},
		{"quorum", true, true, all, ids(), ids()},
		{"nodelist", false, true, ids(1, 2, 3, 4), ids(), ids(5)},
		{"quorum", false, true, ids(1, 2, 3, 4), ids(), ids()},
		{"nodelist", false, true, ids(1, 2, 3), ids(), ids(4)},
		{"quorum", false, true, ids(1, 2, 3), ids(), ids()},
		{"nodelist", false, true, ids(1, 2), ids(), ids(3)},
		{"quorum", false, false, ids(1, 2), ids(), ids()},
		{"nodelist", false, false, ids(1, 2, 3), ids(3), ids()},
		{"quorum", false, true, ids(1, 2, 3), ids(), ids()},
		{"nodelist", false, true, ids(1, 2, 3, 4), ids(4), ids()},
		{"quorum", false, true, ids(1, 2, 3, 4), ids(), ids()},
		{"nodelist", false, true, all, ids(5), ids()},
		{"quorum", false, true, all, ids(), ids()},
		{"nodelist", false, true, all, ids(2), ids(2)},
		{"quorum", false, true, all, ids(), ids()},
		{"disconnected", false, false, all, ids(), ids()},
		{"reconnected", false, false, all, ids(), ids()},
		{"nodelist", true, true, all, ids(), ids()},
		{"quorum", true, true, all, ids(), ids()},
	}
}

var humanRE = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) #(\d+) (nodelist|quorum|disconnected|reconnected|error) ` +
	`ring ([0-9a-f]+)\.([0-9a-f]+) (quorate|inquorate|unknown) members \[([\d ]*)\] joined \[([\d ]*)\] left \[([\d ]*)\]` +
	`(?: names(?: \d+=\S+)+)?( initial)?( coalesced \d+)?( error: .+)?$`)

func parseIDs(t *testing.T, s string) []uint32 {
	t.Helper()
	out := []uint32{}
	for _, f := range strings.Fields(s) {
		var id uint32
		if _, err := fmt.Sscan(f, &id); err != nil {
			t.Fatalf("bad id %q: %v", f, err)
		}
		out = append(out, id)
	}
	return out
}

func TestSimHuman(t *testing.T) {
	start := time.Now()
	code, out, errOut := runT(t, context.Background(), fastEnv, "--sim")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	exp := scenarioFor(1)
	got := lines(out)
	if len(got) != len(exp) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(exp), out)
	}
	var lastRing string
	for i, line := range got {
		m := humanRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %d does not match the format: %q", i+1, line)
		}
		ts, err := time.Parse(humanTime, m[1])
		if err != nil || ts.Before(start.Truncate(time.Millisecond)) || ts.After(time.Now()) {
			t.Errorf("line %d: time %s (%v) outside the run", i+1, m[1], err)
		}
		w := exp[i]
		if m[2] != fmt.Sprint(i+1) || m[3] != w.kind || (m[10] != "") != w.initial {
			t.Errorf("line %d: %q, want seq %d kind %s initial %v", i+1, line, i+1, w.kind, w.initial)
		}
		switch {
		case w.kind == "disconnected" || w.kind == "reconnected":
			if m[6] != "unknown" {
				t.Errorf("line %d: state %s, want unknown", i+1, m[6])
			}
		case (m[6] == "quorate") != w.quorate:
			t.Errorf("line %d: state %s, want quorate=%v", i+1, m[6], w.quorate)
		}
		if !slices.Equal(parseIDs(t, m[7]), w.members) || !slices.Equal(parseIDs(t, m[8]), w.joined) ||
			!slices.Equal(parseIDs(t, m[9]), w.left) {
			t.Errorf("line %d: %q, want members %v joined %v left %v", i+1, line, w.members, w.joined, w.left)
		}
		if (m[12] != "") != (w.kind == "disconnected") {
			t.Errorf("line %d: error part %q on a %s event", i+1, m[12], w.kind)
		}
		if m[11] != "" {
			t.Errorf("line %d: coalesced in a lossless scenario: %q", i+1, line)
		}
		// Every step of the scenario makes a new ring, node 1's own
		// restart included (a real restarted corosync is on a new
		// ring, never on the one it left).
		if m[3] == "nodelist" {
			ring := m[4] + "." + m[5]
			if ring == lastRing {
				t.Errorf("line %d: ring %s again: %q", i+1, ring, line)
			}
			lastRing = ring
		}
	}
	if n := strings.Count(errOut, "quorumwatch: sim: "); n != 8 {
		t.Errorf("stderr narrates %d steps, want 8:\n%s", n, errOut)
	}
}

var jsonKeys = []string{"time", "seq", "kind", "initial", "quorate", "state", "ring_id", "members", "joined", "left", "coalesced"}

// topKeys returns the keys of the JSON object in line, in order.
func topKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %q (%v)", line, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
	}
	return keys
}

func idList(t *testing.T, line, key string, v any) []uint32 {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("%s is %T, want an array (never null): %s", key, v, line)
	}
	out := []uint32{}
	for _, x := range arr {
		f, ok := x.(float64)
		if !ok || f < 1 || f != float64(uint32(f)) {
			t.Fatalf("%s holds %v, want node ids: %s", key, x, line)
		}
		out = append(out, uint32(f))
	}
	return out
}

// checkJSONLine validates one --json line against the schema and returns it
// decoded.
func checkJSONLine(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not JSON: %q: %v", line, err)
	}
	keys := topKeys(t, line)
	wantKeys := jsonKeys
	if _, ok := m["error"]; ok {
		wantKeys = append(slices.Clone(jsonKeys), "error")
		if s, ok := m["error"].(string); !ok || s == "" {
			t.Errorf("error is %#v, want a non-empty string: %s", m["error"], line)
		}
	}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("keys %v, want %v: %s", keys, wantKeys, line)
	}
	if s, ok := m["time"].(string); !ok {
		t.Errorf("time is %T: %s", m["time"], line)
	} else if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		t.Errorf("time %q: %v", s, err)
	}
	for _, k := range []string{"seq", "coalesced"} {
		if f, ok := m[k].(float64); !ok || f < 0 || f != float64(int64(f)) {
			t.Errorf("%s is %#v, want a whole number: %s", k, m[k], line)
		}
	}
	switch m["kind"] {
	case "nodelist", "quorum", "disconnected", "reconnected", "error":
	default:
		t.Errorf("kind %#v: %s", m["kind"], line)
	}
	for _, k := range []string{"initial", "quorate"} {
		if _, ok := m[k].(bool); !ok {
			t.Errorf("%s is %T, want bool: %s", k, m[k], line)
		}
	}
	// state says what quorate alone cannot: whether the state is known.
	switch st := m["state"]; {
	case st == "quorate" && m["quorate"] == true && (m["kind"] == "nodelist" || m["kind"] == "quorum"):
	case st == "inquorate" && m["quorate"] == false && (m["kind"] == "nodelist" || m["kind"] == "quorum"):
	case st == "unknown" && m["quorate"] == false:
	default:
		t.Errorf("state %#v with quorate %v, kind %v: %s", st, m["quorate"], m["kind"], line)
	}
	ring, ok := m["ring_id"].(map[string]any)
	if !ok || len(ring) != 2 {
		t.Fatalf("ring_id is %#v: %s", m["ring_id"], line)
	}
	for _, k := range []string{"node_id", "seq"} {
		if f, ok := ring[k].(float64); !ok || f < 0 || f != float64(int64(f)) {
			t.Errorf("ring_id.%s is %#v: %s", k, ring[k], line)
		}
	}
	for _, k := range []string{"members", "joined", "left"} {
		idList(t, line, k, m[k])
	}
	return m
}

func checkJSONScenario(t *testing.T, out string, exp []want) {
	t.Helper()
	got := lines(out)
	if len(got) != len(exp) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(exp), out)
	}
	var lastRing float64
	for i, line := range got {
		m := checkJSONLine(t, line)
		w := exp[i]
		if m["seq"] != float64(i+1) {
			t.Errorf("line %d: seq %v, want %d (contiguous from 1)", i+1, m["seq"], i+1)
		}
		if m["kind"] != w.kind || m["initial"] != w.initial {
			t.Errorf("line %d: kind %v initial %v, want %s %v", i+1, m["kind"], m["initial"], w.kind, w.initial)
		}
		if m["quorate"] != w.quorate {
			t.Errorf("line %d: quorate %v, want %v", i+1, m["quorate"], w.quorate)
		}
		members, joined, left := idList(t, line, "members", m["members"]), idList(t, line, "joined", m["joined"]), idList(t, line, "left", m["left"])
		if !slices.Equal(members, w.members) || !slices.Equal(joined, w.joined) || !slices.Equal(left, w.left) {
			t.Errorf("line %d: %s\nwant members %v joined %v left %v", i+1, line, w.members, w.joined, w.left)
		}
		ring := m["ring_id"].(map[string]any)
		// corosync names a ring after its lowest member.
		if ring["node_id"] != float64(w.members[0]) {
			t.Errorf("line %d: ring node %v, want %d", i+1, ring["node_id"], w.members[0])
		}
		if seq := ring["seq"].(float64); seq < lastRing {
			t.Errorf("line %d: ring seq went back from %v to %v", i+1, lastRing, seq)
		} else {
			lastRing = seq
		}
		if _, hasErr := m["error"]; hasErr != (w.kind == "disconnected") {
			t.Errorf("line %d: error key present=%v on a %s event", i+1, hasErr, w.kind)
		}
		if m["coalesced"] != float64(0) {
			t.Errorf("line %d: coalesced in a lossless scenario: %s", i+1, line)
		}
	}
}

func TestSimJSON(t *testing.T) {
	code, out, errOut := runT(t, context.Background(), fastEnv, "--sim", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	checkJSONScenario(t, out, scenarioFor(1))
}

func TestSimOtherNode(t *testing.T) {
	code, out, errOut := runT(t, context.Background(), fastEnv, "--sim", "--json", "--node", "3")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	checkJSONScenario(t, out, scenarioFor(3))
	if !strings.Contains(errOut, "nodes 3 and 1 on one side, node 2 on the other") {
		t.Errorf("the partition should keep node 3 with node 1; stderr:\n%s", errOut)
	}
}

func TestSimChangesOnly(t *testing.T) {
	code, out, errOut := runT(t, context.Background(), fastEnv, "--sim", "--json", "--flags", "changes-only")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	// No snapshot at the start; after the reconnection the engine sends one
	// to every subscriber, since events may have been missed meanwhile.
	checkJSONScenario(t, out, scenarioFor(1)[2:])
}

func TestSimPaced(t *testing.T) {
	// The pace separates the steps: eight steps, each after the pace.
	pace := 30 * time.Millisecond
	start := time.Now()
	code, out, errOut := runT(t, context.Background(), env{pace: pace}, "--sim")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if d := time.Since(start); d < 9*pace {
		t.Errorf("scenario took %v, want at least %v (9 pauses)", d, 9*pace)
	}
	if n := len(lines(out)); n != 20 {
		t.Errorf("%d lines, want 20", n)
	}
}

func newSim(t testing.TB) *quorum.SimCluster {
	t.Helper()
	c, err := quorum.NewSimClusterN(5)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOnce(t *testing.T) {
	t.Run("quorate", func(t *testing.T) {
		c := newSim(t)
		code, out, errOut := runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once")
		if code != 0 {
			t.Fatalf("exit %d, want 0; stderr:\n%s", code, errOut)
		}
		got := lines(out)
		if len(got) != 2 || !strings.Contains(got[0], " nodelist ") || !strings.Contains(got[1], " quorum ring 1.") ||
			!strings.Contains(got[1], " quorate members [1 2 3 4 5]") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("not quorate", func(t *testing.T) {
		c := newSim(t)
		for _, id := range []uint32{3, 4, 5} {
			if err := c.Stop(id); err != nil {
				t.Fatal(err)
			}
		}
		code, out, errOut := runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once", "--json")
		if code != 2 {
			t.Fatalf("exit %d, want 2; stderr:\n%s", code, errOut)
		}
		got := lines(out)
		if len(got) != 2 {
			t.Fatalf("output:\n%s", out)
		}
		m := checkJSONLine(t, got[1])
		if m["kind"] != "quorum" || m["quorate"] != false || !slices.Equal(idList(t, got[1], "members", m["members"]), []uint32{1, 2}) {
			t.Errorf("last line %s", got[1])
		}
	})
	t.Run("other node", func(t *testing.T) {
		c := newSim(t)
		if err := c.Partition([]uint32{1, 2, 3}, []uint32{4, 5}); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once", "--node", "4"); code != 2 {
			t.Errorf("node 4: exit %d, want 2; stderr:\n%s", code, errOut)
		}
		if code, _, errOut := runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once", "--node", "2"); code != 0 {
			t.Errorf("node 2: exit %d, want 0; stderr:\n%s", code, errOut)
		}
	})
	t.Run("access denied", func(t *testing.T) {
		c := newSim(t)
		if err := c.FailConnects(1, 1, quorum.ErrAccess); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once")
		if code != 1 || out != "" || !strings.Contains(errOut, "CS_ERR_ACCESS") {
			t.Errorf("exit %d, want 1 with CS_ERR_ACCESS on stderr; stdout %q stderr %q", code, out, errOut)
		}
	})
	t.Run("corosync down", func(t *testing.T) {
		// As with corosync-quorumtool: at once, saying what to check, and
		// never waiting for the timeout (an hour here).
		c := newSim(t)
		if err := c.Stop(1); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once", "--timeout", "1h")
		if code != 1 || out != "" || !strings.Contains(errOut, "CS_ERR_LIBRARY") || !strings.Contains(errOut, "Is corosync running") ||
			strings.Count(errOut, "quorum: ") != 1 {
			t.Errorf("exit %d, want 1 with the error and a hint on stderr; stdout %q stderr %q", code, out, errOut)
		}
		code, out, _ = runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once", "--json", "--timeout", "1h")
		if code != 1 || len(lines(out)) != 1 {
			t.Fatalf("--json: exit %d, stdout %q; want 1 and one error object", code, out)
		}
		if m := checkJSONLine(t, lines(out)[0]); m["kind"] != "error" || !strings.Contains(m["error"].(string), "CS_ERR_LIBRARY") {
			t.Errorf("--json error object %v", m)
		}
	})
	t.Run("corosync starting", func(t *testing.T) {
		// TRY_AGAIN is waited out.
		c := newSim(t)
		if err := c.FailConnects(1, 3, quorum.ErrTryAgain); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once"); code != 0 {
			t.Errorf("exit %d, want 0; stderr %q", code, errOut)
		}
	})
	t.Run("corosync hangs", func(t *testing.T) {
		c := newSim(t)
		if err := c.Freeze(1); err != nil {
			t.Fatal(err)
		}
		defer c.Thaw(1)
		code, _, errOut := runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once", "--timeout", "200ms")
		if code != 1 || errOut == "" {
			t.Errorf("exit %d, want 1 with a message; stderr %q", code, errOut)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		// Ctrl-C before the state: neither quorate nor not, and quiet.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		code, out, errOut := runT(t, ctx, env{sim: newSim(t)}, "--backend", "sim", "--once")
		if code != 130 || out != "" || errOut != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 130 and nothing printed", code, out, errOut)
		}
	})
}

func TestBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string // part of the message
	}{
		{[]string{"--backend", "foo"}, "--backend"},
		{[]string{"--flags", "bogus"}, "bogus"},
		{[]string{"--flags", ""}, "--flags"},
		{[]string{"--flags", "current,,changes"}, "empty item"},
		{[]string{"--timeout", "0"}, "--timeout"},
		{[]string{"--timeout", "-1s"}, "--timeout"},
		{[]string{"--timeout", "soon"}, "timeout"},
		{[]string{"--node", "2"}, "--node"},
		{[]string{"--node", "0", "--sim"}, "--node"},
		{[]string{"--node", "-1", "--sim"}, "node"},
		{[]string{"--node", "9", "--sim"}, "--node 9"},
		{[]string{"--once", "--sim"}, "--once"},
		{[]string{"--once", "--flags", "changes"}, "--flags"},
		{[]string{"--sim", "--backend", "libquorum"}, "--backend"},
		{[]string{"--sim", "--flags", "current"}, "--flags"},
		{[]string{"--nope"}, "nope"},
		{[]string{"stray"}, "stray"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runT(t, context.Background(), fastEnv, tc.args...)
			if code != 1 || out != "" {
				t.Errorf("exit %d stdout %q, want 1 and nothing", code, out)
			}
			if !strings.Contains(errOut, tc.msg) || !strings.Contains(errOut, "--help") {
				t.Errorf("stderr %q should mention %q and point to --help", errOut, tc.msg)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	code, out, errOut := runT(t, context.Background(), fastEnv, "--help")
	if code != 0 || !strings.Contains(out, "Usage: quorumwatch") || errOut != "" {
		t.Errorf("exit %d stdout %q stderr %q", code, out, errOut)
	}
}

// waitLines waits until out holds at least n lines.
func waitLines(t *testing.T, out *syncbuf.Buffer, n int) {
	t.Helper()
	if got, ok := out.Wait(3*time.Second, func(s string) bool { return len(lines(s)) >= n }); !ok {
		t.Fatalf("no %d lines within 3s:\n%s", n, got)
	}
}

func TestCancelEndsStream(t *testing.T) {
	c := newSim(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- runEnv(ctx, []string{"--backend", "sim"}, &out, &errOut, env{sim: c}) }()
	waitLines(t, &out, 2)
	if err := c.Stop(5); err != nil {
		t.Fatal(err)
	}
	waitLines(t, &out, 4)
	cancel()
	select {
	case code := <-done:
		if code != 0 || errOut.String() != "" {
			t.Errorf("exit %d stderr %q, want 0 and nothing", code, errOut.String())
		}
	case <-time.After(3 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
	if got := lines(out.String()); len(got) != 4 || !strings.Contains(got[2], "left [5]") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestCancelWhileConnecting(t *testing.T) {
	c := newSim(t)
	if err := c.Stop(1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	code, out, errOut := runT(t, ctx, env{sim: c}, "--backend", "sim")
	if code != 0 || out != "" || errOut != "" {
		t.Errorf("exit %d stdout %q stderr %q, want a quiet 0", code, out, errOut)
	}
}

func TestStreamEndsInError(t *testing.T) {
	c := newSim(t)
	var out, errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(context.Background(), []string{"--backend", "sim", "--json"}, &out, &errOut, env{sim: c})
	}()
	waitLines(t, &out, 2)
	// corosync restarts and no longer accepts this process: the engine's
	// reconnection fails for good and the stream ends.
	if err := c.FailConnects(1, 1, quorum.ErrAccess); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(1); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(errOut.String(), "CS_ERR_ACCESS") {
			t.Errorf("exit %d stderr %q, want 1 and the error", code, errOut.String())
		}
	case <-time.After(3 * time.Second):
		t.Fatal("run did not end with its stream")
	}
	got := lines(out.String())
	if len(got) < 3 {
		t.Fatalf("output:\n%s", out.String())
	}
	m := checkJSONLine(t, got[len(got)-1])
	if m["kind"] != "error" || !strings.Contains(m["error"].(string), "CS_ERR_ACCESS") {
		t.Errorf("last line %s, want the error event", got[len(got)-1])
	}
}

func TestFormat(t *testing.T) {
	ts := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.FixedZone("X", 3600))
	ev := quorum.QuorumEvent{Time: ts, Seq: 7, Kind: quorum.EventQuorum, Quorate: false,
		RingID: quorum.RingID{NodeID: 2, Seq: 40}, Members: []uint32{2, 3}, Left: []uint32{1},
		Initial: true, Coalesced: 3, Err: errors.New("two\nlines")}
	// The ring id in hex, as corosync prints it; an event with an error
	// carries no known state.
	wantLine := "2026-11-25T09:00:00.123Z #7 quorum ring 2.28 unknown members [2 3] joined [] left [1] initial coalesced 3 error: two; lines"
	if got := humanLine(ev, ""); got != wantLine {
		t.Errorf("humanLine:\n got %q\nwant %q", got, wantLine)
	}
	var buf bytes.Buffer
	if err := encodeJSON(&buf, toJSON(ev)); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"time":"2026-11-25T09:00:00.123456789Z","seq":7,"kind":"quorum","initial":true,"quorate":false,"state":"unknown",` +
		`"ring_id":{"node_id":2,"seq":40},"members":[2,3],"joined":[],"left":[1],"coalesced":3,"error":"two\nlines"}` + "\n"
	if buf.String() != wantJSON {
		t.Errorf("JSON:\n got %s\nwant %s", buf.String(), wantJSON)
	}
	checkJSONLine(t, strings.TrimSuffix(buf.String(), "\n"))

	ev = quorum.QuorumEvent{Time: ts, Seq: 1, Kind: quorum.EventReconnected}
	if got, want := humanLine(ev, ""), "2026-11-25T09:00:00.123Z #1 reconnected ring 0.0 unknown members [] joined [] left []"; got != want {
		t.Errorf("humanLine:\n got %q\nwant %q", got, want)
	}
	buf.Reset()
	if err := encodeJSON(&buf, toJSON(ev)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "null") || strings.Contains(buf.String(), `"error"`) {
		t.Errorf("JSON with null or an empty error: %s", buf.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestOutputFailure(t *testing.T) {
	var errOut syncbuf.Buffer
	code := runEnv(context.Background(), []string{"--sim"}, failingWriter{}, &errOut, fastEnv)
	if code != 1 || !strings.Contains(errOut.String(), "writing output") {
		t.Errorf("exit %d stderr %q, want 1 and the write error", code, errOut.String())
	}
}

// stallingWriter holds up the line that contains stall, as a slow terminal
// or pipe would, so that events pile up behind it.
type stallingWriter struct {
	syncbuf.Buffer
	stall string
	d     time.Duration
}

func (s *stallingWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(s.stall)) {
		time.Sleep(s.d)
	}
	return s.Buffer.Write(p)
}

func TestSimShowsEveryEvent(t *testing.T) {
	// While the disconnected line is stuck, the engine reconnects and sends
	// three more events: a coalescing subscription would merge them.
	out := &stallingWriter{stall: " disconnected ", d: 300 * time.Millisecond}
	var errOut syncbuf.Buffer
	if code := runEnv(context.Background(), []string{"--sim"}, out, &errOut, fastEnv); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
	got := lines(out.String())
	if len(got) != 20 || strings.Contains(out.String(), "coalesced") {
		t.Errorf("want 20 events, none coalesced:\n%s", out.String())
	}
}

// TestSignalsEndCommand runs the command as a process (this test binary
// acting as quorumwatch) and stops it the way a user or init system would.
func TestSignalsEndCommand(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "--backend", "sim", "--json")
			cmd.Env = commandEnv(os.Environ())
			var out, errOut syncbuf.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitLines(t, &out, 2)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil || errOut.String() != "" {
				t.Errorf("after %v: %v, want exit 0; stderr %q", sig, err, errOut.String())
			}
			for _, line := range lines(out.String()) {
				checkJSONLine(t, line)
			}
		})
	}
}
