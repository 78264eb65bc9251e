//go:build linux

package native

import (
	"context"
	"errors"
	"fmt"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
	"github.com/corosync-go/quorum/internal/qbipc"
)

// ProviderVotequorum is quorum.provider's value when corosync runs
// votequorum, the only quorum provider corosync 2.x and 3.x have.
const ProviderVotequorum = "corosync_votequorum"

// ErrNoVotequorum is the cause of the votequorum calls of a VoteConn to a
// corosync with another quorum provider or none (every partition is then
// quorate): their error has code cs.ErrNotSupported.
var ErrNoVotequorum = errors.New("no votequorum provider is configured")

// voteTrackContext is the context given to votequorum's TRACKSTART, which
// corosync copies into every notification; nothing reads it back.
const voteTrackContext = 0

// VoteConn is a connection to corosync's votequorum service (when corosync
// runs it) and to cmap, for the whole picture beside the quorum service's
// Conn. Requests are serialised per connection and may run concurrently
// with each other and with Dispatch; Dispatch must not run concurrently with
// itself. Close may be called at any time, more than once, and makes the
// requests in flight return.
type VoteConn struct {
	family   Family
	provider string
	cmap     *cmapConn
	vq       *qbipc.Conn // nil when corosync has no votequorum
}

// VoteEndpoints are the services DialVotes talks to: corosync's own by
// default, a test's fake servers otherwise.
type VoteEndpoints struct {
	// CMap is the cmap service ("cmap").
	CMap qbipc.Config
	// Votequorum is the votequorum service ("votequorum").
	Votequorum qbipc.Config
}

// DialVotes connects to the cmap service of the corosync in the calling
// thread's network namespace and, when its quorum provider is votequorum,
// to votequorum, trusting a server that runs as root or as one of
// trustedUIDs. f is the server's family as Dial learnt it ((*Conn).Family):
// nothing is probed again, and nothing f lacks is ever sent.
func DialVotes(ctx context.Context, trustedUIDs []uint32, f Family) (*VoteConn, error) {
	return DialVotesEndpoints(ctx, VoteEndpoints{
		CMap:       qbipc.Config{Service: CMapService, TrustedUIDs: trustedUIDs},
		Votequorum: qbipc.Config{Service: VoteService, TrustedUIDs: trustedUIDs},
	}, f)
}

// DialVotesEndpoints is DialVotes with every qbipc setting. It reads
// quorum.provider from cmap and connects to votequorum only when it is
// ProviderVotequorum: otherwise corosync does not serve votequorum, and the
// VoteConn's votequorum calls fail with ErrNoVotequorum.
func DialVotesEndpoints(ctx context.Context, e VoteEndpoints, f Family) (*VoteConn, error) {
	ipc, err := qbipc.Dial(ctx, e.CMap)
	if err != nil {
		return nil, relabel("cmap_initialize", err)
	}
	c := &VoteConn{family: f, cmap: newCMapConn(ipc, f)}
	if c.provider, err = c.cmap.provider(ctx); err != nil {
		ipc.Close()
		return nil, err
	}
	if c.provider == ProviderVotequorum {
		if c.vq, err = qbipc.Dial(ctx, e.Votequorum); err != nil {
			ipc.Close()
			return nil, relabel("votequorum_initialize", err)
		}
	}
	return c, nil
}

// Provider is quorum.provider as DialVotes read it ("" when none is
// configured).
func (c *VoteConn) Provider() string { return c.provider }

// Family is the server's family the VoteConn was dialled for.
func (c *VoteConn) Family() Family { return c.family }

// HasVotequorum reports whether the VoteConn is connected to votequorum.
func (c *VoteConn) HasVotequorum() bool { return c.vq != nil }

// Fds are readable when notifications are queued or a server hung up:
// votequorum's (when connected) and cmap's. They stay owned by the VoteConn.
func (c *VoteConn) Fds() []int {
	if c.vq == nil {
		return []int{c.cmap.ipc.Fd()}
	}
	return []int{c.vq.Fd(), c.cmap.ipc.Fd()}
}

// Dispatch delivers every queued notification without waiting: votequorum's
// in order (quorum, expected votes and nodelist; ids it does not know, such
// as the qdevice extra information of corosync's main branch, are skipped),
// then one ConfigChanged event if cmap notified any change to a tracked key
// since the last call: the notifications of one change (a reload renames,
// adds and removes many keys) need one reread, which sees the state after
// the whole change since corosync answers no request during it. Once a
// server is gone it returns an error with code cs.ErrLibrary, after what was
// queued; a malformed notification is an error with the same code.
func (c *VoteConn) Dispatch(fn func(model.VoteEvent)) error {
	if c.vq != nil {
		const op = "votequorum_dispatch"
		for {
			msg, ok, err := c.vq.ReadEvent()
			if err != nil {
				return relabel(op, err)
			}
			if !ok {
				break
			}
			ev, known, err := DecodeVoteNotification(msg)
			if err != nil {
				return &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
			}
			if !known {
				// A kind this client does not decode still says that
				// something changed (main's id 7 comes when a quorum
				// device registers or leaves, which nothing else tells).
				ev = model.VoteEvent{Kind: model.VoteOther}
			}
			fn(ev)
		}
	}
	const op = "cmap_dispatch"
	changed := false
	var err error
	for {
		msg, ok, rerr := c.cmap.ipc.ReadEvent()
		if rerr != nil {
			err = relabel(op, rerr)
			break
		}
		if !ok {
			break
		}
		// ReadEvent checked the header; cmap sends no event but NOTIFY.
		if int32(le.Uint32(msg)) != CMapResNotify {
			continue
		}
		n, derr := DecodeCMapNotify(msg)
		if derr != nil {
			err = &cs.Error{Op: op, Code: cs.ErrLibrary, Err: derr}
			break
		}
		if n.Cookie == cookieNodelist || n.Cookie == cookieReload {
			changed = true
		}
	}
	if changed {
		fn(model.VoteEvent{Kind: model.ConfigChanged})
	}
	return err
}

// TrackStart tracks, in cmap, every change under nodelist.node. and the end
// of a configuration reload (config.totemconfig_reload_in_progress), once
// per VoteConn; then starts votequorum tracking with CS_TRACK_CHANGES:
// corosync queues its snapshot (a nodelist notification, then a quorum
// notification) before it answers, and answers CS_ERR_EXIST, with the
// snapshot queued again, when this VoteConn tracks already. Without
// votequorum it tracks cmap only.
func (c *VoteConn) TrackStart(ctx context.Context) error {
	if err := c.cmap.trackAdd(ctx, nodelistPrefix, CMapTrackAdd|CMapTrackDelete|CMapTrackModify|CMapTrackPrefix, cookieNodelist); err != nil {
		return err
	}
	if err := c.cmap.trackAdd(ctx, reloadKey, CMapTrackAdd|CMapTrackDelete|CMapTrackModify, cookieReload); err != nil {
		return err
	}
	if c.vq == nil {
		return nil
	}
	return c.status(ctx, "votequorum_trackstart", EncodeVoteTrackStart(voteTrackContext, trackChanges), nil)
}

// TrackStop is votequorum_trackstop: CS_ERR_NOT_EXIST when not tracking.
// cmap's tracks stay.
func (c *VoteConn) TrackStop(ctx context.Context) error {
	return c.status(ctx, "votequorum_trackstop", EncodeVoteTrackStop(), nil)
}

// Config reads the quorum provider and the configured nodes (see
// model.ConfNode), sorted by id. On corosync 2.x a node's name is its
// ring0_addr, as corosync-quorumtool 2.x shows it even where the node has a
// name key; later, its name key, else its ring0_addr (where
// corosync-quorumtool resolves the node's first address instead). A node
// without a UINT32 nodeid is left out, as corosync's tools leave it out.
func (c *VoteConn) Config(ctx context.Context) (model.Config, error) {
	p, err := c.cmap.provider(ctx)
	if err != nil {
		return model.Config{}, err
	}
	nodes, err := c.cmap.nodelist(ctx)
	if err != nil {
		return model.Config{}, err
	}
	return model.Config{Provider: p, Nodes: nodes}, nil
}

// GetInfo is votequorum_getinfo of nodeID (0: this node, whose real id the
// reply carries). A node votequorum does not know is CS_ERR_NOT_EXIST.
func (c *VoteConn) GetInfo(ctx context.Context, nodeID uint32) (model.VoteInfo, error) {
	const op = "votequorum_getinfo"
	if err := c.needVotequorum(op); err != nil {
		return model.VoteInfo{}, err
	}
	resp, err := guardedRequest(ctx, c.vq, c.family, VoteService, op, EncodeVoteGetInfo(nodeID), VoteResGetInfo)
	if err != nil {
		return model.VoteInfo{}, err
	}
	info, code, err := DecodeVoteInfo(resp)
	switch {
	case err != nil:
		return model.VoteInfo{}, &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
	case code == cs.ErrNotExist:
		return model.VoteInfo{}, &cs.Error{Op: op, Code: code, Err: fmt.Errorf("votequorum knows no node %d", nodeID)}
	case code != cs.OK:
		return model.VoteInfo{}, &cs.Error{Op: op, Code: code}
	}
	return info, nil
}

// SetExpected is votequorum_setexpected. corosync refuses (CS_ERR_INVALID_PARAM)
// a value below the cluster's total votes, or one whose quorum would exceed
// the total votes of a quorate cluster.
func (c *VoteConn) SetExpected(ctx context.Context, expected uint32) error {
	return c.status(ctx, "votequorum_setexpected", EncodeVoteSetExpected(expected), func(code cs.Code) error {
		if code == cs.ErrInvalidParam {
			return fmt.Errorf("corosync refused %d expected votes: below the total votes, or a quorum above them in a quorate cluster", expected)
		}
		return nil
	})
}

// SetVotes is votequorum_setvotes. corosync applies it on every node once
// its message went round the ring. A node votequorum does not know is
// CS_ERR_NAME_NOT_FOUND; nodeID 0 names the quorum device, not this node
// (unlike GetInfo); votes that would put the quorum below half the total
// votes or above them are CS_ERR_INVALID_PARAM.
func (c *VoteConn) SetVotes(ctx context.Context, nodeID, votes uint32) error {
	return c.status(ctx, "votequorum_setvotes", EncodeVoteSetVotes(nodeID, votes), func(code cs.Code) error {
		switch code {
		case cs.ErrNameNotFound:
			return fmt.Errorf("votequorum knows no node %d", nodeID)
		case cs.ErrInvalidParam:
			return fmt.Errorf("corosync refused %d votes for node %d: the quorum would fall below half the total votes or exceed them", votes, nodeID)
		}
		return nil
	})
}

// Close releases both connections without waiting for corosync, and makes
// the requests still waiting return.
func (c *VoteConn) Close() error {
	if c.vq != nil {
		c.vq.Close()
	}
	return c.cmap.ipc.Close()
}

func (c *VoteConn) needVotequorum(op string) error {
	if c.vq != nil {
		return nil
	}
	return &cs.Error{Op: op, Code: cs.ErrNotSupported, Err: fmt.Errorf("%w (quorum.provider is %q)", ErrNoVotequorum, c.provider)}
}

// status sends a votequorum request that is answered with STATUS; why, if
// set, explains a refusal's code.
func (c *VoteConn) status(ctx context.Context, op string, req []byte, why func(cs.Code) error) error {
	if err := c.needVotequorum(op); err != nil {
		return err
	}
	resp, err := guardedRequest(ctx, c.vq, c.family, VoteService, op, req, VoteResStatus)
	if err != nil {
		return err
	}
	h, err := DecodeResponse(resp, VoteResStatus)
	if err != nil {
		return &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
	}
	if code := cs.Code(h.Error); code != cs.OK {
		var cause error
		if why != nil {
			cause = why(code)
		}
		return &cs.Error{Op: op, Code: code, Err: cause}
	}
	return nil
}
