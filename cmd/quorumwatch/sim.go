package main

import (
	"fmt"
	"io"

	"github.com/corosync-go/quorum"
)

// scenario is the --sim demo on a 5-node simulated cluster, seen from one
// node. The nodes are named by role so that any node can be the viewer:
// role 1 is the viewed node, roles 2 to 5 the others in id order. With the
// default --node 1, role and id coincide.
//
// A step is taken only once the previous one's events have all been seen
// (then the pace passes), so the output does not depend on timing: each step
// changes the viewer's membership, or drops its connection, and the scenario
// waits for the matching quorum event.
type scenario struct {
	c      *quorum.SimCluster
	viewer uint32
	role   [6]uint32 // role[r] is the node id playing role r
	log    io.Writer
	steps  []simStep
	next   int // the step to take next

	// waiting describes what the current step waits for; wait decides
	// whether an event completes it (nil: nothing awaited).
	waiting string
	wait    func(quorum.QuorumEvent) bool
}

type simStep struct {
	say string
	do  func() error
	// reconnects: the step drops the viewer's connection, so it is over
	// once the engine has reconnected and the new snapshot is through.
	reconnects bool
}

func newScenario(c *quorum.SimCluster, viewer uint32, log io.Writer) *scenario {
	s := &scenario{c: c, viewer: viewer, log: log}
	s.role[1] = viewer
	r := 2
	for id := uint32(1); id <= simClusterNodes; id++ {
		if id != viewer && r <= simClusterNodes {
			s.role[r] = id
			r++
		}
	}
	n := s.role
	s.steps = []simStep{
		{say: fmt.Sprintf("corosync on node %d stops", n[5]), do: func() error { return c.Stop(n[5]) }},
		{say: fmt.Sprintf("corosync on node %d stops", n[4]), do: func() error { return c.Stop(n[4]) }},
		{say: fmt.Sprintf("the network splits: nodes %d and %d on one side, node %d on the other", n[1], n[2], n[3]),
			do: func() error { return c.Partition([]uint32{n[1], n[2]}, []uint32{n[3]}) }},
		{say: "the network heals", do: func() error { c.Heal(); return nil }},
		{say: fmt.Sprintf("corosync on node %d starts again", n[4]), do: func() error { return c.Start(n[4]) }},
		{say: fmt.Sprintf("corosync on node %d starts again", n[5]), do: func() error { return c.Start(n[5]) }},
		{say: fmt.Sprintf("corosync on node %d restarts before the others notice: it leaves and joins in one ring", n[2]),
			do: func() error { return c.Restart(n[2]) }},
		{say: fmt.Sprintf("corosync on node %d restarts: the connection drops and is made again, on a new ring", n[1]),
			do: func() error { return c.Restart(n[1]) }, reconnects: true},
	}
	return s
}

// expectSnapshot makes the scenario wait for the subscription's snapshot
// before its first step.
func (s *scenario) expectSnapshot() {
	s.waiting = "the initial snapshot"
	s.wait = func(ev quorum.QuorumEvent) bool { return ev.Kind == quorum.EventQuorum }
}

// observe reports whether ev completes what the scenario waits for.
func (s *scenario) observe(ev quorum.QuorumEvent) bool {
	if s.wait == nil || !s.wait(ev) {
		return false
	}
	s.wait, s.waiting = nil, ""
	return true
}

func (s *scenario) done() bool { return s.next >= len(s.steps) }

// current names what the scenario is waiting for, for error messages.
func (s *scenario) current() string { return s.waiting }

// step takes the next step and sets what completes it.
func (s *scenario) step() error {
	st := s.steps[s.next]
	s.next++
	fmt.Fprintf(s.log, "quorumwatch: sim: %s\n", st.say)
	if err := st.do(); err != nil {
		return fmt.Errorf("%s: %w", st.say, err)
	}
	s.waiting = st.say
	if st.reconnects {
		// The snapshot after the reconnection ends with an initial quorum
		// event; nothing else is initial since the previous step. A
		// coalesced event keeps Initial, so this holds even if the
		// reconnected event was merged away.
		s.wait = func(ev quorum.QuorumEvent) bool { return ev.Kind == quorum.EventQuorum && ev.Initial }
		return nil
	}
	quorate, ring, _, err := s.c.View(s.viewer)
	if err != nil {
		return fmt.Errorf("%s: reading node %d's view: %w", st.say, s.viewer, err)
	}
	s.wait = func(ev quorum.QuorumEvent) bool {
		return ev.Kind == quorum.EventQuorum && ev.RingID == ring && ev.Quorate == quorate
	}
	return nil
}
