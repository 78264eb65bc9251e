#!/bin/sh
# scrape.sh: what a Prometheus scrape of quorumwatch serve costs, beside
# what ha_cluster_exporter does at each scrape (start corosync-quorumtool -p
# and parse it), under the same concurrent load in the same run, on node 1
# of a real 3-node corosync cluster; quorumwatch's resident memory; and the
# context switches of an idle quorumwatch serve between scrapes (with
# --corosync.refresh-interval 0, and a control with 1s).
#
#   sudo bench/scrape.sh [-scrapers 50] [-duration 10s] [-idle 10s] [-settle 2s] [-nodes 3]
#
# It builds quorumwatch (the default build: the pure-Go backend; set
# SCRAPE_TAGS=libquorum for the cgo one) and bench/scrape, which starts the
# cluster (internal/testcluster), the servers in node 1's network
# namespace, and the scrapers; see bench/scrape/main.go for the method.
# Everything runs on this machine's loopback and the cluster's own
# namespaces, and is removed on exit. Needs root, corosync and Go.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/qscrape-XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "building..."
(cd "$root" && go build -tags "${SCRAPE_TAGS:-}" -o "$work/quorumwatch" ./cmd/quorumwatch &&
	go build -o "$work/scrape" ./bench/scrape)
"$work/scrape" -quorumwatch "$work/quorumwatch" "$@"
