//go:build linux

package quorum

import (
	"context"

	"github.com/corosync-go/quorum/internal/native"
)

// NativeBackend returns the Backend that speaks corosync's IPC protocol
// (libqb's, over shared memory or sockets) in Go, without cgo or libquorum.
// It works on linux/amd64 and linux/arm64 with any corosync the machine's
// glibc (2.21 or later) runs; elsewhere, or when the shared-memory
// semaphores do not look like glibc's, Connect fails with an error matching
// ErrNotSupported unless corosync serves IPC over sockets
// (system { qb_ipc_type: socket }). It serves corosync 2.3 to 3.1+ over
// libqb 1.0.1 to 2.0.x: it first asks corosync's cmap which version it is,
// and never sends corosync 2.x a request that 2.x does not have (2.x dies of
// one). It uses quorum model V1 on corosync 3.1 and later, and model V0
// before, where nodelist notifications carry no joined and left lists (the
// engine derives them) and a quorum change on an unchanged ring comes as a
// quorum event alone, as with V1.
//
// Connect must run in corosync's network namespace (its IPC socket is an
// abstract unix socket) and see the same /dev/shm. The server is checked
// with the credentials the kernel attaches to its handshake: it must run as
// root or as a uid in ConnectParams.TrustedUIDs (see WithTrustedUIDs), or
// Connect fails with an error matching ErrAccess.
func NativeBackend() Backend { return nativeBackend{} }

type nativeBackend struct{}

func (nativeBackend) Connect(ctx context.Context, p ConnectParams) (Conn, error) {
	c, err := native.Dial(ctx, p.TrustedUIDs)
	if err != nil {
		return nil, fromInternal(err)
	}
	return realConn{c}, nil
}

func (nativeBackend) connectVotes(ctx context.Context, p ConnectParams, conn Conn) (voteConn, error) {
	// The quorum connection's probe already learnt which corosync this is.
	f := native.Corosync2
	if rc, ok := conn.(realConn); ok {
		if nc, ok := rc.c.(*native.Conn); ok {
			f = nc.Family()
		}
	}
	v, err := native.DialVotes(ctx, p.TrustedUIDs, f)
	if err != nil {
		return nil, fromInternal(err)
	}
	return v, nil
}
