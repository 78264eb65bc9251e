#!/bin/sh
# engine.sh: the event engine's own costs, with the simulated cluster and an
# in-memory backend (no corosync needed): per-event time and allocations for
# one subscriber, one change delivered to 10,000 subscribers of one Client,
# and heap bytes per idle subscriber. Each benchmark runs COUNT times
# (default 5) so that the spread on a shared machine is visible.
#
#   bench/engine.sh [COUNT]
set -eu
count=${1:-5}
cd "$(dirname "$0")/.."
echo "$(go version), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
go test -run '^$' -bench 'Event|Fanout|IdleSubscriber' -benchmem -count "$count" .
