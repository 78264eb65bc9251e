//go:build linux

package native

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
	"github.com/corosync-go/quorum/internal/qbipc"
	"github.com/corosync-go/quorum/internal/testcluster"
)

// dialVotes connects from inside the node as the root package does: Dial
// learns the family, DialVotes takes it.
func (n *corosyncNode) dialVotes(tb testing.TB) *VoteConn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c *VoteConn
	err := n.c.InNode(n.i, func() error {
		q, err := Dial(ctx, nil)
		if err != nil {
			return err
		}
		defer q.Close()
		c, err = DialVotes(ctx, nil, q.Family())
		return err
	})
	if err != nil {
		tb.Fatalf("DialVotes: %v", err)
	}
	return c
}

// voteCollector dispatches a VoteConn's events into a list.
type voteCollector struct {
	t   *testing.T
	c   *VoteConn
	got []model.VoteEvent
}

// until dispatches until cond holds for an event (which it returns with
// those before it, and removes from the list) or d passed.
func (vc *voteCollector) until(d time.Duration, what string, cond func(model.VoteEvent) bool) (model.VoteEvent, []model.VoteEvent) {
	vc.t.Helper()
	deadline := time.Now().Add(d)
	for {
		for i, e := range vc.got {
			if cond(e) {
				before := slices.Clone(vc.got[:i])
				vc.got = slices.Delete(vc.got, 0, i+1)
				return e, before
			}
		}
		if time.Now().After(deadline) {
			vc.t.Fatalf("no %s within %v; events: %+v", what, d, vc.got)
		}
		waitAny(vc.c.Fds(), 200*time.Millisecond)
		if err := vc.c.Dispatch(func(e model.VoteEvent) { vc.got = append(vc.got, e) }); err != nil {
			vc.t.Fatalf("Dispatch: %v", err)
		}
	}
}

func kindIs(k model.VoteKind) func(model.VoteEvent) bool {
	return func(e model.VoteEvent) bool { return e.Kind == k }
}

// flagNames are corosync-quorumtool's names of votequorum's cluster flags.
var flagNames = []struct {
	flag uint32
	name string
}{
	{model.FlagTwoNode, "2Node"}, {model.FlagQuorate, "Quorate"}, {model.FlagWaitForAll, "WaitForAll"},
	{model.FlagLastManStanding, "LastManStanding"}, {model.FlagAutoTieBreaker, "AutoTieBreaker"},
	{model.FlagAllowDownscale, "AllowDownscale"},
}

// checkInfo compares GETINFO of the local node with what
// corosync-quorumtool -s printed.
func checkInfo(t *testing.T, info model.VoteInfo, st testcluster.Status) {
	t.Helper()
	var flags []string
	for _, f := range flagNames {
		if info.Flags&f.flag != 0 {
			flags = append(flags, f.name)
		}
	}
	if info.NodeID != st.NodeID || info.Expected != st.ExpectedVotes || info.HighestExpected != st.HighestExpected ||
		info.TotalVotes != st.TotalVotes || info.Quorum != st.Quorum || !slices.Equal(flags, st.Flags) ||
		info.State != model.NodeMember {
		t.Fatalf("GetInfo(0) = %+v (flags %v), corosync-quorumtool -s:\n%s", info, flags, st.Raw)
	}
}

func tableVotes(st testcluster.Status, id uint32) (uint32, bool) {
	for _, m := range st.Table {
		if m.NodeID == id {
			return m.Votes, true
		}
	}
	return 0, false
}

// TestRealVotes runs the whole VoteConn against a 3-node cluster and checks
// each answer against corosync-quorumtool: the configured nodes and their
// names, getinfo of this node, of another and of an unknown one,
// setexpected accepted and refused, setvotes, tracking's snapshot, the
// events of a change of expected votes, of a configuration reload and of a
// node killed.
func TestRealVotes(t *testing.T) {
	for _, m := range []struct {
		name string
		opts []testcluster.Option
	}{{"shm", nil}, {"socket", []testcluster.Option{testcluster.SocketIPC()}}} {
		t.Run(m.name, func(t *testing.T) {
			cl := testcluster.Start(t, 3, append(m.opts, testcluster.Votes(1, 1))...)
			testRealVotes(t, cl)
		})
	}
}

func testRealVotes(t *testing.T, cl *testcluster.Cluster) {
	n := &corosyncNode{c: cl, i: 1}
	v2 := !cl.Install().Version.AtLeast(2, 99, 0)
	c := n.dialVotes(t)
	defer c.Close()
	if !c.HasVotequorum() || c.Provider() != ProviderVotequorum || len(c.Fds()) != 2 || (c.Family() == Corosync2) != v2 {
		t.Fatalf("votequorum %v provider %q fds %v family %v", c.HasVotequorum(), c.Provider(), c.Fds(), c.Family())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := cl.Quorumtool(1)
	if err != nil {
		t.Fatal(err)
	}

	// The configured nodes, named as corosync-quorumtool names them: on
	// 2.x the ring0_addr although the config has names.
	cfg, err := c.Config(ctx)
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	if cfg.Provider != ProviderVotequorum || len(cfg.Nodes) != 3 {
		t.Fatalf("Config %+v", cfg)
	}
	for i, nd := range cfg.Nodes {
		id := uint32(i + 1)
		wantVotes := uint32(0) // quorum_votes only set for node 1
		if id == 1 {
			wantVotes = 1
		}
		if nd.ID != id || nd.Votes != wantVotes || nd.Name != st.Table[i].Name || v2 && nd.Name != cl.Addr(i+1) {
			t.Fatalf("configured node %+v; corosync-quorumtool -s:\n%s", nd, st.Raw)
		}
	}

	info, err := c.GetInfo(ctx, 0)
	if err != nil {
		t.Fatalf("GetInfo(0): %v", err)
	}
	checkInfo(t, info, st)
	if v, _ := tableVotes(st, 1); info.Votes != v || info.QdeviceName != "" || info.QdeviceVotes != 0 {
		t.Fatalf("GetInfo(0) = %+v, table %+v", info, st.Table)
	}
	other, err := c.GetInfo(ctx, 2)
	if v, _ := tableVotes(st, 2); err != nil || other.NodeID != 2 || other.State != model.NodeMember || other.Votes != v ||
		other.Quorum != info.Quorum || other.TotalVotes != info.TotalVotes {
		t.Fatalf("GetInfo(2) = %+v, %v; table %+v", other, err, st.Table)
	}
	_, err = c.GetInfo(ctx, 99)
	csErr(t, err, "votequorum_getinfo", cs.ErrNotExist)

	if err := c.TrackStart(ctx); err != nil {
		t.Fatalf("TrackStart: %v", err)
	}
	vc := &voteCollector{t: t, c: c}
	nl, before := vc.until(5*time.Second, "snapshot nodelist", kindIs(model.VoteNodeList))
	q, between := vc.until(5*time.Second, "snapshot quorum", kindIs(model.VoteQuorum))
	if len(before)+len(between) != 0 || !slices.Equal(nl.Members, []uint32{1, 2, 3}) ||
		nl.Ring.NodeID != st.Ring.NodeID || nl.Ring.Seq != st.Ring.Seq || !q.Quorate ||
		!slices.Equal(byID(q.Nodes), []model.VoteNode{{ID: 1, State: model.NodeMember}, {ID: 2, State: model.NodeMember}, {ID: 3, State: model.NodeMember}}) {
		t.Fatalf("snapshot %+v %+v (%+v %+v); corosync-quorumtool -s:\n%s", nl, q, before, between, st.Raw)
	}

	// Expected votes: below the total votes, and a quorum above them, are
	// refused; 5 (quorum 3 of 3 votes) is taken, and notified.
	for _, e := range []uint32{2, 6} {
		ce := csErr(t, c.SetExpected(ctx, e), "votequorum_setexpected", cs.ErrInvalidParam)
		t.Logf("SetExpected(%d): %v", e, ce)
	}
	if st, err := cl.Quorumtool(1); err != nil || st.ExpectedVotes != 3 {
		t.Fatalf("expected votes after refusals: %v\n%s", err, st.Raw)
	}
	if err := c.SetExpected(ctx, 5); err != nil {
		t.Fatalf("SetExpected(5): %v", err)
	}
	ev, _ := vc.until(10*time.Second, "expected votes notification", kindIs(model.VoteExpected))
	if ev.Expected != 5 {
		t.Fatalf("expected votes notification %+v", ev)
	}
	waitStatus(t, ctx, cl, 1, func(s testcluster.Status) bool { return s.ExpectedVotes == 5 && s.Quorum == 3 }, "expected votes 5, quorum 3")
	st, _ = cl.Quorumtool(1)
	info, err = c.GetInfo(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkInfo(t, info, st)

	// Votes: an unknown node is refused; node 2 gets 2 votes on every node,
	// which corosync does not notify (the quorum stays 3 of 4 votes).
	csErr(t, c.SetVotes(ctx, 99, 1), "votequorum_setvotes", cs.ErrNameNotFound)
	if err := c.SetVotes(ctx, 2, 2); err != nil {
		t.Fatalf("SetVotes(2, 2): %v", err)
	}
	waitStatus(t, ctx, cl, 1, func(s testcluster.Status) bool { v, _ := tableVotes(s, 2); return v == 2 && s.TotalVotes == 4 }, "node 2 with 2 votes")
	if other, err := c.GetInfo(ctx, 2); err != nil || other.Votes != 2 || other.TotalVotes != 4 {
		t.Fatalf("GetInfo(2) after SetVotes: %+v %v", other, err)
	}
	if err := c.SetVotes(ctx, 2, 1); err != nil {
		t.Fatalf("SetVotes(2, 1): %v", err)
	}
	if err := c.SetExpected(ctx, 3); err != nil {
		t.Fatalf("SetExpected(3): %v", err)
	}
	if ev, _ := vc.until(10*time.Second, "expected votes notification", kindIs(model.VoteExpected)); ev.Expected != 3 {
		t.Fatalf("expected votes notification %+v", ev)
	}
	waitStatus(t, ctx, cl, 1, func(s testcluster.Status) bool { return s.ExpectedVotes == 3 && s.TotalVotes == 3 }, "expected votes 3 and 3 votes")

	// A reload that renames node 2 in node 1's config and takes node 3's
	// name away: cmap notifies, and the names read again are
	// corosync-quorumtool's, but for node 3's. That one is its ring0_addr,
	// where corosync-quorumtool 3.x resolves the node's address through
	// corosync's cfg service and prints the host name, the address or, when
	// the lookup fails, as in the cluster's namespaces, nothing.
	conf, err := os.ReadFile(cl.ConfPath(1))
	if err != nil {
		t.Fatal(err)
	}
	text := string(conf)
	for _, r := range [][2]string{{"\t\tname: node2\n", "\t\tname: renamed2\n"}, {"\t\tname: node3\n", ""}} {
		if !strings.Contains(text, r[0]) {
			t.Fatalf("node 1's config has no %q:\n%s", r[0], conf)
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	if err := os.WriteFile(cl.ConfPath(1), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := cl.Output(ctx, 1, cl.Install().Cfgtool, "-R"); err != nil {
		t.Fatalf("corosync-cfgtool -R: %v: %s", err, out)
	}
	vc.until(10*time.Second, "ConfigChanged after a reload", kindIs(model.ConfigChanged))
	cfg, err = c.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err = cl.Quorumtool(1)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{st.Table[0].Name, "renamed2", cl.Addr(3)}
	if v2 {
		want[1] = cl.Addr(2)
	}
	for i, nd := range cfg.Nodes {
		shown := st.Table[i].Name
		if i == 2 && !v2 && shown == "" {
			t.Logf("corosync-quorumtool shows node 3, without a name key, without a name")
			shown = want[i]
		}
		if nd.Name != want[i] || shown != want[i] {
			t.Fatalf("after the reload: %+v, want names %q; corosync-quorumtool -s:\n%s", cfg.Nodes, want, st.Raw)
		}
	}

	// Node 3 killed: votequorum's nodelist without it, then its quorum
	// notification with node 3 dead, of the ring corosync-quorumtool shows.
	if err := cl.Kill(3); err != nil {
		t.Fatal(err)
	}
	nl, _ = vc.until(30*time.Second, "nodelist without node 3", func(e model.VoteEvent) bool {
		return e.Kind == model.VoteNodeList && slices.Equal(e.Members, []uint32{1, 2})
	})
	q, _ = vc.until(10*time.Second, "quorum notification", kindIs(model.VoteQuorum))
	if !q.Quorate || !slices.Equal(byID(q.Nodes), []model.VoteNode{{ID: 1, State: model.NodeMember}, {ID: 2, State: model.NodeMember}, {ID: 3, State: model.NodeDead}}) {
		t.Fatalf("quorum notification after the kill: %+v", q)
	}
	if err := cl.WaitMembers(ctx, 1, []uint32{1, 2}); err != nil {
		t.Fatal(err)
	}
	st, err = cl.Quorumtool(1)
	if err != nil || nl.Ring.NodeID != st.Ring.NodeID || nl.Ring.Seq != st.Ring.Seq || nl.Ring.Seq <= 0 {
		t.Fatalf("ring %+v; corosync-quorumtool -s: %v\n%s", nl.Ring, err, st.Raw)
	}
	if dead, err := c.GetInfo(ctx, 3); err != nil || dead.State != model.NodeDead {
		t.Fatalf("GetInfo(3) of the dead node: %+v %v", dead, err)
	}
}

// byID sorts a copy of a quorum notification's nodes: corosync lists them
// in the order of its own list, which is not sorted (3.1.7 sent 2, 3, 1 on
// node 1).
func byID(nodes []model.VoteNode) []model.VoteNode {
	s := slices.Clone(nodes)
	slices.SortFunc(s, func(a, b model.VoteNode) int { return int(a.ID) - int(b.ID) })
	return s
}

func waitStatus(t *testing.T, ctx context.Context, cl *testcluster.Cluster, i int, cond func(testcluster.Status) bool, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := cl.WaitStatus(ctx, i, cond, what); err != nil {
		t.Fatal(err)
	}
}

// TestRealVotesDeadline: on a frozen corosync, each request returns when
// its context ends, and Close ends one waiting without a deadline; after
// the thaw the VoteConn works; once corosync is killed, Dispatch and the
// requests say the connection is lost.
func TestRealVotesDeadline(t *testing.T) {
	forModes(t, func(t *testing.T, n *corosyncNode, _ qbipc.Transport) {
		c := n.dialVotes(t)
		defer c.Close()
		n.freeze(t)
		for name, call := range map[string]func(context.Context) error{
			"GetInfo":     func(ctx context.Context) error { _, err := c.GetInfo(ctx, 0); return err },
			"SetExpected": func(ctx context.Context) error { return c.SetExpected(ctx, 1) },
			"Config":      func(ctx context.Context) error { _, err := c.Config(ctx); return err },
			"TrackStart":  c.TrackStart,
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			start := time.Now()
			err := call(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s on a stopped corosync: %v, want deadline exceeded", name, err)
			}
			if el := time.Since(start); el > 300*time.Millisecond+time.Second {
				t.Fatalf("%s returned %v after its start, with a 300 ms deadline", name, el)
			}
		}
		n.thaw(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if info, err := c.GetInfo(ctx, 0); err != nil || info.NodeID != 1 {
			t.Fatalf("GetInfo after SIGCONT: %+v %v", info, err)
		}
		if cfg, err := c.Config(ctx); err != nil || len(cfg.Nodes) != 1 || cfg.Nodes[0].ID != 1 {
			t.Fatalf("Config after SIGCONT: %+v %v", cfg, err)
		}
		if err := c.TrackStart(ctx); err != nil && code(err) != cs.ErrExist {
			t.Fatalf("TrackStart after SIGCONT: %v", err) // the abandoned one may have started tracking
		}

		// Close while requests without a deadline wait on a stopped
		// corosync, on both connections.
		n.freeze(t)
		vqSent, cmSent := make(chan struct{}, 1), make(chan struct{}, 1)
		c.vq.OnSent(func() { vqSent <- struct{}{} })
		c.cmap.ipc.OnSent(func() { cmSent <- struct{}{} })
		done := make(chan error, 2)
		go func() { _, err := c.GetInfo(context.Background(), 0); done <- err }()
		go func() { _, err := c.Config(context.Background()); done <- err }()
		<-vqSent
		<-cmSent
		c.Close()
		for range 2 {
			select {
			case err := <-done:
				if !errors.Is(err, qbipc.ErrClosed) {
					t.Fatalf("request interrupted by Close: %v, want ErrClosed", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("Close did not make a waiting request return")
			}
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		n.thaw(t)
	})
}

// TestRealVotesKill: once corosync is killed, the VoteConn's fds become
// readable and Dispatch and the requests report CS_ERR_LIBRARY.
func TestRealVotesKill(t *testing.T) {
	forModes(t, func(t *testing.T, n *corosyncNode, _ qbipc.Transport) {
		c := n.dialVotes(t)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.TrackStart(ctx); err != nil {
			t.Fatal(err)
		}
		vc := &voteCollector{t: t, c: c}
		vc.until(5*time.Second, "snapshot", kindIs(model.VoteQuorum))
		n.kill(t)
		var err error
		deadline := time.Now().Add(5 * time.Second)
		for err == nil && time.Now().Before(deadline) {
			waitAny(c.Fds(), 200*time.Millisecond)
			err = c.Dispatch(func(model.VoteEvent) {})
		}
		if code(err) != cs.ErrLibrary {
			t.Fatalf("Dispatch after kill: %v, want CS_ERR_LIBRARY", err)
		}
		if _, err := c.GetInfo(ctx, 0); code(err) != cs.ErrLibrary {
			t.Fatalf("GetInfo after kill: %v, want CS_ERR_LIBRARY", err)
		}
		if _, err := c.Config(ctx); code(err) != cs.ErrLibrary {
			t.Fatalf("Config after kill: %v, want CS_ERR_LIBRARY", err)
		}
	})
}
