//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/testcluster"
)

// TestRealCorosync runs the command, as a separate process inside node 1's
// network namespace, against a real 3-node corosync cluster: --once with
// every real backend built in, then a stream (native backend) while nodes
// leave and return and node 1's corosync restarts. It takes about 15 s, so it
// runs only in a libquorum build or with QUORUM_REQUIRE_CLUSTER=1 (as CI
// does); it needs root and the corosync package, and testcluster skips it
// without them (or fails it under QUORUM_REQUIRE_CLUSTER=1).
func TestRealCorosync(t *testing.T) {
	if !libquorumBuilt && os.Getenv(testcluster.RequireEnv) != "1" {
		t.Skipf("a real-cluster test of about 15 s: run it with -tags libquorum or %s=1", testcluster.RequireEnv)
	}
	c := testcluster.Start(t, 3)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	command := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := c.Exec(ctx, 1, exe, args...)
		cmd.Env = commandEnv(cmd.Env) // the node's: its corosync's libraries
		return cmd
	}
	once := func(args ...string) (code int, stdout, stderr string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := command(ctx, append([]string{"--once", "--timeout", "10s"}, args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("quorumwatch %v: %v", args, err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
	}

	// --once with each backend named, then by default.
	backends := []string{"native"}
	if libquorumBuilt {
		backends = append(backends, "libquorum", "auto")
	}
	for _, b := range backends {
		code, out, errOut := once("--backend", b, "--json")
		if code != 0 {
			t.Fatalf("--backend %s --once on a quorate cluster: exit %d, stderr:\n%s", b, code, errOut)
		}
		got := lines(out)
		if len(got) != 2 {
			t.Fatalf("--backend %s --once output:\n%s", b, out)
		}
		for i, line := range got {
			m := checkJSONLine(t, line)
			if m["kind"] != []string{"nodelist", "quorum"}[i] || m["initial"] != true || m["quorate"] != true ||
				m["ring_id"].(map[string]any)["node_id"] != float64(1) ||
				!slices.Equal(idList(t, line, "members", m["members"]), []uint32{1, 2, 3}) {
				t.Errorf("--backend %s --once line %d: %s", b, i+1, line)
			}
		}
	}
	if code, out, errOut := once("--backend", "native"); code != 0 || !strings.Contains(out, " quorate members [1 2 3] ") {
		t.Errorf("--once as text: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	// --picture --once lays the picture out as corosync-quorumtool -s
	// does: every line the tool prints but the date, in the same words and
	// columns.
	st, err := c.Quorumtool(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends {
		code, out, errOut := once("--backend", b, "--picture")
		if code != 0 {
			t.Fatalf("--backend %s --picture --once: exit %d, stderr:\n%s", b, code, errOut)
		}
		ours := map[string]bool{}
		for _, line := range strings.Split(out, "\n") {
			ours[strings.TrimRight(line, " ")] = true
		}
		for _, line := range strings.Split(st.Raw, "\n") {
			line = strings.TrimRight(line, " ")
			if line != "" && !strings.HasPrefix(line, "Date:") && !ours[line] {
				t.Errorf("--backend %s --picture --once lacks corosync-quorumtool's line %q:\n%s", b, line, out)
			}
		}
	}

	// The stream, while nodes leave and one comes back.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := command(ctx, "--backend", "native", "--json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var streamErr bytes.Buffer
	cmd.Stderr = &streamErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	lineCh := make(chan string)
	go func() {
		defer close(lineCh)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lineCh <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	seq := 0
	// next returns the next event, checking the schema and the numbering.
	next := func(what string) map[string]any {
		t.Helper()
		select {
		case line, ok := <-lineCh:
			if !ok {
				t.Fatalf("waiting for %s: the stream ended; stderr:\n%s", what, streamErr.String())
			}
			m := checkJSONLine(t, line)
			seq++
			if m["seq"] != float64(seq) {
				t.Fatalf("seq %v, want %d: %s", m["seq"], seq, line)
			}
			t.Logf("%s", line)
			return m
		case <-time.After(45 * time.Second):
			t.Fatalf("waiting for %s: no event within 45s", what)
		}
		return nil
	}
	ids := func(m map[string]any, k string) []uint32 { return idList(t, k, k, m[k]) }
	var lastMembers []uint32
	// change expects a nodelist event and its quorum event, after the two
	// events of any ring re-formed with the last members (see
	// testcluster.Reformed).
	change := func(what string, members, joined, left []uint32, quorate bool) {
		t.Helper()
		nl := next(what)
		q := next(what + " (quorum)")
		for nl["kind"] == "nodelist" && testcluster.Reformed(lastMembers, ids(nl, "members"), ids(nl, "joined"), ids(nl, "left")) {
			t.Logf("skipped a ring re-formed with the same members")
			nl, q = next(what), next(what+" (quorum)")
		}
		lastMembers = ids(nl, "members")
		if nl["kind"] != "nodelist" || !slices.Equal(ids(nl, "members"), members) ||
			!slices.Equal(ids(nl, "joined"), joined) || !slices.Equal(ids(nl, "left"), left) {
			t.Fatalf("%s: nodelist event %v, want members %v joined %v left %v", what, nl, members, joined, left)
		}
		if q["kind"] != "quorum" || q["quorate"] != quorate || !slices.Equal(ids(q, "members"), members) {
			t.Fatalf("%s: quorum event %v, want quorate %v members %v", what, q, quorate, members)
		}
		if nr, qr := nl["ring_id"].(map[string]any), q["ring_id"].(map[string]any); nr["seq"] != qr["seq"] || nr["node_id"] != qr["node_id"] {
			t.Fatalf("%s: the quorum event's ring %v is not the nodelist's %v", what, qr, nr)
		}
	}

	first := next("the snapshot")
	if first["kind"] != "nodelist" || first["initial"] != true {
		t.Fatalf("first event %v, want the snapshot's nodelist", first)
	}
	lastMembers = ids(first, "members")
	if m := next("the snapshot"); m["kind"] != "quorum" || m["initial"] != true || m["quorate"] != true {
		t.Fatalf("second event %v, want the snapshot's quorum event, quorate", m)
	}
	if err := c.Kill(3); err != nil {
		t.Fatal(err)
	}
	change("node 3 leaving", []uint32{1, 2}, []uint32{}, []uint32{3}, true)
	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	change("node 2 leaving", []uint32{1}, []uint32{}, []uint32{2}, false)
	if code, out, errOut := once("--backend", "native"); code != 2 {
		t.Errorf("--once without quorum: exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	change("node 2 rejoining", []uint32{1, 2}, []uint32{2}, []uint32{}, true)

	// corosync restarts under the command: it reconnects on its own.
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	if m := next("the disconnection"); m["kind"] != "disconnected" || m["quorate"] != false || m["error"] == nil {
		t.Fatalf("after killing node 1's corosync: %v, want a disconnected event with an error", m)
	}
	if err := c.Start(1); err != nil {
		t.Fatal(err)
	}
	if m := next("the reconnection"); m["kind"] != "reconnected" {
		t.Fatalf("after restarting node 1's corosync: %v, want a reconnected event", m)
	}
	if m := next("the new snapshot"); m["kind"] != "nodelist" || m["initial"] != true {
		t.Fatalf("after the reconnection: %v, want the snapshot's nodelist", m)
	}
	if m := next("the new snapshot"); m["kind"] != "quorum" || m["initial"] != true {
		t.Fatalf("after the reconnection: %v, want the snapshot's quorum event", m)
	}
	// Node 1 may take its snapshot before it has found node 2 again.
	for {
		m := next("node 1 and 2 together again")
		if m["kind"] == "quorum" && m["quorate"] == true &&
			slices.Equal(idList(t, "members", "members", m["members"]), []uint32{1, 2}) {
			break
		}
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	limit := time.After(10 * time.Second)
drain:
	for {
		select {
		case line, ok := <-lineCh:
			if !ok {
				break drain
			}
			t.Errorf("event after SIGINT: %s", line)
		case <-limit:
			t.Fatal("quorumwatch still running 10s after SIGINT")
		}
	}
	err = cmd.Wait()
	waited = true
	if err != nil || streamErr.Len() != 0 {
		t.Errorf("after SIGINT: %v, want exit 0 and a quiet stderr:\n%s", err, streamErr.String())
	}
}
