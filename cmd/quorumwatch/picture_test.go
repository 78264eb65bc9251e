package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/corosync-go/quorum"
	"github.com/corosync-go/quorum/internal/syncbuf"
)

func TestPictureOnce(t *testing.T) {
	t.Run("summary", func(t *testing.T) {
		c := newSim(t)
		if err := c.Stop(5); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once", "--picture")
		if code != 0 {
			t.Fatalf("exit %d, want 0; stderr:\n%s", code, errOut)
		}
		// The lines corosync-quorumtool -s prints, with its spacing.
		for _, line := range []string{
			"Quorum provider:  corosync_votequorum",
			"Nodes:            4",
			"Node ID:          1",
			"Quorate:          Yes",
			"Expected votes:   5",
			"Total votes:      4",
			"Quorum:           3",
			"Flags:            Quorate",
			"    Nodeid      Votes Name",
			"         1          1 node1 (local)",
			"         4          1 node4",
			"         5          1       dead node5",
		} {
			if !strings.Contains(out, line+"\n") {
				t.Errorf("no line %q in:\n%s", line, out)
			}
		}
	})
	t.Run("not quorate, JSON", func(t *testing.T) {
		c := newSim(t)
		for _, id := range []uint32{3, 4, 5} {
			if err := c.Stop(id); err != nil {
				t.Fatal(err)
			}
		}
		code, out, errOut := runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once", "--picture", "--json")
		if code != 2 {
			t.Fatalf("exit %d, want 2; stderr:\n%s", code, errOut)
		}
		got := lines(out)
		if len(got) != 1 {
			t.Fatalf("output:\n%s", out)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(got[0]), &m); err != nil {
			t.Fatalf("%v: %s", err, got[0])
		}
		if m["kind"] != "picture" || m["quorate"] != false || m["state"] != "inquorate" || m["total_votes"] != 2.0 ||
			m["quorum"] != 3.0 || m["ring_id_text"] == "" {
			t.Errorf("picture %s", got[0])
		}
		nodes := m["nodes"].([]any)
		if len(nodes) != 5 || nodes[0].(map[string]any)["name"] != "node1" || nodes[4].(map[string]any)["state"] != "dead" {
			t.Errorf("nodes %v", nodes)
		}
	})
	t.Run("corosync down", func(t *testing.T) {
		c := newSim(t)
		if err := c.Stop(1); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once", "--picture", "--timeout", "1h")
		if code != 1 || out != "" || !strings.Contains(errOut, "Is corosync running") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1 and a hint", code, out, errOut)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{"--picture", "--sim"}, {"--picture", "--flags", "changes"}} {
			if code, _, errOut := runT(t, context.Background(), fastEnv, args...); code != 1 || !strings.Contains(errOut, "--picture") {
				t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
			}
		}
	})
}

// TestPictureStream: a line per change, with names and votes, until
// interrupted.
func TestPictureStream(t *testing.T) {
	c := newSim(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- runEnv(ctx, []string{"--backend", "sim", "--picture"}, &out, &errOut, env{sim: c}) }()
	waitLines(t, &out, 1)
	if first := lines(out.String())[0]; !strings.Contains(first,
		" quorate expected 5 total 5 quorum 3 flags [Quorate] nodes node1(1):1:member:local node2(2):1:member ") {
		t.Fatalf("first line %q", first)
	}
	if err := c.Stop(4); err != nil {
		t.Fatal(err)
	}
	// The change at once (syncing), then with the votes re-read.
	waitLines(t, &out, 3)
	got := lines(out.String())
	if !strings.Contains(got[1], " node4(4):1:dead") || !strings.HasSuffix(got[1], " syncing") {
		t.Errorf("second line %q: want node 4 dead, syncing", got[1])
	}
	if !strings.Contains(got[2], " total 4 ") || strings.Contains(got[2], "syncing") {
		t.Errorf("third line %q: want the votes re-read", got[2])
	}
	cancel()
	if code := <-done; code != 0 || errOut.String() != "" {
		t.Fatalf("exit %d, stderr %q after interrupt", code, errOut.String())
	}
}

// TestNames: text lines name the nodes they show; JSON keeps ids.
func TestNames(t *testing.T) {
	nodes := []quorum.NodeInfo{{ID: 1, Name: "alpha"}, {ID: 2, Name: "db.example"}, {ID: 3}}
	if got, want := nameLegend(nodes, []uint32{1, 2, 3}, nil, []uint32{2, 7}), " names 1=alpha 2=db.example"; got != want {
		t.Errorf("legend %q, want %q", got, want)
	}
	if got := nameLegend(nodes, []uint32{3, 7}); got != "" {
		t.Errorf("legend of unnamed nodes %q, want none", got)
	}
	c := newSim(t)
	code, out, errOut := runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once")
	if code != 0 || !strings.Contains(out, " members [1 2 3 4 5] joined [] left [] names 1=node1 2=node2 3=node3 4=node4 5=node5 initial\n") {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, _ = runT(t, context.Background(), env{sim: c}, "--backend", "sim", "--once", "--json")
	if code != 0 || strings.Contains(out, "node1") {
		t.Errorf("--json: exit %d, stdout:\n%s", code, out)
	}
}
