#!/bin/sh
# quorate.sh: quorum_getquorate round trips per second, from C through
# libquorum and from Go through both real backends (libquorum via cgo, and
# the pure-Go client of libqb's IPC), against the same single-node corosync
# in the same run; once over shared memory (corosync's default) and once
# over sockets (system { qb_ipc_type: socket }).
#
#   sudo bench/quorate.sh [SECONDS]      (default 5 s per measurement)
#
# For each IPC type it prints, in this order:
#   c                       bench/c/getquorate_loop.c
#   go libquorum.Conn       internal/libquorum BenchmarkQuorateLibquorum
#   go native.Conn          internal/native BenchmarkQuorateNative
#   go Client/<backend>     root package BenchmarkClientQuorate: quorum.Open
#                           and (*Client).Quorate, the public path
#   c                       again, to show how much the machine drifted
# and then snapshot rounds, the whole path of a notification inside a client
# with no cluster noise: per round, quorum_trackstart(CS_TRACK_CURRENT)
# queues a nodelist and a quorum notification, then poll(2) on the quorum
# descriptor and dispatch until both arrived:
#   c snapshot              bench/c/snapshot_loop.c
#   go libquorum.Conn       internal/libquorum BenchmarkSnapshotLibquorum
#   c snapshot              again
# with rounds per second, the time spent dispatching per round (in
# quorum_dispatch for C, in Conn.Dispatch for Go), and CPU time per round.
# Each Go line is one sub-benchmark: "background" passes a context without
# a Done channel, "deadline" one with a deadline; "-N" is GOMAXPROCS. The
# last column is the client's CPU time (user and system, all threads) per
# round trip, in ns: the pure-Go client spins briefly for its response where
# libqb sleeps in a futex, and this shows what that costs.
#
# Needs root, corosync, libquorum-dev, libcorosync-common-dev, pkg-config, a C
# compiler and Go. It starts corosync in a network namespace of its own
# (h2-bench-PID, then h2-bench-PID-socket) on loopback only, and removes it on
# exit. GOBENCH_CPU sets the GOMAXPROCS values to run (default 1,2);
# QUORATE_MODES the IPC types (default "shm socket").
set -eu

secs=${1:-5}
case $secs in
'' | *[!0-9]* | 0)
	echo "usage: quorate.sh [SECONDS]  (a whole number of seconds, at least 1)" >&2
	exit 2
	;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
base=h2-bench-$$
work=$(mktemp -d /tmp/h2-bench-XXXXXX)
ns=
pid=

stop_corosync() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=
	fi
	if [ -n "$ns" ]; then
		ip netns delete "$ns" 2>/dev/null || true
		ns=
	fi
}

cleanup() {
	stop_corosync
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_corosync NS IPCTYPE: corosync in a fresh namespace, waited for.
start_corosync() {
	ns=$1
	onenode_conf "$work/corosync-$2.conf" "$work/state-$2" h2bench "$2"
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	corosync_up "$ns" "$work/corosync-$2.conf" "$work/corosync-$ns.log"
	pid=$corosync_pid
}

# gobench LABEL BINARY PATTERN: runs Go benchmarks in the namespace and
# prints their roundtrips/s and cpu-ns/op.
gobench() {
	ip netns exec "$ns" "$2" -test.run '^$' -test.bench "$3" -test.benchtime "${secs}s" \
		-test.cpu "${GOBENCH_CPU:-1,2}" |
		awk -v label="$1" '/^Benchmark/ {
			rate = ""; cpu = ""
			for (i = 1; i < NF; i++) {
				if ($(i+1) == "roundtrips/s") rate = $i
				if ($(i+1) == "cpu-ns/op") cpu = $i
			}
			if (rate == "") next
			name = $1; sub(/^Benchmark[A-Za-z]*\//, "", name)
			printf "  go %-16s %-34s %8.0f/s %7s\n", label, name, rate, (cpu == "" ? "-" : sprintf("%.0f", cpu))
		}'
}

# csnap: the C snapshot loop, with its CPU time as in cloop.
csnap() {
	ip netns exec "$ns" sh -c '"$0" -d "$1" && times' "$work/snapshot_loop" "$secs" |
		awk 'function sec(s) { sub(/s$/, "", s); split(s, p, "m"); return p[1] * 60 + p[2] }
			/^c snapshot/ { n = $3; rate = $8; sub(/\/s,$/, "", rate); disp = $10 }
			/^[0-9]+m[0-9.]+s / { if (++t == 2) cpu = sec($1) + sec($2) }
			END { printf "  c  %-51s %8.0f/s %7.0f %7.0f\n", "snapshot_loop", rate, disp, (n > 0 ? cpu * 1e9 / n : 0) }'
}

# gosnap LABEL BINARY PATTERN: the Go snapshot benchmark, printed as csnap.
gosnap() {
	ip netns exec "$ns" "$2" -test.run '^$' -test.bench "$3" -test.benchtime "${secs}s" \
		-test.cpu "${GOBENCH_CPU:-1,2}" |
		awk -v label="$1" '/^Benchmark/ {
			rate = ""; cpu = ""; disp = ""
			for (i = 1; i < NF; i++) {
				if ($(i+1) == "rounds/s") rate = $i
				if ($(i+1) == "cpu-ns/op") cpu = $i
				if ($(i+1) == "dispatch-ns/op") disp = $i
			}
			if (rate == "") next
			name = $1; sub(/^Benchmark/, "", name)
			printf "  go %-16s %-34s %8.0f/s %7.0f %7.0f\n", label, name, rate, disp, cpu
		}'
}

# cloop: the C loop, with its CPU time from the shell's times builtin (the
# second line is the children's user and system time, in 10 ms ticks).
cloop() {
	ip netns exec "$ns" sh -c '"$0" -d "$1" && times' "$work/getquorate_loop" "$secs" |
		awk 'function sec(s) { sub(/s$/, "", s); split(s, p, "m"); return p[1] * 60 + p[2] }
			/^c getquorate/ { n = $3; rate = $NF; sub(/\/s$/, "", rate) }
			/^[0-9]+m[0-9.]+s / { if (++t == 2) cpu = sec($1) + sec($2) }
			END { printf "  c  %-51s %8.0f/s %7.0f\n", "getquorate_loop", rate, (n > 0 ? cpu * 1e9 / n : 0) }'
}

echo "building..."
cc -O2 -Wall -o "$work/getquorate_loop" "$root/bench/c/getquorate_loop.c" \
	$(pkg-config --cflags --libs libquorum)
cc -O2 -Wall -o "$work/snapshot_loop" "$root/bench/c/snapshot_loop.c" \
	$(pkg-config --cflags --libs libquorum)
(
	cd "$root"
	CGO_ENABLED=1 go test -c -tags libquorum -o "$work/libquorum.test" ./internal/libquorum
	go test -c -o "$work/native.test" ./internal/native
	CGO_ENABLED=1 go test -c -tags libquorum -o "$work/quorum.test" .
)

echo "corosync $(corosync -v | head -1 | sed 's/.*version //'), $(nproc) CPUs, $secs s each, GOMAXPROCS ${GOBENCH_CPU:-1,2}"
echo "columns: round trips per second, then the client process's CPU time per round trip in ns"
for mode in ${QUORATE_MODES:-shm socket}; do
	case $mode in
	shm) ipc=native suffix= ;;
	socket) ipc=socket suffix=-socket ;;
	*)
		echo "quorate.sh: unknown mode $mode in QUORATE_MODES" >&2
		exit 2
		;;
	esac
	start_corosync "$base$suffix" "$ipc"
	echo "$mode:"
	cloop
	gobench libquorum.Conn "$work/libquorum.test" '^BenchmarkQuorateLibquorum$'
	gobench native.Conn "$work/native.test" '^BenchmarkQuorateNative$'
	gobench Client "$work/quorum.test" '^BenchmarkClientQuorate$'
	cloop
	echo "  snapshot rounds; columns: rounds per second, ns dispatching per round, CPU ns per round"
	csnap
	gosnap libquorum.Conn "$work/libquorum.test" '^BenchmarkSnapshotLibquorum$'
	csnap
	stop_corosync
done
