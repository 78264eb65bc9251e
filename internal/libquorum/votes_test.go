//go:build libquorum && cgo && linux

package libquorum

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
	"github.com/corosync-go/quorum/internal/testcluster"
)

// dialVotes runs DialVotes on a thread inside node i's network namespace.
func dialVotes(t *testing.T, cl *testcluster.Cluster, i int, ctx context.Context, trusted []uint32) (vc *VoteConn, err error) {
	t.Helper()
	if e := cl.InNode(i, func() error {
		vc, err = DialVotes(ctx, trusted)
		return nil
	}); e != nil {
		t.Fatal(e)
	}
	return vc, err
}

// mustDialVotes connects to node i and registers the Close.
func mustDialVotes(t *testing.T, cl *testcluster.Cluster, i int) *VoteConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vc, err := dialVotes(t, cl, i, ctx, nil)
	if err != nil {
		t.Fatalf("DialVotes: %v", err)
	}
	t.Cleanup(func() { vc.Close() })
	return vc
}

// pollVotes waits up to d for one of vc's descriptors to be readable; it
// reports whether one was.
func pollVotes(t *testing.T, vc *VoteConn, d time.Duration) bool {
	t.Helper()
	var fds []unix.PollFd
	for _, fd := range vc.Fds() {
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	deadline := time.Now().Add(d)
	for {
		n, err := unix.Poll(fds, int(time.Until(deadline)/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
}

// waitVotes dispatches until done returns true for the events received so
// far, or fails the test after timeout.
func waitVotes(t *testing.T, vc *VoteConn, timeout time.Duration, done func([]model.VoteEvent) bool) []model.VoteEvent {
	t.Helper()
	var got []model.VoteEvent
	deadline := time.Now().Add(timeout)
	for !done(got) {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("after %v, got %s", timeout, formatVotes(got))
		}
		pollVotes(t, vc, left)
		if err := vc.Dispatch(func(ev model.VoteEvent) { got = append(got, ev) }); err != nil {
			t.Fatalf("Dispatch: %v (after %s)", err, formatVotes(got))
		}
	}
	return got
}

// waitVoteCount waits for n events.
func waitVoteCount(t *testing.T, vc *VoteConn, n int, timeout time.Duration) []model.VoteEvent {
	t.Helper()
	return waitVotes(t, vc, timeout, func(got []model.VoteEvent) bool { return len(got) >= n })
}

func formatVotes(evs []model.VoteEvent) string {
	var b strings.Builder
	b.WriteString("[")
	for i, ev := range evs {
		if i > 0 {
			b.WriteString("; ")
		}
		switch ev.Kind {
		case model.VoteQuorum:
			fmt.Fprintf(&b, "quorum quorate %v nodes %v", ev.Quorate, ev.Nodes)
		case model.VoteExpected:
			fmt.Fprintf(&b, "expected %d", ev.Expected)
		case model.VoteNodeList:
			fmt.Fprintf(&b, "nodelist ring %x.%x members %v", ev.Ring.NodeID, ev.Ring.Seq, ev.Members)
		case model.ConfigChanged:
			b.WriteString("config changed")
		default:
			fmt.Fprintf(&b, "kind %d", ev.Kind)
		}
	}
	b.WriteString("]")
	return b.String()
}

// checkVoteSnapshot checks a trackstart's snapshot: a nodelist then a
// quorum notification.
func checkVoteSnapshot(t *testing.T, got []model.VoteEvent, members []uint32, quorate bool) {
	t.Helper()
	if len(got) != 2 || got[0].Kind != model.VoteNodeList || got[1].Kind != model.VoteQuorum {
		t.Fatalf("snapshot %s: want a nodelist then a quorum notification", formatVotes(got))
	}
	if !slices.Equal(got[0].Members, members) || got[0].Ring.Seq == 0 {
		t.Errorf("snapshot nodelist %s: want members %v and a ring", formatVotes(got[:1]), members)
	}
	var want []model.VoteNode
	for _, id := range members {
		want = append(want, model.VoteNode{ID: id, State: model.NodeMember})
	}
	if got[1].Quorate != quorate || !slices.Equal(sortedNodes(got[1].Nodes), want) {
		t.Errorf("snapshot quorum %s: want quorate %v, nodes %v", formatVotes(got[1:]), quorate, want)
	}
}

// sortedNodes returns the entries of a quorum notification by id: corosync
// sends them in the order of votequorum's node list, not sorted.
func sortedNodes(nodes []model.VoteNode) []model.VoteNode {
	return slices.SortedFunc(slices.Values(nodes), func(a, b model.VoteNode) int { return cmp.Compare(a.ID, b.ID) })
}

// confNodes parses the nodelist of a corosync.conf the way corosync-quorumtool
// of that version names its nodes (see VoteConn.Config).
func confNodes(t *testing.T, path string, v2 bool) []model.ConfNode {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var nodes []model.ConfNode
	var cur map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "node {":
			cur = map[string]string{}
		case line == "}" && cur != nil:
			id, err := strconv.ParseUint(cur["nodeid"], 10, 32)
			if err != nil {
				t.Fatalf("%s: node without a nodeid: %v", path, cur)
			}
			n := model.ConfNode{ID: uint32(id), Name: cur["name"]}
			if v2 || n.Name == "" {
				n.Name = cur["ring0_addr"]
			}
			if v, ok := cur["quorum_votes"]; ok {
				x, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					t.Fatal(err)
				}
				n.Votes = uint32(x)
			}
			nodes = append(nodes, n)
			cur = nil
		case cur != nil:
			if k, v, ok := strings.Cut(line, ":"); ok {
				cur[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(nodes, func(a, b model.ConfNode) int { return cmp.Compare(a.ID, b.ID) })
	return nodes
}

// flagNames are corosync-quorumtool's names of votequorum's flags.
var flagNames = map[string]uint32{
	"2Node":           model.FlagTwoNode,
	"Quorate":         model.FlagQuorate,
	"WaitForAll":      model.FlagWaitForAll,
	"LastManStanding": model.FlagLastManStanding,
	"AutoTieBreaker":  model.FlagAutoTieBreaker,
	"AllowDownscale":  model.FlagAllowDownscale,
	"Qdevice":         model.FlagQdeviceRegistered,
}

func toolFlags(t *testing.T, names []string) uint32 {
	t.Helper()
	var f uint32
	for _, n := range names {
		bit, ok := flagNames[n]
		if !ok {
			t.Fatalf("unknown corosync-quorumtool flag %q", n)
		}
		f |= bit
	}
	return f
}

// checkInfo compares votequorum_getinfo of this node and of every member
// with corosync-quorumtool -s on node i.
func checkInfo(t *testing.T, ctx context.Context, vc *VoteConn, cl *testcluster.Cluster, i int) {
	t.Helper()
	st, err := cl.Quorumtool(i)
	if err != nil {
		t.Fatal(err)
	}
	self, err := vc.GetInfo(ctx, 0)
	if err != nil {
		t.Fatalf("GetInfo(0): %v", err)
	}
	if self.NodeID != uint32(i) || self.State != model.NodeMember {
		t.Errorf("GetInfo(0) = %+v: want node %d, a member", self, i)
	}
	if self.Expected != st.ExpectedVotes || self.HighestExpected != st.HighestExpected ||
		self.TotalVotes != st.TotalVotes || self.Quorum != st.Quorum {
		t.Errorf("GetInfo(0) = %+v; corosync-quorumtool -s says expected %d, highest %d, total %d, quorum %d",
			self, st.ExpectedVotes, st.HighestExpected, st.TotalVotes, st.Quorum)
	}
	if want := toolFlags(t, st.Flags); self.Flags&0x7f != want {
		t.Errorf("GetInfo(0) flags %#x; corosync-quorumtool -s says %v (%#x)", self.Flags, st.Flags, want)
	}
	if (self.Flags&model.FlagQuorate != 0) != st.Quorate {
		t.Errorf("GetInfo(0) flags %#x; corosync-quorumtool says quorate %v", self.Flags, st.Quorate)
	}
	for _, row := range st.Table {
		info, err := vc.GetInfo(ctx, row.NodeID)
		if err != nil {
			t.Fatalf("GetInfo(%d): %v", row.NodeID, err)
		}
		if info.NodeID != row.NodeID || info.Votes != row.Votes || info.State != model.NodeMember {
			t.Errorf("GetInfo(%d) = %+v; corosync-quorumtool -s shows %+v", row.NodeID, info, row)
		}
	}
	t.Logf("GetInfo(0) = %+v; quorumtool: %+v", self, st.Table)
}

// TestVotes runs the requests and the tracking on a 3-node cluster whose node
// 2 has 2 votes, in both IPC modes.
func TestVotes(t *testing.T) {
	for _, ipc := range ipcModes {
		t.Run(ipc, func(t *testing.T) { testVotes(t, ipc) })
	}
}

func testVotes(t *testing.T, ipc string) {
	opts := []testcluster.Option{testcluster.Votes(2, 2)}
	if ipc == "socket" {
		opts = append(opts, testcluster.SocketIPC())
	}
	cl := testcluster.Start(t, 3, opts...)
	v2 := !cl.Install().Version.AtLeast(3, 0, 0)
	vc := mustDialVotes(t, cl, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if vc.provider != votequorumProvider || len(vc.Fds()) != 2 {
		t.Fatalf("Provider %q, Fds %v: want %q and two descriptors", vc.provider, vc.Fds(), votequorumProvider)
	}
	if ipc == "socket" && (vc.cmap.pollFd < 0 || vc.vq.pollFd < 0) {
		t.Error("socket mode: a setup socket was not found, so corosync's exit would go unseen")
	}

	checkInfo(t, ctx, vc, cl, 1)
	_, err := vc.GetInfo(ctx, 99)
	wantCode(t, err, cs.ErrNotExist)

	cfg, err := vc.Config(ctx)
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	if want := confNodes(t, cl.ConfPath(1), v2); cfg.Provider != votequorumProvider || !slices.Equal(cfg.Nodes, want) {
		t.Errorf("Config = %+v; want provider %q, nodes %+v (from %s)", cfg, votequorumProvider, want, cl.ConfPath(1))
	}
	t.Logf("Config = %+v", cfg)

	// Nothing is queued before tracking starts.
	if err := vc.Dispatch(func(ev model.VoteEvent) { t.Errorf("unexpected %s", formatVotes([]model.VoteEvent{ev})) }); err != nil {
		t.Fatalf("Dispatch on an idle connection: %v", err)
	}
	if err := vc.TrackStart(ctx); err != nil {
		t.Fatalf("TrackStart: %v", err)
	}
	snap := waitVoteCount(t, vc, 2, 10*time.Second)
	checkVoteSnapshot(t, snap, []uint32{1, 2, 3}, true)
	if st, err := cl.Quorumtool(1); err == nil && (st.Ring.NodeID != snap[0].Ring.NodeID || st.Ring.Seq != snap[0].Ring.Seq) {
		t.Errorf("snapshot ring %x.%x; corosync-quorumtool -s says %s", snap[0].Ring.NodeID, snap[0].Ring.Seq, st.Ring)
	}
	// Once drained, the descriptors are quiet.
	if pollVotes(t, vc, 200*time.Millisecond) {
		t.Error("a descriptor is readable on a drained connection")
	}
	wantCode(t, vc.TrackStart(ctx), cs.ErrExist)
	checkVoteSnapshot(t, waitVoteCount(t, vc, 2, 10*time.Second), []uint32{1, 2, 3}, true)

	// Total votes are 4: expected 5 keeps quorum (3) within reach; 3 is
	// below the total, 9 would need 5 votes.
	if err := vc.SetExpected(ctx, 5); err != nil {
		t.Fatalf("SetExpected(5): %v", err)
	}
	waitVotes(t, vc, 10*time.Second, func(got []model.VoteEvent) bool {
		return slices.ContainsFunc(got, func(ev model.VoteEvent) bool { return ev.Kind == model.VoteExpected && ev.Expected == 5 })
	})
	if info, err := vc.GetInfo(ctx, 0); err != nil || info.Expected != 5 || info.Quorum != 3 {
		t.Errorf("GetInfo(0) after SetExpected(5) = %+v, %v; want expected 5, quorum 3", info, err)
	}
	checkInfo(t, ctx, vc, cl, 1)
	for _, e := range []uint32{3, 9} {
		ce := wantCode(t, vc.SetExpected(ctx, e), cs.ErrInvalidParam)
		if ce.Op != opVoteSetExpected {
			t.Errorf("SetExpected(%d): op %q", e, ce.Op)
		}
	}

	if err := vc.SetVotes(ctx, 3, 2); err != nil {
		t.Fatalf("SetVotes(3, 2): %v", err)
	}
	if info, err := vc.GetInfo(ctx, 3); err != nil || info.Votes != 2 {
		t.Errorf("GetInfo(3) after SetVotes(3, 2) = %+v, %v", info, err)
	}
	checkInfo(t, ctx, vc, cl, 1)
	wantCode(t, vc.SetVotes(ctx, 99, 1), cs.ErrNameNotFound)

	// Node 3 leaves: a nodelist of the rest, then a quorum notification
	// that still lists it, dead.
	if err := cl.Kill(3); err != nil {
		t.Fatal(err)
	}
	got := waitVotes(t, vc, 30*time.Second, func(got []model.VoteEvent) bool {
		return slices.ContainsFunc(got, func(ev model.VoteEvent) bool {
			return ev.Kind == model.VoteQuorum && slices.Contains(ev.Nodes, model.VoteNode{ID: 3, State: model.NodeDead})
		})
	})
	t.Logf("after node 3 was killed: %s", formatVotes(got))
	nl := slices.IndexFunc(got, func(ev model.VoteEvent) bool {
		return ev.Kind == model.VoteNodeList && slices.Equal(ev.Members, []uint32{1, 2})
	})
	if nl < 0 || nl > len(got)-1 || got[nl].Ring.Seq <= snap[0].Ring.Seq {
		t.Errorf("no nodelist notification with members [1 2] on a new ring before the quorum one: %s", formatVotes(got))
	}
	last := got[len(got)-1]
	want := []model.VoteNode{{ID: 1, State: model.NodeMember}, {ID: 2, State: model.NodeMember}, {ID: 3, State: model.NodeDead}}
	if !slices.Equal(sortedNodes(last.Nodes), want) {
		t.Errorf("quorum notification nodes %v, want %v", last.Nodes, want)
	}
	if err := cl.WaitMembers(ctx, 1, []uint32{1, 2}); err != nil {
		t.Fatal(err)
	}
	st, err := cl.Quorumtool(1)
	if err != nil {
		t.Fatal(err)
	}
	if last.Quorate != st.Quorate {
		t.Errorf("quorum notification quorate %v, corosync-quorumtool says %v", last.Quorate, st.Quorate)
	}
	if info, err := vc.GetInfo(ctx, 3); err != nil || info.State != model.NodeDead {
		t.Errorf("GetInfo(3) of the killed node = %+v, %v; want state dead", info, err)
	}
	checkInfo(t, ctx, vc, cl, 1)

	if err := vc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := vc.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = vc.GetInfo(ctx, 0)
	wantCode(t, err, cs.ErrBadHandle)
	_, err = vc.Config(ctx)
	wantCode(t, err, cs.ErrBadHandle)
	wantCode(t, vc.Dispatch(func(model.VoteEvent) {}), cs.ErrBadHandle)
}

// TestVotesConfigReload reloads node 1's corosync.conf with
// corosync-cfgtool -R: first a file that does not parse, then one where a
// node is renamed and given votes and a node is added.
func TestVotesConfigReload(t *testing.T) {
	cl := testcluster.Start(t, 1)
	v2 := !cl.Install().Version.AtLeast(3, 0, 0)
	fdsBefore := openFds(t)
	vc := mustDialVotes(t, cl, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := vc.TrackStart(ctx); err != nil {
		t.Fatalf("TrackStart: %v", err)
	}
	checkVoteSnapshot(t, waitVoteCount(t, vc, 2, 10*time.Second), []uint32{1}, true)

	path := cl.ConfPath(1)
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// A file that does not parse changes nothing. corosync 3.1 still sets
	// the reload marker to 1 (and leaves it there), which is not reported.
	if err := os.WriteFile(path, append(old, "nodelist {\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	// corosync-cfgtool 3.1.10 and later exit 0 all the same: the result of
	// their check for reload errors replaces the reload's.
	if out, err := cl.Output(ctx, 1, cl.Install().Cfgtool, "-R"); err == nil && !strings.Contains(string(out), "Could not reload") {
		t.Fatalf("corosync-cfgtool -R accepted a broken file: %s", out)
	}
	t.Logf("after a failed reload, a descriptor was readable: %v", pollVotes(t, vc, time.Second))
	if err := vc.Dispatch(func(ev model.VoteEvent) {
		t.Errorf("after a failed reload: %s", formatVotes([]model.VoteEvent{ev}))
	}); err != nil {
		t.Fatalf("Dispatch: %v", err)
	}

	text := strings.Replace(string(old), "name: node1", "name: renamed1\n\t\tquorum_votes: 2", 1)
	text = strings.Replace(text, "nodelist {", "nodelist {\n\tnode {\n\t\tname: node9\n\t\tnodeid: 9\n\t\tring0_addr: 10.213.0.9\n\t}", 1)
	if text == string(old) || !strings.Contains(text, "renamed1") {
		t.Fatalf("the config does not look as expected:\n%s", old)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := cl.Output(ctx, 1, cl.Install().Cfgtool, "-R"); err != nil {
		t.Fatalf("corosync-cfgtool -R: %v: %s", err, out)
	}
	got := waitVotes(t, vc, 10*time.Second, func(got []model.VoteEvent) bool {
		return slices.ContainsFunc(got, func(ev model.VoteEvent) bool { return ev.Kind == model.ConfigChanged })
	})
	t.Logf("after the reload: %s", formatVotes(got))
	cfg, err := vc.Config(ctx)
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	want := confNodes(t, path, v2)
	if len(want) != 2 || !slices.Equal(cfg.Nodes, want) {
		t.Errorf("Config after the reload = %+v; want nodes %+v", cfg, want)
	}
	t.Logf("Config = %+v", cfg)
	if err := vc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if after := openFds(t); after != fdsBefore {
		t.Errorf("%d descriptors open after Close, %d before DialVotes", after, fdsBefore)
	}
}

// TestVotesNoProvider runs a corosync without quorum.provider: there is no
// votequorum service, so only cmap is used.
func TestVotesNoProvider(t *testing.T) {
	cl := testcluster.Start(t, 1)
	if err := cl.Kill(1); err != nil {
		t.Fatal(err)
	}
	path := cl.ConfPath(1)
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(old), "provider: corosync_votequorum", "", 1)
	if text == string(old) {
		t.Fatalf("no provider line in:\n%s", old)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// Start would wait for corosync-quorumtool -s, which fails without a
	// provider ("Unable to start votequorum status tracking"): connecting
	// tells when corosync is ready.
	if err := cl.Spawn(1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var vc *VoteConn
	for vc == nil {
		vc, err = dialVotes(t, cl, 1, ctx, nil)
		if err != nil && !isCode(err, cs.ErrLibrary) && !isCode(err, cs.ErrTryAgain) {
			t.Fatalf("DialVotes: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatal("corosync did not start")
		}
	}
	defer vc.Close()
	if vc.provider != "" || len(vc.Fds()) != 1 {
		t.Fatalf("Provider %q, Fds %v: want none and one descriptor", vc.provider, vc.Fds())
	}
	_, err = vc.GetInfo(ctx, 0)
	for op, err := range map[string]error{
		opVoteGetInfo:     err,
		opVoteSetExpected: vc.SetExpected(ctx, 1),
		opVoteSetVotes:    vc.SetVotes(ctx, 1, 1),
	} {
		ce := wantCode(t, err, cs.ErrNotSupported)
		if ce.Op != op || !strings.Contains(ce.Error(), "no votequorum provider is configured") {
			t.Errorf("error %v: want op %s and the reason", ce, op)
		}
	}
	if err := vc.TrackStart(ctx); err != nil {
		t.Fatalf("TrackStart without votequorum: %v", err)
	}
	if err := vc.TrackStart(ctx); err != nil {
		t.Fatalf("second TrackStart without votequorum: %v", err)
	}
	if pollVotes(t, vc, 200*time.Millisecond) {
		t.Error("a descriptor is readable with nothing to dispatch")
	}
	cfg, err := vc.Config(ctx)
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	if want := confNodes(t, path, !cl.Install().Version.AtLeast(3, 0, 0)); cfg.Provider != "" || !slices.Equal(cfg.Nodes, want) {
		t.Errorf("Config = %+v; want no provider, nodes %+v", cfg, want)
	}
}

func TestVotesCorosyncGone(t *testing.T) {
	for _, ipc := range ipcModes {
		t.Run(ipc, func(t *testing.T) {
			n := newNode(t, ipc)
			vc := mustDialVotes(t, n.cl, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := vc.TrackStart(ctx); err != nil {
				t.Fatalf("TrackStart: %v", err)
			}
			waitVoteCount(t, vc, 2, 10*time.Second)
			n.kill()
			if !pollVotes(t, vc, 5*time.Second) {
				t.Fatal("no descriptor readable after corosync was killed")
			}
			err := vc.Dispatch(func(ev model.VoteEvent) {
				t.Errorf("event from a dead corosync: %s", formatVotes([]model.VoteEvent{ev}))
			})
			wantCode(t, err, cs.ErrLibrary)
			if err := vc.Close(); err != nil {
				t.Errorf("Close of a dead connection: %v", err)
			}
			_, err = dialVotes(t, n.cl, 1, ctx, nil)
			wantCode(t, err, cs.ErrLibrary)
		})
	}
}

func TestVotesHungCorosync(t *testing.T) {
	for _, ipc := range ipcModes {
		t.Run(ipc, func(t *testing.T) { testVotesHung(t, ipc) })
	}
}

func testVotesHung(t *testing.T, ipc string) {
	n := newNode(t, ipc)
	fdsBefore := openFds(t)
	vc := mustDialVotes(t, n.cl, 1)
	n.freeze()

	for name, call := range map[string]func(context.Context) error{
		"GetInfo": func(ctx context.Context) error { _, err := vc.GetInfo(ctx, 0); return err },
		"Config":  func(ctx context.Context) error { _, err := vc.Config(ctx); return err },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err := call(ctx)
		cancel()
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s took %v with a 300ms deadline", name, took)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s on a frozen corosync: %v; want DeadlineExceeded", name, err)
		}
		wantCode(t, err, cs.ErrTimeout)
	}
	// Each handle's first call still holds it: the next waits, and gives up
	// with its own context.
	for name, call := range map[string]func(context.Context) error{
		"SetExpected": func(ctx context.Context) error { return vc.SetExpected(ctx, 1) },
		"TrackStart":  vc.TrackStart,
	} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		err := call(ctx)
		if took := time.Since(start); took > time.Second {
			t.Errorf("queued %s took %v after its context was cancelled at 200ms", name, took)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("queued %s: %v; want Canceled", name, err)
		}
		wantCode(t, err, cs.ErrInterrupt)
	}

	start := time.Now()
	if err := vc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v on a frozen corosync", took)
	}
	start = time.Now()
	waitNoLeaks(t, 8*time.Second)
	t.Logf("the abandoned calls returned %v after Close, corosync still frozen", time.Since(start))

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := dialVotes(t, n.cl, 1, ctx, nil)
	if took := time.Since(start); took > time.Second {
		t.Errorf("DialVotes took %v with a 300ms deadline", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DialVotes on a frozen corosync: %v; want DeadlineExceeded", err)
	}
	n.thaw()
	waitNoLeaks(t, 8*time.Second)
	if after := openFds(t); after != fdsBefore {
		t.Errorf("%d descriptors open, %d before the first DialVotes", after, fdsBefore)
	}

	vc2 := mustDialVotes(t, n.cl, 1)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if info, err := vc2.GetInfo(ctx2, 0); err != nil || info.NodeID != 1 {
		t.Fatalf("GetInfo after SIGCONT = %+v, %v", info, err)
	}
}

// TestVotesDispatchDuringRequests dispatches on one goroutine while another
// asks for snapshots and reads: every snapshot arrives whole and in order.
func TestVotesDispatchDuringRequests(t *testing.T) {
	n := newNode(t, "shm")
	vc := mustDialVotes(t, n.cl, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const rounds = 200
	reqErr := make(chan error, 1)
	go func() {
		for i := range rounds {
			// Every call after the first is refused with CS_ERR_EXIST and
			// queues the snapshot all the same.
			if err := vc.TrackStart(ctx); err != nil && (i == 0 || !isCode(err, cs.ErrExist)) {
				reqErr <- err
				return
			}
			if info, err := vc.GetInfo(ctx, 0); err != nil || info.NodeID != 1 {
				reqErr <- fmt.Errorf("GetInfo = %+v, %v", info, err)
				return
			}
			if _, err := vc.Config(ctx); err != nil {
				reqErr <- err
				return
			}
		}
		reqErr <- nil
	}()
	var got []model.VoteEvent
	reqDone := false
	for !reqDone || len(got) < 2*rounds {
		select {
		case err := <-reqErr:
			if err != nil {
				t.Fatal(err)
			}
			reqDone = true
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d events", len(got), 2*rounds)
		}
		pollVotes(t, vc, 50*time.Millisecond)
		if err := vc.Dispatch(func(ev model.VoteEvent) { got = append(got, ev) }); err != nil {
			t.Fatalf("Dispatch: %v", err)
		}
	}
	if len(got) != 2*rounds {
		t.Fatalf("got %d events, want %d", len(got), 2*rounds)
	}
	for i := 0; i < len(got); i += 2 {
		checkVoteSnapshot(t, got[i:i+2], []uint32{1}, true)
		if t.Failed() {
			t.Fatalf("at event %d", i)
		}
	}
}

// TestVotesPeerCheck: while corosync is down, an unprivileged process binds
// cmap's and votequorum's names. DialVotes must refuse it unless its uid is
// trusted.
func TestVotesPeerCheck(t *testing.T) {
	for _, ipc := range ipcModes {
		t.Run(ipc, func(t *testing.T) {
			n := newNode(t, ipc)
			n.kill()
			pid := startFake(t, n, "fakevotes", ipc)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			_, err := dialVotes(t, n.cl, 1, ctx, nil)
			ce := wantCode(t, err, cs.ErrSecurity)
			t.Logf("refused: %v", err)
			if ce.Op != opCmapInit {
				t.Errorf("op %q, want %q", ce.Op, opCmapInit)
			}
			for _, want := range []string{"corosync's cmap socket", fmt.Sprintf("pid %d", pid),
				fmt.Sprintf("runs as uid %d", nobody), fmt.Sprintf("quorum.WithTrustedUIDs(%d)", nobody)} {
				if !strings.Contains(ce.Error(), want) {
					t.Errorf("error %q does not mention %q", ce.Error(), want)
				}
			}

			// The same server, trusted: cmap says votequorum is the
			// provider, so the votequorum connection is made and checked too.
			vc, err := dialVotes(t, n.cl, 1, ctx, []uint32{nobody})
			if err != nil {
				t.Fatalf("DialVotes trusting uid %d: %v", nobody, err)
			}
			defer vc.Close()
			if vc.provider != votequorumProvider || vc.vq == nil {
				t.Fatalf("Provider %q from the fake server, votequorum connected %v", vc.provider, vc.vq != nil)
			}
			// Its quorum notification claims more entries than a message
			// holds: it is dropped, not read past libvotequorum's buffer.
			if err := vc.TrackStart(ctx); err != nil {
				t.Fatalf("TrackStart on the fake server: %v", err)
			}
			if !pollVotes(t, vc, 5*time.Second) {
				t.Fatal("the fake notification did not come")
			}
			err = vc.Dispatch(func(ev model.VoteEvent) { t.Errorf("bogus event delivered: %s", formatVotes([]model.VoteEvent{ev})) })
			wantCode(t, err, cs.ErrMessageError)
			t.Logf("bogus notification: %v", err)
		})
	}
}

// TestParseNodeKey covers the key names Config lists.
func TestParseNodeKey(t *testing.T) {
	for _, c := range []struct {
		key  string
		pos  uint64
		name string
		ok   bool
	}{
		{"nodelist.node.0.nodeid", 0, "nodeid", true},
		{"nodelist.node.12.ring0_addr", 12, "ring0_addr", true},
		{"nodelist.node.3.name", 3, "name", true},
		{"nodelist.node.x.name", 0, "", false},
		{"nodelist.node.-1.name", 0, "", false},
		{"nodelist.node.4294967296.name", 0, "", false},
		{"nodelist.node.1.", 0, "", false},
		{"nodelist.node.1", 0, "", false},
		{"nodelist.local_node_pos", 0, "", false},
	} {
		pos, name, ok := parseNodeKey(c.key)
		if pos != c.pos || name != c.name || ok != c.ok {
			t.Errorf("parseNodeKey(%q) = %d, %q, %v; want %d, %q, %v", c.key, pos, name, ok, c.pos, c.name, c.ok)
		}
	}
}
