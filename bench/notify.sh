#!/bin/sh
# notify.sh: how long after a C program each Go backend delivers a corosync
# quorum notification on its channel, on a real cluster, all clients
# subscribed to the same node at the same time.
#
#   sudo bench/notify.sh [notifydelay flags]
#       e.g. -changes 20 -method cut -nodes 3 -v
#
# It builds bench/c/notify_watch.c (poll(2) + quorum_dispatch, stamping
# CLOCK_REALTIME in each callback) and bench/notifydelay (quorum.Subscribe
# per backend, stamping time.Now() as each event leaves the channel), then
# runs notifydelay -run: a 3-node corosync cluster (internal/testcluster,
# namespaces qtc-PID-...), two C watchers and a Go watcher per backend in
# node 1, and 10 membership changes by default (the last node killed and
# restarted). It prints, per watcher, the median, min and max delay of each
# event after the first C watcher's callback for the same event; the second
# C watcher shows what the order in which corosync serves its connections
# alone adds.
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
