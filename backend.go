package quorum

import "context"

// Backend opens connections to corosync's quorum service. The engine calls
// Connect again after a connection is lost; a Backend must therefore be
// reusable and safe for concurrent use.
//
// This package provides NativeBackend (pure Go), LibquorumBackend (cgo,
// build tag libquorum) and the simulated SimCluster.Backend. A Backend is
// chosen with WithBackend.
type Backend interface {
	// Connect opens a connection with quorum model V1 semantics. It returns
	// an error matching ErrTryAgain while corosync starts, ErrConnectionLost
	// while it is not running and ErrAccess when it refuses this process. It
	// returns ctx.Err() (possibly wrapped) if ctx ends first.
	Connect(ctx context.Context, p ConnectParams) (Conn, error)
}

// ConnectParams are the engine's settings that a backend must apply.
type ConnectParams struct {
	// TrustedUIDs are the uids, besides 0, that the server process may run
	// as. A backend that can see its peer's credentials refuses any other.
	TrustedUIDs []uint32
}

// Conn is one connection to the quorum service, handed to the engine by a
// Backend. What the engine does with it:
//   - Fd and Dispatch are called from one goroutine only (the pump), never
//     concurrently with each other.
//   - TrackStart and Quorate (the requests) may be called from any goroutine,
//     concurrently with each other and with Dispatch: a Conn serialises its
//     requests itself if it must, and a request still waiting its turn
//     returns when its context ends.
//   - Close may be called at any time, concurrently with anything, and more
//     than once. It ends the requests in flight (they return an error) and
//     does not wait for a hung corosync.
type Conn interface {
	// Fd returns a descriptor that is readable when notifications are queued
	// or the server hung up. It stays owned by the Conn: the engine only
	// waits for it to become readable, and never reads, closes or changes it.
	Fd() int
	// Dispatch delivers every queued notification to fn, in order, and
	// returns without waiting. It returns an error matching
	// ErrConnectionLost once the server is gone; the Conn is then dead.
	// fn must not retain the Notification past the call except its slices,
	// which the backend must not modify afterwards.
	Dispatch(fn func(Notification)) error
	// TrackStart is quorum_trackstart. With TrackCurrent or TrackChanges, the
	// snapshot (nodelist, then quorum) is queued before it returns. A second
	// call returns an error matching ErrExist but still queues the snapshot.
	// It returns ctx's error if ctx ends first.
	TrackStart(ctx context.Context, flags TrackFlags) error
	// Quorate is quorum_getquorate: a round trip to corosync. It returns
	// ctx's error if ctx ends first.
	Quorate(ctx context.Context) (bool, error)
	// Close releases the connection.
	Close() error
}

// Notification is one corosync callback as a backend decodes it.
type Notification struct {
	// Kind is EventNodeList or EventQuorum.
	Kind EventKind
	// Quorate is set on quorum notifications.
	Quorate bool
	RingID  RingID
	// Members is the membership. Joined and Left are corosync's lists on a
	// nodelist notification; a backend that speaks model V0 leaves them nil
	// and the engine derives them.
	Members, Joined, Left []uint32
}
