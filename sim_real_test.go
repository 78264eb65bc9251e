//go:build linux

package quorum

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
	"github.com/corosync-go/quorum/internal/native"
	"github.com/corosync-go/quorum/internal/testcluster"
)

// The simulated votequorum against the real one: one scenario run on a real
// 3-node cluster and on a simulated one, comparing after each step what
// every running node answers to votequorum's GETINFO for every node (from
// its own point of view, dead nodes included), its quorum service's view,
// and its cmap nodelist, and the refusals of setexpected and setvotes.

// simView is what one node says.
type simView struct {
	Quorate bool
	Members []uint32
	Info    map[uint32]model.VoteInfo // GETINFO of nodes 1..n; absent: CS_ERR_NOT_EXIST
	Config  model.Config
}

type versus struct {
	t    *testing.T
	cl   *testcluster.Cluster
	sim  *SimCluster
	n    int
	up   map[int]bool // false for the nodes stopped
	cuts map[uint32]bool
}

func TestSimMatchesCorosync(t *testing.T) {
	// votequorum.c is the same in 3.0.4, 3.1.7 and 3.1.10 but for failed
	// reloads; 2.x differs, and names nodes by their ring0_addr.
	if in, err := testcluster.Corosync(); err == nil && !in.Version.AtLeast(3, 0, 0) {
		t.Skipf("the simulation follows votequorum as corosync 3.0 and 3.1 run it, not %v", in.Version)
	}
	for _, sc := range []struct {
		name string
		cfg  SimConfig
		opts []testcluster.Option
		run  func(v *versus)
	}{
		{"admin and reload", SimConfig{Nodes: simNodes(3)}, nil, func(v *versus) {
			v.same("formed")
			v.kill(3)
			v.same("node 3 killed")
			v.admin("setexpected 2", 1, func(c *native.VoteConn) error { return c.SetExpected(context.Background(), 2) },
				func() error { return v.sim.SetExpectedVotes(1, 2) })
			v.same("expected votes 2")
			v.admin("setvotes node 2: 2", 1, func(c *native.VoteConn) error { return c.SetVotes(context.Background(), 2, 2) },
				func() error { return v.sim.SetVotes(1, 2, 2) })
			v.same("node 2 has 2 votes")
			v.admin("setvotes of a node never seen", 1, func(c *native.VoteConn) error { return c.SetVotes(context.Background(), 42, 1) },
				func() error { return v.sim.SetVotes(1, 42, 1) })
			v.admin("setvotes node 2: 0", 1, func(c *native.VoteConn) error { return c.SetVotes(context.Background(), 2, 0) },
				func() error { return v.sim.SetVotes(1, 2, 0) })
			v.admin("setexpected 7", 2, func(c *native.VoteConn) error { return c.SetExpected(context.Background(), 7) },
				func() error { return v.sim.SetExpectedVotes(2, 7) })
			v.same("after refusals")
			v.start(3)
			v.same("node 3 started")
			v.rename(2, "renamed2")
			v.same("reloaded with node 2 renamed")
			v.cut(3)
			v.same("node 3 cut off")
			v.heal(3)
			v.same("healed")
		}},
		{"two_node", SimConfig{Nodes: simNodes(2), TwoNode: true}, []testcluster.Option{testcluster.TwoNode()}, func(v *versus) {
			v.same("formed")
			v.kill(2)
			v.same("node 2 killed")
			v.kill(1)
			v.start(1)
			v.same("node 1 started alone")
			v.start(2)
			v.same("node 2 started")
		}},
		{"last_man_standing", SimConfig{Nodes: simNodes(4), LastManStanding: true, WaitForAll: new(true)},
			[]testcluster.Option{testcluster.ExtraConfig("quorum {", "\tlast_man_standing: 1",
				"\tlast_man_standing_window: 1000", "\twait_for_all: 1", "}")},
			func(v *versus) {
				v.same("formed")
				v.kill(4)
				v.sim.EndLastManStandingWindow()
				v.same("node 4 killed, window passed")
				v.kill(3)
				v.sim.EndLastManStandingWindow()
				v.same("node 3 killed, window passed")
				v.kill(2)
				v.sim.EndLastManStandingWindow()
				v.same("node 2 killed")
				v.start(2)
				v.same("node 2 started")
			}},
		{"auto_tie_breaker", SimConfig{Nodes: simNodes(4), AutoTieBreaker: true},
			[]testcluster.Option{testcluster.ExtraConfig("quorum {", "\tauto_tie_breaker: 1", "}")},
			func(v *versus) {
				v.same("formed")
				v.cut(3)
				v.cut(4)
				v.same("nodes 3 and 4 cut off")
				v.heal(3)
				v.heal(4)
				v.same("healed")
				v.cut(1)
				v.cut(2)
				v.same("nodes 1 and 2 cut off")
			}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			cl := testcluster.Start(t, len(sc.cfg.Nodes), sc.opts...)
			sim, err := NewSimClusterConfig(sc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			sc.run(&versus{t: t, cl: cl, sim: sim, n: len(sc.cfg.Nodes), up: map[int]bool{}, cuts: map[uint32]bool{}})
		})
	}
}

func (v *versus) kill(i int) {
	v.t.Helper()
	must(v.t, v.cl.Kill(i))
	must(v.t, v.sim.Stop(uint32(i)))
	v.up[i] = false
}

func (v *versus) start(i int) {
	v.t.Helper()
	must(v.t, v.cl.Start(i))
	must(v.t, v.sim.Start(uint32(i)))
	delete(v.up, i)
}

// cut isolates node i, alone, from every other node.
func (v *versus) cut(i int) {
	v.t.Helper()
	must(v.t, v.cl.Cut(i))
	v.cuts[uint32(i)] = true
	v.partition()
}

func (v *versus) heal(i int) {
	v.t.Helper()
	must(v.t, v.cl.Heal(i))
	delete(v.cuts, uint32(i))
	v.partition()
}

func (v *versus) partition() {
	var groups [][]uint32
	for id := range v.cuts {
		groups = append(groups, []uint32{id})
	}
	must(v.t, v.sim.Partition(groups...))
}

// same waits until every running node says the same on both clusters.
// The real cluster gets there in its own time; nothing tells when (a
// change of votes sends no notification), so it is asked again until the
// deadline.
func (v *versus) same(step string) {
	v.t.Helper()
	var nodes []int
	for i := 1; i <= v.n; i++ {
		if _, down := v.up[i]; !down {
			nodes = append(nodes, i)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var diffs []string
		for _, i := range nodes {
			want := v.simView(i)
			got, err := v.realView(i)
			switch {
			case err != nil:
				diffs = append(diffs, fmt.Sprintf("node %d: %v", i, err))
			case !viewsEqual(got, want):
				diffs = append(diffs, fmt.Sprintf("node %d:\n  corosync %+v\n  sim      %+v", i, got, want))
			}
		}
		if len(diffs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("%s: the simulation differs from corosync:\n%s", step, strings.Join(diffs, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func viewsEqual(a, b simView) bool {
	return a.Quorate == b.Quorate && slices.Equal(a.Members, b.Members) && maps.Equal(a.Info, b.Info) &&
		a.Config.Provider == b.Config.Provider && slices.Equal(a.Config.Nodes, b.Config.Nodes)
}

func (v *versus) simView(i int) simView {
	c := v.sim
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[uint32(i)]
	view := simView{Quorate: n.quorate, Members: slices.Clone(n.members), Info: map[uint32]model.VoteInfo{},
		Config: n.modelConfig()}
	for id := uint32(1); id <= uint32(v.n); id++ {
		if info, ok := n.vq.getInfo(id); ok {
			view.Info[id] = info
		}
	}
	return view
}

func (v *versus) realView(i int) (simView, error) {
	st, err := v.cl.Quorumtool(i)
	if err != nil {
		return simView{}, err
	}
	view := simView{Quorate: st.Quorate, Members: st.Members, Info: map[uint32]model.VoteInfo{}}
	err = v.votes(i, func(c *native.VoteConn) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for id := uint32(1); id <= uint32(v.n); id++ {
			info, err := c.GetInfo(ctx, id)
			var ce *cs.Error
			if errors.As(err, &ce) && ce.Code == cs.ErrNotExist {
				continue
			}
			if err != nil {
				return err
			}
			view.Info[id] = info
		}
		view.Config, err = c.Config(ctx)
		return err
	})
	return view, err
}

// votes runs f on a connection to node i's votequorum and cmap.
func (v *versus) votes(i int, f func(*native.VoteConn) error) error {
	var ferr error
	err := v.cl.InNode(i, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q, err := native.Dial(ctx, nil)
		if err != nil {
			return err
		}
		defer q.Close()
		c, err := native.DialVotes(ctx, nil, q.Family())
		if err != nil {
			return err
		}
		defer c.Close()
		ferr = f(c)
		return nil
	})
	if err != nil {
		return err
	}
	return ferr
}

// admin runs an administrative call on node i of both clusters and checks
// that both accept it or both refuse it with the same code.
func (v *versus) admin(what string, i int, real func(*native.VoteConn) error, sim func() error) {
	v.t.Helper()
	rerr := v.votes(i, real)
	serr := sim()
	if code(rerr) != code(serr) {
		v.t.Fatalf("%s on node %d: corosync: %v; sim: %v", what, i, rerr, serr)
	}
	v.t.Logf("%s on node %d: corosync: %v; sim: %v", what, i, rerr, serr)
}

func code(err error) cs.Code {
	var ce *cs.Error
	var qe *Error
	switch {
	case err == nil:
		return cs.OK
	case errors.As(err, &ce):
		return ce.Code
	case errors.As(err, &qe):
		return cs.Code(qe.Code)
	}
	return -1
}

// rename gives node id a new name in every node's corosync.conf and
// reloads it from node 1, on both clusters.
func (v *versus) rename(id int, name string) {
	v.t.Helper()
	key := regexp.MustCompile(fmt.Sprintf(`(?m)^(\s*)name: node%d$`, id))
	for i := 1; i <= v.n; i++ {
		b, err := os.ReadFile(v.cl.ConfPath(i))
		must(v.t, err)
		if !key.Match(b) {
			v.t.Fatalf("no name for node %d in %s", id, v.cl.ConfPath(i))
		}
		must(v.t, os.WriteFile(v.cl.ConfPath(i), key.ReplaceAll(b, []byte("${1}name: "+name)), 0o644))
	}
	out, err := v.cl.Output(context.Background(), 1, v.cl.Install().Cfgtool, "-R")
	if err != nil {
		v.t.Fatalf("corosync-cfgtool -R: %v: %s", err, out)
	}
	cfg := v.sim.Config()
	for k := range cfg.Nodes {
		if cfg.Nodes[k].ID == uint32(id) {
			cfg.Nodes[k].Name = name
		}
	}
	must(v.t, v.sim.Reload(1, cfg))
}
