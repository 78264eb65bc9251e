// Package quorum tells a Go program, the moment it changes, whether its node
// is in a quorate partition of a Corosync cluster and who the members are.
//
// It wraps corosync's quorum service (quorum_trackstart, quorum_dispatch,
// quorum_getquorate) behind a channel:
//
//	events, err := quorum.Subscribe(ctx, quorum.TrackCurrent|quorum.TrackChanges)
//	if err != nil {
//		return err
//	}
//	for ev := range events {
//		setReady(ev.Known() && ev.Quorate) // every event carries the whole view
//	}
//
// # What the stream means
//
// Events mirror corosync's own notifications (quorum model V1): a snapshot
// of a nodelist then a quorum event, marked Initial, when asked for with
// TrackCurrent or TrackChanges; then for every new ring a nodelist event
// (Joined, Left) followed by a quorum event for the same ring. A new ring
// need not change the membership: corosync re-forms its ring at times (a
// lost token, a node that fails to rejoin), and then Joined and Left are
// empty. A quorum event may also come alone, when quorum changes without a
// new ring (expected votes lowered, say). TrackCurrent alone is a one-shot
// snapshot; TrackChangesOnly skips the snapshot.
//
// Every event carries the full view as now known (Quorate, RingID, Members),
// so any one event is enough to act on. An unknown state is never reported
// as quorate: the engine's own events (EventDisconnected, EventReconnected,
// EventError) have Quorate false, and Known tells them from an inquorate
// partition. Ring ids print in hex, as corosync prints them (RingID.String).
//
// # How to consume the stream
//
// One loop is always right, whatever the flags, the backend and the pace of
// the reader:
//
//	for ev := range events {
//		setReady(ev.Known() && ev.Quorate)
//	}
//
// It is right because of what coalescing does and does not do. When a reader
// falls behind, undelivered events are merged into one: its Kind, Initial
// (set if any merged event was a snapshot's), Quorate, RingID and Members are
// the newest event's; Joined and Left accumulate everything merged, and a
// node that left and came back is in both; Coalesced counts the merged
// events. So a membership change can arrive on an EventQuorum event, a
// disconnection and the reconnection after it can arrive as one
// EventReconnected, and only the newest state is certain to be seen. Act on
// the state an event carries, never on the number or kinds of events in
// between: a reader that needs every event uses WithLossless and handles
// ErrSlowConsumer. Err is set on EventDisconnected and EventError events; on
// the last event of a stream it says why the stream ended (a cancelled
// context ends it with no event).
//
// # Channels and their lifetime
//
// The engine owns every channel it returns and closes it exactly once, after
// releasing what the subscription holds:
//   - when the subscription's context is cancelled (promptly, with no
//     further event; events already delivered may still be read);
//   - after a TrackCurrent-only snapshot;
//   - after a last event whose Err says why: ErrSlowConsumer, ErrClosed (the
//     Client was closed), ErrAccess or another terminal error while
//     reconnecting, or ErrConnectionLost with WithoutReconnect.
//
// A subscriber never delays corosync, the engine, other subscribers or
// Close. One that does not keep up has undelivered events coalesced: the
// newest state wins, Joined and Left accumulate, and Coalesced counts the
// notifications merged, so nothing is lost silently. WithLossless buffers
// instead and ends the subscription with ErrSlowConsumer when the buffer is
// full.
//
// # Connections
//
// Subscribe opens a private connection for one subscription. Open returns a
// Client whose one connection serves any number of subscriptions; it also
// answers State, its cached view (no round trip: for health checks), and
// Quorate, a round trip to corosync that honours its context even when
// corosync hangs. Options are typed by what they configure: OpenOption for
// a connection, SubscribeOption for a subscription; the package-level
// Subscribe takes both.
//
// When the connection is lost (corosync stopped or restarted), every
// subscriber receives EventDisconnected, whose Err matches
// ErrConnectionLost; the engine reconnects with capped, jittered
// exponential backoff (WithBackoff), then sends EventReconnected and a fresh
// snapshot whose Joined and Left say what changed meanwhile.
// WithoutReconnect makes the loss terminal instead.
//
// While corosync cannot be reached, a new subscriber (of a Client, or of the
// package-level Subscribe when corosync is down at the start) gets
// EventDisconnected at once, then EventReconnected and its own first
// snapshot, with empty Joined and Left, once corosync is back. Open instead
// waits for corosync until its context ends.
//
// # The whole picture
//
// A Client opened WithPicture also keeps what corosync-quorumtool -s shows:
// the quorum provider, this node's id, expected votes, highest expected,
// total votes, quorum, votequorum's flags, every node with its name, votes,
// state and quorum device state, and the quorum device. Picture returns it
// from the cache (no round trip); SubscribePicture streams a new value
// whenever any part of it changes, with the channel contract above (a
// coalescing channel keeps the newest value, which is the whole state).
//
// Changes of membership and quorum come at once, with Syncing set while
// votequorum is re-read; the complete value follows. corosync notifies
// nothing when votes or the quorum threshold change without quorate
// changing (another node's corosync-quorumtool -v or -e, say), nor when a
// quorum device registers, leaves, or stops casting its vote (corosync's
// main branch adds a notification for some of these, which the pure-Go
// backend takes as a reason to re-read): such a change shows at the next
// notified change, or within the interval given to WithPictureRefresh.
// SetExpectedVotes and SetVotes are the administrative calls of
// corosync-quorumtool -e and -v. Without a quorum provider corosync reports
// every partition quorate; Picture.Provider is then empty. A Picture whose
// state is unknown (corosync out of reach, the last value of a stream) has
// Connected, Quorate and Syncing false, and Err says why.
//
// # Backends
//
// A Backend opens connections. NativeBackend speaks corosync's IPC protocol
// in Go (it works with CGO_ENABLED=0) and is the default; LibquorumBackend
// uses corosync's C library and becomes the default when the program is
// built with -tags libquorum; SimCluster.Backend is a simulated cluster for
// tests and demos, driven through the same engine. The engine waits on the
// connection's file descriptor through the Go netpoller, so an idle
// subscribed process makes no wake-ups at all.
//
// # Errors
//
// Errors match the sentinels (ErrTryAgain, ErrAccess, ErrConnectionLost,
// ...) with errors.Is; corosync's failures are *Error values carrying the
// operation and corosync's cs_error_t code.
//
// corosync accepts clients that run as root, or whose user or group it lists
// in a uidgid section of corosync.conf. Abstract unix sockets have no
// permissions, so backends that can see the server's credentials refuse a
// server that does not run as root (or a uid allowed by WithTrustedUIDs).
//
// Connecting to corosync requires sharing its network namespace (corosync's
// IPC uses abstract sockets) and, for its default shared-memory transport,
// its /dev/shm.
package quorum
