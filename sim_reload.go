package quorum

import (
	"fmt"
	"slices"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
)

// Config returns the configuration file the nodes start with (a copy).
func (c *SimCluster) Config() SimConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.file.clone()
}

// Reload writes cfg as every node's corosync.conf and runs
// corosync-cfgtool -R on node issuer: a cluster message, so the running
// nodes of issuer's partition reload it, and the others keep theirs until
// they reload or restart. On each reloading node, as in corosync:
//   - cmap trackers of the nodelist get a ConfigChanged notification for
//     the start of the reload, one per nodelist key that changed (a name,
//     a node's votes), and one for its end;
//   - wait_for_all, last_man_standing, auto_tie_breaker and the quorum
//     provider cannot change at run time: the node keeps its values (a
//     restart reads the new ones);
//   - votequorum reads its configuration again: node votes, expected votes
//     (quorum.expected_votes, or the sum of the nodes' votes: what
//     SetExpectedVotes set is undone, and raised again to the votes
//     present) and two_node; it sends its state to the ring, and its new
//     votes and expected votes if they changed, which every member applies
//     (each sends an expected votes notification for the latter).
//
// The nodes of cfg must be those of the cluster (adding or removing nodes
// is not modelled), and a quorum device can be neither added nor removed.
// A configuration that corosync would refuse at start is accepted, as
// corosync does (its run-time fallbacks apply), but a node that starts
// with it fails to start.
func (c *SimCluster) Reload(issuer uint32, cfg SimConfig) error {
	cfg = cfg.clone()
	if err := cfg.check(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.node(issuer)
	if err != nil {
		return err
	}
	ids := make([]uint32, len(cfg.Nodes))
	for i, nd := range cfg.Nodes {
		ids[i] = nd.ID
	}
	slices.Sort(ids)
	if !slices.Equal(ids, c.ids) {
		return fmt.Errorf("%w: Reload with nodes %v: the simulated cluster has %v, and adding or removing nodes is not modelled",
			ErrInvalidParam, ids, c.ids)
	}
	if (cfg.Qdevice == nil) != (c.file.Qdevice == nil) {
		return fmt.Errorf("%w: adding or removing the quorum device by a reload is not modelled", ErrInvalidParam)
	}
	if !n.up {
		return newError("corosync_cfg_reload_config", cs.ErrLibrary, nil)
	}
	c.file = cfg
	c.reload(c.groupOf(n))
	return nil
}

// reload runs a configuration reload on the running nodes members (a
// partition), then delivers what they sent.
func (c *SimCluster) reload(members []uint32) {
	for _, id := range members {
		n := c.nodes[id]
		next := c.file.clone()
		// What corosync keeps read-only at run time.
		next.WaitForAll = n.cfg.WaitForAll
		next.LastManStanding = n.cfg.LastManStanding
		next.AutoTieBreaker = n.cfg.AutoTieBreaker
		next.AutoTieBreakerNode = n.cfg.AutoTieBreakerNode
		next.NoProvider = n.cfg.NoProvider
		n.cfg = &next
		n.cmapChanged()
		if n.vq != nil {
			n.vq.refreshConfig()
		}
	}
	c.deliver()
	c.runQdevices()
}

// cmapChanged notifies n's nodelist trackers of a reload: cmap sends one
// notification as it starts, one per nodelist key it changes, and one as
// it ends, which a Dispatch turns into one ConfigChanged.
func (n *simNode) cmapChanged() {
	for vc := range n.vconns {
		if vc.cmap {
			vc.cmapNotifyLocked()
		}
	}
}

// modelConfig is what cmap on n says of the quorum configuration.
func (n *simNode) modelConfig() model.Config {
	var cfg model.Config
	if !n.cfg.NoProvider {
		cfg.Provider = "corosync_votequorum"
	}
	for _, nd := range n.cfg.Nodes {
		cfg.Nodes = append(cfg.Nodes, model.ConfNode{ID: nd.ID, Name: nd.nodeName(), Votes: nd.Votes})
	}
	slices.SortFunc(cfg.Nodes, func(a, b model.ConfNode) int { return int(int64(a.ID) - int64(b.ID)) })
	return cfg
}
