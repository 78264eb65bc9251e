//go:build linux

package quorum

import (
	"context"

	"github.com/corosync-go/quorum/internal/model"
)

// internalConn is what the connections of both real backends are
// (*native.Conn and *libquorum.Conn): corosync's calls, with corosync's
// errors (*cs.Error) and model's notifications.
type internalConn interface {
	Fd() int
	Dispatch(fn func(model.Notification)) error
	TrackStart(ctx context.Context, flags uint32) error
	Quorate(ctx context.Context) (bool, error)
	Close() error
}

// realConn adapts an internalConn to Conn: the one place where the real
// backends' notifications and errors become this package's.
type realConn struct {
	c internalConn
}

func (rc realConn) Fd() int { return rc.c.Fd() }

func (rc realConn) Dispatch(fn func(Notification)) error {
	return fromInternal(rc.c.Dispatch(func(n model.Notification) {
		out := Notification{
			RingID:  RingID{NodeID: n.Ring.NodeID, Seq: n.Ring.Seq},
			Members: n.Members,
		}
		switch n.Kind {
		case model.KindNodeList:
			out.Kind = EventNodeList
			out.Joined, out.Left = n.Joined, n.Left
		case model.KindQuorum:
			out.Kind = EventQuorum
			out.Quorate = n.Quorate
		default:
			return
		}
		fn(out)
	}))
}

func (rc realConn) TrackStart(ctx context.Context, flags TrackFlags) error {
	// TrackFlags hold corosync's CS_TRACK_* values, so they pass unchanged.
	return fromInternal(rc.c.TrackStart(ctx, uint32(flags)))
}

func (rc realConn) Quorate(ctx context.Context) (bool, error) {
	q, err := rc.c.Quorate(ctx)
	return q, fromInternal(err)
}

func (rc realConn) Close() error { return fromInternal(rc.c.Close()) }
