package quorum

import (
	"context"

	"github.com/corosync-go/quorum/internal/model"
)

// voteConn is what the picture is read from: a connection to corosync's
// votequorum service and to cmap's nodelist, beside the quorum connection.
// The real backends' (native.VoteConn, libquorum.VoteConn) and the simulated
// cluster's implement it; the engine opens one per session when the Client
// was opened WithPicture.
//
// The engine uses it as it uses a Conn: Fds and Dispatch from the pump
// only; the requests from any goroutine, concurrently; Close at any time,
// more than once, ending the requests in flight.
type voteConn interface {
	// Fds are readable when notifications are queued or the server hung
	// up. They stay owned by the voteConn.
	Fds() []int
	// Dispatch delivers every queued votequorum and cmap notification, in
	// order per service, without waiting. It returns an error matching
	// ErrConnectionLost once a server is gone.
	Dispatch(fn func(model.VoteEvent)) error
	// TrackStart starts votequorum tracking (CS_TRACK_CHANGES, so its
	// snapshot is queued) and cmap tracking of the nodelist and of the end
	// of a configuration reload.
	TrackStart(ctx context.Context) error
	// Config reads the quorum provider and the configured nodelist.
	Config(ctx context.Context) (model.Config, error)
	// GetInfo is votequorum_getinfo of nodeID (0: this node).
	GetInfo(ctx context.Context, nodeID uint32) (model.VoteInfo, error)
	// SetExpected is votequorum_setexpected.
	SetExpected(ctx context.Context, expected uint32) error
	// SetVotes is votequorum_setvotes.
	SetVotes(ctx context.Context, nodeID, votes uint32) error
	Close() error
}

// voteBackend is a Backend that can also open a voteConn: this package's
// backends are; a Backend of another package is not, and a Client opened
// WithPicture on one fails with ErrNotSupported. conn is the quorum
// connection the voteConn goes with, just made by Connect (a backend may
// reuse what it learnt of the server).
type voteBackend interface {
	connectVotes(ctx context.Context, p ConnectParams, conn Conn) (voteConn, error)
}
