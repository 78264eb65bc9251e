#!/bin/sh
# quorate.sh: quorum_getquorate round trips per second, from C through
# libquorum and from Go through internal/libquorum, against the same
# single-node corosync in the same run.
#
#   sudo bench/quorate.sh [SECONDS]      (default 5 s per measurement)
#
# Needs root, corosync, libquorum-dev, libcorosync-common-dev, pkg-config, a C
# compiler and Go. It starts corosync in a network namespace of its own
# (h2-bench-PID) on loopback only, and removes it on exit.
set -eu

secs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
ns=h2-bench-$$
work=$(mktemp -d /tmp/h2-bench-XXXXXX)
pid=

cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	ip netns delete "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

mkdir -p "$work/state"
cat >"$work/corosync.conf" <<CONF
totem {
  version: 2
  cluster_name: h2bench
  transport: knet
  token: 1000
  crypto_cipher: none
  crypto_hash: none
}
nodelist {
  node {
    name: n1
    nodeid: 1
    ring0_addr: 127.0.0.1
  }
}
quorum {
  provider: corosync_votequorum
}
logging {
  to_stderr: yes
  to_logfile: no
  to_syslog: no
}
system {
  state_dir: $work/state
}
CONF

echo "building..."
cc -O2 -Wall -o "$work/getquorate_loop" "$root/bench/c/getquorate_loop.c" \
	$(pkg-config --cflags --libs libquorum)
(cd "$root" && CGO_ENABLED=1 go test -c -tags libquorum -o "$work/libquorum.test" ./internal/libquorum)

ip netns add "$ns"
ip -n "$ns" link set lo up
# A private /run (ip netns exec already gives a private mount namespace) keeps
# corosync's pid-file lock apart from any other corosync on the machine.
ip netns exec "$ns" sh -c "mount -t tmpfs tmpfs /run && exec corosync -f -c $work/corosync.conf" \
	>"$work/corosync.log" 2>&1 &
pid=$!

tries=0
until ip netns exec "$ns" corosync-quorumtool -s >/dev/null 2>&1; do
	tries=$((tries + 1))
	if [ "$tries" -gt 100 ]; then
		echo "corosync did not come up:" >&2
		cat "$work/corosync.log" >&2
		exit 1
	fi
	sleep 0.2
done

echo "corosync $(corosync -v | head -1 | sed 's/.*version //'), $(nproc) CPUs, $secs s each"
ip netns exec "$ns" "$work/getquorate_loop" -d "$secs"
ip netns exec "$ns" "$work/libquorum.test" -test.run '^$' \
	-test.bench '^BenchmarkQuorateLibquorum$' -test.benchtime "${secs}s" -test.cpu "${GOBENCH_CPU:-1,2}" |
	awk '/^Benchmark/ { for (i = 1; i < NF; i++) if ($(i+1) == "roundtrips/s") printf "go %s: %s round trips/s\n", $1, $i }'
ip netns exec "$ns" "$work/getquorate_loop" -d "$secs"
