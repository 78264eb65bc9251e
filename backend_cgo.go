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
	return realConn{c}, nil
}

func (libquorumBackend) connectVotes(ctx context.Context, p ConnectParams, _ Conn) (voteConn, error) {
	v, err := libquorum.DialVotes(ctx, p.TrustedUIDs)
	if err != nil {
		return nil, fromInternal(err)
	}
	return v, nil
}
