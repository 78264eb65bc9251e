#!/bin/sh
# notify.sh: how long after a C program each Go backend delivers a corosync
# quorum notification on its channel, on a real cluster, all clients
# subscribed to the same node at the same time.
#
#   sudo bench/notify.sh [notifydelay flags]
#       e.g. -nodes 5 -scenario faults -runs 5       (issue 11's comparison)
#            -changes 20 -method cut -nodes 3 -v
#            -watchers c-control,go-libquorum-raw,go-native-raw
#
# It builds bench/c/notify_watch.c (poll(2) + quorum_dispatch, stamping
# CLOCK_REALTIME in each callback) and bench/notifydelay (quorum.Subscribe
# per backend, stamping time.Now() as each event leaves the channel), then
# runs notifydelay -run: a cluster (internal/testcluster, namespaces
# qtc-PID-..., 3 nodes by default), the reference C watcher "c" and the
# -watchers (by default a second C watcher, c-control, and a Go watcher per
# backend) in node 1, started in a random order, and a scenario of
# membership changes: by default 10, the last node killed and restarted;
# with -scenario faults on 5 nodes, kills, a cut-off node and its return,
# a lost and regained quorum, restarts (8 changes, 16 notifications).
# -runs N repeats the scenario with fresh watchers. It prints, per run and
# per watcher, the median, min and max delay of each event after the c
# watcher's callback for the same event, over all events and per kind, and
# with several runs a summary (each run's median, their median, the max).
# The second C watcher shows what the order in which corosync serves its
# connections, and the machine's scheduling, alone add. The -raw watchers
# drive a backend's connection without the engine, as the C watcher drives
# libquorum (see bench/notifydelay).
#
# Needs root, corosync, libquorum-dev, libcorosync-common-dev, pkg-config, a C
# compiler, iproute2 and Go. Everything it starts is removed on exit.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/h2-notify-XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "building..."
cc -O2 -Wall -o "$work/notify_watch" "$root/bench/c/notify_watch.c" \
	$(pkg-config --cflags --libs libquorum)
(cd "$root" && CGO_ENABLED=1 go build -tags libquorum -o "$work/notifydelay" ./bench/notifydelay)
echo "corosync $(corosync -v | head -1 | sed 's/.*version //'), $(nproc) CPUs"
"$work/notifydelay" -run -cwatch "$work/notify_watch" "$@"
