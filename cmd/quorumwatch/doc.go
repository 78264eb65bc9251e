// Command quorumwatch prints corosync's quorum and membership events as they
// happen, one line per event, as seen by the node it runs on.
//
// Usage:
//
//	quorumwatch [--backend auto|libquorum|native|sim] [--flags LIST] [--json] [--timeout D]
//	quorumwatch --once [--backend ...] [--json] [--timeout D]
//	quorumwatch --picture [--once] [--backend ...] [--json] [--timeout D]
//	quorumwatch --sim [--node N] [--json]
//	quorumwatch serve [--web.listen-address ADDR] [--web.config.file PATH] [--backend ...] [options]
//
// Flags:
//
//	--backend NAME  how to reach corosync. auto (the default) is the first real
//	                backend built into the program; libquorum is corosync's C
//	                library (built with -tags libquorum); native is the pure-Go
//	                IPC client; sim is a quiet simulated 5-node cluster.
//	--flags LIST    comma-separated quorum_trackstart flags: current (a snapshot),
//	                changes (a snapshot, then every change), changes-only (every
//	                change, no snapshot). Default current,changes.
//	--json          print JSON lines instead of text.
//	--once          print the current state (a nodelist and a quorum event) and
//	                exit: 0 quorate, 2 not quorate, 1 error. Like
//	                corosync-quorumtool, it fails at once when corosync is not
//	                running (saying what to check), and waits only for a
//	                corosync that is still starting.
//	--timeout D     how long to keep trying to connect while corosync is down or
//	                starting, and the whole limit of --once. Default 10s.
//	--sim           play a simulated 5-node scenario seen from one node: two
//	                nodes stop, the network splits (leaving the viewer without
//	                quorum) and heals, the nodes start again, another node's
//	                corosync restarts too fast for the others to notice (it
//	                both leaves and joins), and the viewer's corosync
//	                restarts. Steps are about 0.7s apart, narrated on
//	                stderr; every event is shown (nothing is coalesced). Exits 0
//	                at the end.
//	--node N        the simulated node whose view is shown (1 to 5, default 1).
//	--picture       the whole picture (votequorum's votes, expected votes,
//	                quorum and flags, every node with its name, votes and
//	                state, the quorum device) instead of events: one line
//	                per change (a change of membership first comes marked
//	                "syncing", then with the votes re-read); with --once a
//	                summary laid out as corosync-quorumtool -s, or one JSON
//	                object with --json, and the same exit codes.
//
// Text lines name the nodes they show ("names 1=node1 2=node2"), from
// corosync's nodelist; JSON lines keep ids (the names are in --picture
// --json).
//
// Outside --sim, a reader that falls behind gets coalesced events (see
// quorum.Subscribe), marked "coalesced N". The connection is re-established
// after corosync restarts; the stream shows a disconnected event, then a
// reconnected event and a fresh snapshot.
//
// Ctrl-C (SIGINT) or SIGTERM ends the stream cleanly with exit code 0. During
// --once it ends quorumwatch quietly with 130, since the state was not
// reported: neither 0 (quorate) nor 2 would be true.
//
// # Exit codes
//
//	0    interrupted, or the stream or the scenario ended normally; with
//	     --once, the partition is quorate
//	1    an error: bad usage, corosync not running (--once), no connection
//	     within --timeout, or a stream that ended with an error (printed on
//	     stderr, and with --json also as an error object on stdout)
//	2    with --once only, the partition is not quorate
//	130  with --once only, interrupted before the state came
//
// Usage errors exit 1, not 2 as is common, because 2 means "not quorate", as
// with corosync-quorumtool.
//
// # Serve
//
// quorumwatch serve is a long-running exporter for Prometheus, load
// balancers and people. It keeps one Client opened WithPicture (re-read
// every --corosync.refresh-interval, 10s by default) and serves from its
// cache, so that no request ever waits for corosync:
//
//	/metrics      Prometheus metrics, corosync_quorum_*, and with
//	              --compat.ha-cluster-exporter ha_cluster_exporter's
//	              ha_cluster_corosync_* names (--web.telemetry-path)
//	/healthz      200 when connected and quorate, 503 when not quorate or
//	              the state is unknown (connecting, disconnected, or a
//	              frozen corosync); the picture as JSON in the body
//	/api/picture  the picture as JSON, as --picture --json prints it
//	/             a status page, live through server-sent events (/events)
//	/-/healthy    200 while it serves
//
// It listens at --web.listen-address (default :9959, repeatable), with TLS
// and basic auth from an exporter-toolkit --web.config.file, logs
// "msg=listening address=HOST:PORT" per listener, tells systemd READY=1
// once it has read corosync's state and STOPPING=1 on SIGTERM, and exits 0
// after a clean stop, 1 on bad usage or when corosync refuses it.
// quorumwatch serve --help lists the options; docs/exporter.md describes
// every metric, the health states and the systemd unit in contrib/systemd.
//
// # Text output
//
// One line per event, stable for grep:
//
//	2026-11-25T10:00:00.123Z #3 nodelist ring 1.2c quorate members [1 2 3 4] joined [] left [5]
//
// that is: the time in UTC with milliseconds, #seq, the kind (nodelist,
// quorum, disconnected, reconnected, error), the ring id as node.seq in hex,
// as corosync's log and corosync-quorumtool print it (so that it can be
// grepped for there), the state (quorate or inquorate; unknown on disconnected, reconnected and error
// events), the member, joined and left node ids, then " initial" on snapshot
// events, " coalesced N" when N events were merged into this one, and
// " error: ..." when the event carries an error. The nodelist event of a
// membership change still shows the state from before the change: the new
// state comes with the quorum event that corosync sends right after it.
//
// # JSON output
//
// With --json, one object per line, with exactly these keys in this order:
//
//	{"time":"2026-11-25T10:00:00.123456789Z","seq":3,"kind":"nodelist","initial":false,
//	 "quorate":true,"state":"quorate","ring_id":{"node_id":1,"seq":44},"members":[1,2,3,4],
//	 "joined":[],"left":[5],"coalesced":0}
//
// time is RFC 3339 with nanoseconds, in UTC; seq counts from 1 without gaps;
// kind is one of nodelist, quorum, disconnected, reconnected, error; state is
// quorate, inquorate or unknown (quorate is false both when the partition is
// inquorate and when the state is unknown: state tells them apart); the ring
// id's numbers are plain JSON numbers (decimal); the arrays are never null. A
// last key "error" (a string) is present only on events that carry an
// error. An error that ends quorumwatch outside the stream (corosync not
// running, say) is printed as such an object too, of kind "error" and seq 0.
package main
