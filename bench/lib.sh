# lib.sh: what the bench scripts share, sourced by them. A one-node corosync
# on loopback in a network namespace of the script's own, so that every
# client of a run measures against the same node.

# onenode_conf FILE STATEDIR NAME IPCTYPE: writes a one-node corosync.conf
# (knet on 127.0.0.1, votequorum, logs on stderr) with qb_ipc_type IPCTYPE
# (native, which is shared memory, or socket).
onenode_conf() {
	mkdir -p "$2"
	cat >"$1" <<CONF
totem {
  version: 2
  cluster_name: $3
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
  state_dir: $2
  qb_ipc_type: $4
}
CONF
}

# corosync_up NS CONF LOG: starts corosync in the existing namespace NS,
# its output appended to LOG, sets corosync_pid, and waits until it answers
# (exits 1 with the log when it does not within 20 s). A private /run (ip
# netns exec already gives a private mount namespace) keeps corosync's
# pid-file lock apart from any other corosync on the machine.
corosync_up() {
	ip netns exec "$1" sh -c "mount -t tmpfs tmpfs /run && exec corosync -f -c $2" >>"$3" 2>&1 &
	corosync_pid=$!
	tries=0
	until ip netns exec "$1" corosync-quorumtool -s >/dev/null 2>&1; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ]; then
			echo "corosync did not come up:" >&2
			cat "$3" >&2
			exit 1
		fi
		sleep 0.2
	done
}
