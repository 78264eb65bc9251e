//go:build unix

package quorum

import (
	"context"
	"errors"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
)

// drain dispatches what v has queued (the simulation queues it before the
// call that caused it returns).
func drain(t *testing.T, v voteConn) []model.VoteEvent {
	t.Helper()
	var got []model.VoteEvent
	if err := v.Dispatch(func(ev model.VoteEvent) { got = append(got, ev) }); err != nil {
		t.Fatalf("dispatch: %v", err)
	}
	return got
}

func wantEvents(t *testing.T, what string, got []model.VoteEvent, want ...model.VoteEvent) {
	t.Helper()
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		g, w := got[i], want[i]
		same = g.Kind == w.Kind && g.Quorate == w.Quorate && g.Expected == w.Expected && g.Ring == w.Ring &&
			slices.Equal(g.Nodes, w.Nodes) && slices.Equal(g.Members, w.Members)
	}
	if !same {
		t.Errorf("%s: got events\n  %+v\nwant\n  %+v", what, got, want)
	}
}

// readable reports whether one of fds can be read at once.
func readable(t *testing.T, fds []int) bool {
	t.Helper()
	pfds := make([]unix.PollFd, len(fds))
	for i, fd := range fds {
		pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	n, err := unix.Poll(pfds, 0)
	if err != nil && err != unix.EINTR {
		t.Fatal(err)
	}
	return n > 0
}

func nodes(states ...uint32) []model.VoteNode {
	out := make([]model.VoteNode, len(states))
	for i, s := range states {
		out[i] = model.VoteNode{ID: uint32(i + 1), State: s}
	}
	return out
}

// votequorum's notifications, as corosync sends them: per membership
// change a nodelist, an expected votes notification only when the votes
// present rose above the expected votes, then a quorum notification with
// every node seen; a quorum notification alone when quorate flips; nothing
// when only votes or the threshold change.
func TestSimVoteEvents(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(3)})
	v := votes(t, c, 1)
	ctx := context.Background()
	must(t, v.TrackStart(ctx))
	snapshot := []model.VoteEvent{
		{Kind: model.VoteNodeList, Ring: model.RingID{NodeID: 1, Seq: 8}, Members: []uint32{1, 2, 3}},
		{Kind: model.VoteQuorum, Quorate: true, Nodes: nodes(member, member, member)},
	}
	wantEvents(t, "trackstart", drain(t, v), snapshot...)
	if err := v.TrackStart(ctx); csCode(err) != cs.ErrExist || !errors.Is(err, ErrExist) {
		t.Errorf("second trackstart: %v", err)
	}
	wantEvents(t, "second trackstart", drain(t, v), snapshot...)

	must(t, c.Stop(3))
	wantEvents(t, "node 3 stopped", drain(t, v),
		model.VoteEvent{Kind: model.VoteNodeList, Ring: model.RingID{NodeID: 1, Seq: 12}, Members: []uint32{1, 2}},
		model.VoteEvent{Kind: model.VoteQuorum, Quorate: true, Nodes: nodes(member, member, dead)})
	must(t, c.SetVotes(1, 2, 2))
	wantEvents(t, "node 2 at 2 votes: 3 of 3, quorum 2", drain(t, v))
	must(t, c.Start(3))
	wantEvents(t, "node 3 back: 4 votes of 3 expected", drain(t, v),
		model.VoteEvent{Kind: model.VoteNodeList, Ring: model.RingID{NodeID: 1, Seq: 16}, Members: []uint32{1, 2, 3}},
		model.VoteEvent{Kind: model.VoteExpected, Expected: 4},
		model.VoteEvent{Kind: model.VoteQuorum, Quorate: true, Nodes: nodes(member, member, member)})
	must(t, c.Stop(3))
	must(t, c.Stop(2))
	drain(t, v)
	must(t, v.SetExpected(ctx, 1))
	wantEvents(t, "expected votes 1 alone", drain(t, v),
		model.VoteEvent{Kind: model.VoteExpected, Expected: 1},
		model.VoteEvent{Kind: model.VoteQuorum, Quorate: true, Nodes: nodes(member, dead, dead)})
	must(t, v.SetExpected(ctx, 1))
	wantEvents(t, "expected votes 1 again", drain(t, v), model.VoteEvent{Kind: model.VoteExpected, Expected: 1})
}

// The voteConn contract: Fds signal queued events and a lost server,
// requests wait for a frozen node until their context ends or Close, and a
// stopped node loses the connection.
func TestSimVoteConn(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: []SimNode{{ID: 3}, {ID: 1, Name: "alpha"}, {ID: 2, Votes: 2}}})
	v := votes(t, c, 1)
	ctx := context.Background()
	fds := v.Fds()
	if len(fds) != 1 || readable(t, fds) {
		t.Fatalf("fds %v: readable before anything was queued", fds)
	}
	must(t, v.TrackStart(ctx))
	if !readable(t, fds) {
		t.Fatal("not readable with the snapshot queued")
	}
	drain(t, v)
	if readable(t, fds) {
		t.Fatal("readable after everything was dispatched")
	}
	cfg, err := v.Config(ctx)
	must(t, err)
	want := []model.ConfNode{{ID: 1, Name: "alpha"}, {ID: 2, Name: "node2", Votes: 2}, {ID: 3, Name: "node3"}}
	if cfg.Provider != "corosync_votequorum" || !slices.Equal(cfg.Nodes, want) {
		t.Errorf("config %+v", cfg)
	}

	// A reload: cmap's notifications come as one ConfigChanged.
	file := c.Config()
	file.Nodes[0].Name = "gamma"
	must(t, c.Reload(2, file))
	wantEvents(t, "reload", drain(t, v), model.VoteEvent{Kind: model.ConfigChanged})
	cfg, err = v.Config(ctx)
	must(t, err)
	if cfg.Nodes[2].Name != "gamma" {
		t.Errorf("after the reload: %+v", cfg)
	}

	// Frozen: nothing is delivered, requests wait.
	must(t, c.Freeze(1))
	must(t, c.Reload(2, file))
	must(t, c.Stop(3))
	if readable(t, fds) {
		t.Error("a frozen node's connection is readable")
	}
	wantEvents(t, "frozen", drain(t, v))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := v.GetInfo(cctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("getinfo on a frozen node, context cancelled: %v", err)
	}
	must(t, c.Thaw(1))
	if !readable(t, fds) {
		t.Error("not readable once thawed")
	}
	wantEvents(t, "thawed", drain(t, v),
		model.VoteEvent{Kind: model.VoteNodeList, Ring: model.RingID{NodeID: 1, Seq: 12}, Members: []uint32{1, 2}},
		model.VoteEvent{Kind: model.VoteQuorum, Quorate: true, Nodes: nodes(member, member, dead)},
		model.VoteEvent{Kind: model.ConfigChanged})

	// Close ends a request stuck in a frozen node.
	stuck := make(chan struct{})
	OnStuckRequest(c, func(uint32) { close(stuck) })
	must(t, c.Freeze(1))
	done := make(chan error)
	go func() {
		_, err := v.GetInfo(ctx, 1)
		done <- err
	}()
	<-stuck
	OnStuckRequest(c, nil)
	must(t, v.Close())
	if err := <-done; csCode(err) != cs.ErrBadHandle {
		t.Errorf("getinfo cut short by Close: %v", err)
	}
	must(t, v.Close())
	must(t, c.Thaw(1))

	// A stopped node: Dispatch reports the loss, requests CS_ERR_LIBRARY.
	w := votes(t, c, 2)
	must(t, c.Stop(2))
	if !readable(t, w.Fds()) {
		t.Error("not readable after the server went away")
	}
	if err := w.Dispatch(func(model.VoteEvent) {}); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("dispatch from a stopped node: %v", err)
	}
	if err := w.SetVotes(ctx, 1, 1); csCode(err) != cs.ErrLibrary {
		t.Errorf("setvotes on a stopped node: %v", err)
	}
	if _, err := c.Backend(2).(voteBackend).connectVotes(ctx, ConnectParams{}, nil); csCode(err) != cs.ErrLibrary {
		t.Errorf("connect to a stopped node: %v", err)
	}
	must(t, c.FailConnects(1, 1, ErrAccess))
	if _, err := c.Backend(1).(voteBackend).connectVotes(ctx, ConnectParams{}, nil); !errors.Is(err, ErrAccess) {
		t.Errorf("connect refused: %v", err)
	}
}

// Without a quorum provider (QUORUM_FREE) every partition is quorate: the
// quorum service's snapshot has a quorate notification with no ring and no
// members, a membership change sends a nodelist notification only, and
// votequorum is not there.
func TestSimNoProvider(t *testing.T) {
	c := newSim(t, SimConfig{Nodes: simNodes(3), NoProvider: true})
	ctx := context.Background()
	conn, err := c.Backend(1).Connect(ctx, ConnectParams{})
	must(t, err)
	defer conn.Close()
	must(t, conn.TrackStart(ctx, TrackCurrent|TrackChanges))
	must(t, c.Partition([]uint32{1}))
	var got []Notification
	must(t, conn.Dispatch(func(n Notification) { got = append(got, n) }))
	want := []Notification{
		{Kind: EventNodeList, RingID: RingID{NodeID: 1, Seq: 8}, Members: []uint32{1, 2, 3}},
		{Kind: EventQuorum, Quorate: true},
		{Kind: EventNodeList, RingID: RingID{NodeID: 1, Seq: 12}, Members: []uint32{1}, Left: []uint32{2, 3}},
	}
	if len(got) != len(want) {
		t.Fatalf("notifications %+v", got)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Kind != w.Kind || g.Quorate != w.Quorate || g.RingID != w.RingID || !slices.Equal(g.Members, w.Members) ||
			!slices.Equal(g.Left, w.Left) || len(g.Joined) != 0 {
			t.Errorf("notification %d: %+v, want %+v", i, g, w)
		}
	}
	if q, err := conn.Quorate(ctx); err != nil || !q {
		t.Errorf("quorate alone without a provider: %v %v", q, err)
	}

	v := votes(t, c, 1)
	cfg, err := v.Config(ctx)
	if err != nil || cfg.Provider != "" || len(cfg.Nodes) != 3 {
		t.Errorf("config without a provider: %+v %v", cfg, err)
	}
	must(t, v.TrackStart(ctx))
	wantEvents(t, "trackstart without votequorum", drain(t, v))
	if _, err := v.GetInfo(ctx, 0); !errors.Is(err, ErrNotSupported) {
		t.Errorf("getinfo without votequorum: %v", err)
	}
	if err := c.SetExpectedVotes(1, 1); !errors.Is(err, ErrNotSupported) {
		t.Errorf("setexpected without votequorum: %v", err)
	}
	must(t, c.Reload(1, c.Config()))
	wantEvents(t, "reload", drain(t, v), model.VoteEvent{Kind: model.ConfigChanged})
}
