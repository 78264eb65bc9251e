#!/bin/sh
# idle.sh: context switches of idle quorum subscribers, the C API's and this
# module's, side by side in the same run against the same corosync.
#
#   sudo bench/idle.sh [SECONDS]      (default 10)
#
# Each client subscribes with CURRENT|CHANGES and then waits for events that
# never come (nothing changes in a 1-node cluster). Once every client has
# printed its snapshot and 2 more seconds have passed (IDLE_SETTLE), the
# script sums voluntary_ctxt_switches + nonvoluntary_ctxt_switches over all of each
# process's threads (/proc/PID/task/*/status), twice, SECONDS apart, and
# prints the difference. All clients are measured over the same window:
#   - C libquorum: bench/c/idle_watch.c, ppoll(2) on quorum_fd_get's fd
#   - Go quorum, libquorum backend (cgo) and native backend (pure Go)
#   - Go quorum, sim backend: no corosync involved, the engine alone
#   - control: the Go libquorum client plus a 100 ms time.Ticker, to show
#     that the measurement does count wake-ups when there are some.
# A thread that exits inside the window takes its counts with it, so the
# script also reports when a process's set of threads changed. After the
# window it stops corosync and checks that every client of it notices (a
# client stuck somewhere would also count 0). It then starts corosync again
# and, once the Go clients have reconnected and printed a new snapshot,
# measures them over a second window: the engine's one timer, its
# reconnection backoff, must be gone. Last, every client left must exit 0 on
# SIGTERM. It exits 1 if any check fails.
#
# Needs root, corosync, libquorum-dev, libcorosync-common-dev, pkg-config, a C
# compiler and Go. It starts corosync in a network namespace of its own
# (qidle-PID) on loopback only, and removes it and every client on exit.
# Extra environment (GODEBUG, GOMAXPROCS, ...) reaches the Go clients as is;
# IDLE_THREADS=1 also lists the switches of each thread that had any, and
# IDLE_SETTLE=N waits N seconds instead of 2 between the snapshots and the
# window (the Go runtime's sysmon thread wakes once a minute after start, so
# IDLE_SETTLE=55 puts that wake-up inside a 10 s window).
set -eu

secs=${1:-10}
case $secs in
'' | *[!0-9]* | 0)
	echo "usage: idle.sh [SECONDS]  (a whole number of seconds, at least 1)" >&2
	exit 2
	;;
esac
settle=${IDLE_SETTLE:-2}
case $settle in
'' | *[!0-9]*)
	echo "idle.sh: IDLE_SETTLE=$settle: want a whole number of seconds" >&2
	exit 2
	;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
ns=qidle-$$
work=$(mktemp -d /tmp/qidle-XXXXXX)
cpid=
clients=

spid=

# pause N: sleeps in the background, because the shell runs a trap only
# once the foreground command ends, and wait returns at once on a signal.
pause() {
	sleep "$1" &
	spid=$!
	wait "$spid"
	spid=
}

cleanup() {
	if [ -n "$spid" ]; then
		kill "$spid" 2>/dev/null || true
	fi
	for p in $clients; do
		kill "$p" 2>/dev/null || true
	done
	for p in $clients; do
		wait "$p" 2>/dev/null || true
	done
	if [ -n "$cpid" ]; then
		kill "$cpid" 2>/dev/null || true
		wait "$cpid" 2>/dev/null || true
	fi
	ip netns delete "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

onenode_conf "$work/corosync.conf" "$work/state" qidle native

echo "building..."
cc -O2 -Wall -o "$work/idle_watch" "$root/bench/c/idle_watch.c" \
	$(pkg-config --cflags --libs libquorum)
(cd "$root" && CGO_ENABLED=1 go build -tags libquorum -o "$work/idle" ./bench/idle)

ip netns add "$ns"
ip -n "$ns" link set lo up
# start_corosync: starts the node (again) and waits until it answers.
start_corosync() {
	corosync_up "$ns" "$work/corosync.conf" "$work/corosync.log"
	cpid=$corosync_pid
}
start_corosync

# alive PID: whether PID runs. kill -0 cannot tell, as it succeeds on a
# zombie that the shell has not reaped yet.
alive() {
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st%% *}" != Z ]
}

# start NAME LABEL CMD...: runs CMD in the background with its output in
# $work/NAME.out and .err. ip netns exec execs CMD, so $! is CMD's own pid.
start() {
	name=$1 label=$2
	shift 2
	"$@" >"$work/$name.out" 2>"$work/$name.err" &
	eval "pid_$name=$!"
	eval "label_$name=\$label"
	clients="$clients $!"
	names="${names:-} $name"
}

start c "C libquorum idle" ip netns exec "$ns" "$work/idle_watch"
start golq "Go quorum (libquorum backend) idle" ip netns exec "$ns" "$work/idle" -backend libquorum
start gonat "Go quorum (native backend) idle" ip netns exec "$ns" "$work/idle" -backend native
start gosim "Go quorum (sim backend, no corosync) idle" "$work/idle" -backend sim
start ctl "control, Go quorum (libquorum backend) + 100ms ticker" \
	ip netns exec "$ns" "$work/idle" -backend libquorum -control-ticker 100ms

# wait_lines N NAMES...: waits until each client has printed N lines.
wait_lines() {
	want=$1
	shift
	for n in "$@"; do
		eval "p=\$pid_$n"
		tries=0
		while [ "$(wc -l <"$work/$n.out")" -lt "$want" ]; do
			tries=$((tries + 1))
			if ! alive "$p" || [ "$tries" -gt 150 ]; then
				echo "client $n did not print $want lines:" >&2
				cat "$work/$n.out" "$work/$n.err" >&2
				exit 1
			fi
			sleep 0.1
		done
	done
}

# sample PID FILE: prints "SWITCHES THREADS TIDS", summed over the threads
# alive now, and writes "TID SWITCHES" per thread to FILE. A thread may exit
# between the glob and the read: its file is then skipped.
sample() {
	for t in /proc/"$1"/task/*; do
		s=$(cat "$t/status" 2>/dev/null) || continue
		printf '%s\n%s\n' "tid ${t##*/}" "$s"
	done | awk -v out="$2" '
		$1 == "tid" { n++; tid = $2; tids = tids "," tid; per[tid] = 0 }
		$1 == "voluntary_ctxt_switches:" || $1 == "nonvoluntary_ctxt_switches:" { sum += $2; per[tid] += $2 }
		END {
			for (t in per) printf "%s %d\n", t, per[t] > out
			printf "%d %d %s\n", sum, n, substr(tids, 2)
		}'
}

# measure SUFFIX LINES NAMES...: counts the clients' switches over one
# window of $secs seconds and prints a line for each, its label followed by
# SUFFIX. A client that printed more than LINES lines got events meanwhile.
measure() {
	suffix=$1 lines=$2
	shift 2
	for n in "$@"; do
		eval "p=\$pid_$n"
		eval "s0_$n=\$(sample $p $work/$n.t0)"
	done
	t0=$(date +%s.%N)
	pause "$secs"
	for n in "$@"; do
		eval "p=\$pid_$n"
		eval "s1_$n=\$(sample $p $work/$n.t1)"
	done
	took=$(echo "$t0 $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
	for n in "$@"; do
		eval "p=\$pid_$n label=\$label_$n s0=\$s0_$n s1=\$s1_$n"
		label=$label$suffix
		if ! alive "$p"; then
			echo "$label: exited during the measurement:" >&2
			cat "$work/$n.err" >&2
			status=1
			continue
		fi
		set -- $s0
		c0=$1 th0=$2 tids0=$3
		set -- $s1
		c1=$1 th1=$2 tids1=$3
		note=
		if [ "$tids0" != "$tids1" ]; then
			note=" [threads changed: $th0 at start, $th1 at end]"
		fi
		echo "$label: $((c1 - c0)) context switches in $took s ($th1 threads)$note"
		# IDLE_THREADS=1 shows which threads woke (thread ids in creation
		# order: in a Go process, #2 is usually the runtime's sysmon).
		if [ "${IDLE_THREADS:-0}" = 1 ]; then
			sort -n "$work/$n.t1" | awk 'NR == FNR { before[$1] = $2; next }
				{ i++ }
				$2 != before[$1] { printf "    thread %s (#%d by tid): %d\n", $1, i, $2 - before[$1] }' \
				"$work/$n.t0" -
		fi
		if [ "$(wc -l <"$work/$n.out")" -ne "$lines" ]; then
			echo "  (it received events meanwhile:)"
			sed 's/^/    /' "$work/$n.out"
		fi
	done
}

status=0
echo "corosync $(corosync -v | head -1 | sed 's/.*version //'), $(nproc) CPUs, go $(go env GOVERSION)"
wait_lines 2 $names
pause "$settle"
measure "" 2 $names

# A client that counted 0 because it was stuck rather than waiting would
# prove nothing: stop corosync and expect every client of it to notice within
# 5 s, the C one by exiting 1 (quorum_dispatch fails), the Go ones with a
# disconnected event.
ts=$(date +%s.%N)
kill "$cpid" 2>/dev/null || true
wait "$cpid" 2>/dev/null || true
cpid=
noticed=0
for n in c golq gonat ctl; do
	eval "p=\$pid_$n label=\$label_$n"
	tries=0
	until if [ "$n" = c ]; then ! alive "$p"; else grep -q '^#3 disconnected' "$work/$n.out"; fi; do
		tries=$((tries + 1))
		if [ "$tries" -gt 50 ]; then
			echo "$label: did not notice within 5 s that corosync stopped" >&2
			status=1
			continue 2
		fi
		sleep 0.1
	done
	if [ "$n" = c ]; then
		rc=0
		wait "$p" || rc=$?
		clients=$(echo " $clients " | sed "s/ $p / /")
		if [ "$rc" -ne 1 ]; then
			echo "$label: exit status $rc after corosync stopped, want 1:" >&2
			cat "$work/$n.err" >&2
			status=1
			continue
		fi
	fi
	noticed=$((noticed + 1))
done
took=$(echo "$ts $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
if [ "$noticed" -eq 4 ]; then
	echo "then corosync stopped: all 4 of its clients noticed within $took s of its SIGTERM"
else
	echo "then corosync stopped: only $noticed of its 4 clients noticed"
fi
names=${names# c}

# The engine's only timer is its reconnection backoff: once reconnected, the
# Go clients must be as idle as before. Each prints disconnected (#3),
# reconnected (#4) and a new snapshot (#5, #6).
if [ "$status" -eq 0 ]; then
	start_corosync
	wait_lines 6 golq gonat ctl
	pause "$settle"
	measure " after reconnecting" 6 golq gonat ctl
fi

# Every client still running must stop cleanly on SIGTERM, within 5 s.
for n in $names; do
	eval "p=\$pid_$n label=\$label_$n"
	kill -TERM "$p" 2>/dev/null || true
	tries=0
	while alive "$p"; do
		tries=$((tries + 1))
		if [ "$tries" -gt 50 ]; then
			echo "$label: still running 5 s after SIGTERM: killed" >&2
			kill -KILL "$p" 2>/dev/null || true
			status=1
			break
		fi
		sleep 0.1
	done
	rc=0
	wait "$p" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "$label: exit status $rc after SIGTERM, want 0:" >&2
		cat "$work/$n.err" >&2
		status=1
	fi
done
clients=
exit $status
