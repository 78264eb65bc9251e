//go:build libquorum && cgo && linux

package quorum

import (
	"context"

	"github.com/corosync-go/quorum/internal/libquorum"
)

// LibquorumBackend returns the Backend that talks to corosync through its C
// library, libquorum, via cgo. It is the default backend of a program built
// with -tags libquorum. It builds against the headers of corosync 2.4, 3.0
// and 3.1 and later, and uses quorum model V1 where the libquorum found at
// run time has it (3.1 and later). Otherwise it uses model V0, whose one
// callback it turns into the nodelist and quorum notifications V1 would
// give, with nil Joined and Left lists (the engine derives them) and the
// lowest member id as the ring's node id.
//
// The server is checked with SO_PEERCRED: it must run as root or as a uid in
// ConnectParams.TrustedUIDs (see WithTrustedUIDs), or Connect fails with an
// error matching ErrAccess.
func LibquorumBackend() Backend { return libquorumBackend{} }

func defaultBackend() Backend { return LibquorumBackend() }

type libquorumBackend struct{}

func (libquorumBackend) Connect(ctx context.Context, p ConnectParams) (Conn, error) {
	c, err := libquorum.Dial(ctx, p.TrustedUIDs)
	if err != nil {
		return nil, fromInternal(err)
	}
	return &libquorumConn{c: c}, nil
}

// libquorumConn adapts *libquorum.Conn to Conn.
type libquorumConn struct {
	c *libquorum.Conn
}

func (lc *libquorumConn) Fd() int { return lc.c.Fd() }

func (lc *libquorumConn) Dispatch(fn func(Notification)) error {
	return fromInternal(lc.c.Dispatch(func(n libquorum.Notification) {
		out := Notification{
			RingID:  RingID{NodeID: n.RingNode, Seq: n.RingSeq},
			Members: n.Members,
		}
		switch n.Kind {
		case libquorum.KindNodeList:
			out.Kind = EventNodeList
			out.Joined, out.Left = n.Joined, n.Left
		case libquorum.KindQuorum:
			out.Kind = EventQuorum
			out.Quorate = n.Quorate
		default:
			return
		}
		fn(out)
	}))
}

func (lc *libquorumConn) TrackStart(ctx context.Context, flags TrackFlags) error {
	// TrackFlags hold corosync's CS_TRACK_* values, so they pass unchanged.
	return fromInternal(lc.c.TrackStart(ctx, uint32(flags)))
}

func (lc *libquorumConn) TrackStop(ctx context.Context) error {
	return fromInternal(lc.c.TrackStop(ctx))
}

func (lc *libquorumConn) Quorate(ctx context.Context) (bool, error) {
	q, err := lc.c.Quorate(ctx)
	return q, fromInternal(err)
}

func (lc *libquorumConn) Close() error { return fromInternal(lc.c.Close()) }
