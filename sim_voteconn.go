package quorum

import (
	"context"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
)

// connectVotes opens the simulated node's votequorum and cmap, as
// votequorum_initialize and cmap_initialize would: it fails like Connect
// (FailConnects, a stopped or frozen corosync). Without a quorum provider
// it succeeds all the same (cmap is there): Config then says so, TrackStart
// starts only cmap tracking, and the votequorum requests fail with
// CS_ERR_NOT_SUPPORTED.
func (b simBackend) connectVotes(ctx context.Context, _ ConnectParams, _ Conn) (voteConn, error) {
	var vc *simVoteConn
	err := b.connect(ctx, "votequorum_initialize", func(n *simNode, sig simSignal) {
		vc = &simVoteConn{simLink: simLink[model.VoteEvent]{c: b.c, n: n, sig: sig, done: make(chan struct{})}}
		n.vconns[vc] = struct{}{}
	})
	if err != nil {
		return nil, err
	}
	return vc, nil
}

// simVoteConn is a client's votequorum and cmap connections to a simulated
// corosync, with one descriptor for both.
type simVoteConn struct {
	simLink[model.VoteEvent]      // votequorum's notifications
	tracking                 bool // votequorum trackstart
	cmap                     bool // cmap tracking of the nodelist and of reloads
	changed                  bool // cmap notified a change since the last Dispatch
}

func (vc *simVoteConn) Fds() []int { return []int{vc.sig.fd()} }

// Dispatch delivers votequorum's notifications in order, then, as the
// native backend does, one ConfigChanged if cmap notified any change since
// the last call (a reload notifies several keys; one reread sees them all).
func (vc *simVoteConn) Dispatch(fn func(model.VoteEvent)) error {
	changed := false
	err := vc.dispatch("votequorum_dispatch", fn, func() {
		changed, vc.changed = vc.changed, false
	})
	if changed {
		fn(model.VoteEvent{Kind: model.ConfigChanged})
	}
	return err
}

// cmapNotifyLocked queues a cmap notification for a nodelist tracker.
func (vc *simVoteConn) cmapNotifyLocked() {
	vc.changed = true
	if !vc.n.frozen {
		vc.signalLocked()
	}
}

// TrackStart is votequorum_trackstart with CS_TRACK_CHANGES (its snapshot,
// a nodelist then a quorum notification, is queued before it returns; a
// second call queues it again and returns CS_ERR_EXIST) and cmap tracking.
func (vc *simVoteConn) TrackStart(ctx context.Context) error {
	return vc.request(ctx, "votequorum_trackstart", func() error {
		vc.cmap = true
		vq := vc.n.vq
		if vq == nil {
			return nil
		}
		vc.enqueueLocked(vq.nodeListEvent())
		vc.enqueueLocked(vq.quorumEvent())
		if vc.tracking {
			return newError("votequorum_trackstart", cs.ErrExist, nil)
		}
		vc.tracking = true
		return nil
	})
}

func (vc *simVoteConn) Config(ctx context.Context) (model.Config, error) {
	var cfg model.Config
	err := vc.request(ctx, "cmap_get", func() error {
		cfg = vc.n.modelConfig()
		return nil
	})
	return cfg, err
}

func (vc *simVoteConn) GetInfo(ctx context.Context, nodeID uint32) (model.VoteInfo, error) {
	var info model.VoteInfo
	err := vc.request(ctx, "votequorum_getinfo", func() error {
		if err := vc.n.votequorum("votequorum_getinfo"); err != nil {
			return err
		}
		var ok bool
		if info, ok = vc.n.vq.getInfo(nodeID); !ok {
			return newError("votequorum_getinfo", cs.ErrNotExist, nil)
		}
		return nil
	})
	return info, err
}

func (vc *simVoteConn) SetExpected(ctx context.Context, expected uint32) error {
	return vc.request(ctx, "votequorum_setexpected", func() error {
		if err := vc.n.votequorum("votequorum_setexpected"); err != nil {
			return err
		}
		err := vc.n.vq.setExpected(expected)
		vc.c.deliver()
		return err
	})
}

func (vc *simVoteConn) SetVotes(ctx context.Context, nodeID, votes uint32) error {
	return vc.request(ctx, "votequorum_setvotes", func() error {
		if err := vc.n.votequorum("votequorum_setvotes"); err != nil {
			return err
		}
		err := vc.n.vq.setVotes(nodeID, votes)
		vc.c.deliver()
		return err
	})
}

func (vc *simVoteConn) loseLocked() {
	if vc.simLink.loseLocked() {
		delete(vc.n.vconns, vc)
	}
}

func (vc *simVoteConn) Close() error {
	vc.c.mu.Lock()
	defer vc.c.mu.Unlock()
	if !vc.closeLocked() {
		return nil
	}
	delete(vc.n.vconns, vc)
	return vc.sig.close()
}

var (
	_ voteBackend = simBackend{}
	_ voteConn    = (*simVoteConn)(nil)
)
