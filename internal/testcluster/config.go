//go:build linux

package testcluster

import (
	"fmt"
	"strings"
	"time"
)

// Option changes how Start configures the cluster.
type Option func(*config)

type config struct {
	votes        map[int]uint32
	expected     uint32
	twoNode      bool
	socketIPC    bool
	extra        []string
	nodeExtra    map[int][]string
	waitTimeout  time.Duration
	noWaitJoined bool
	owner        int // pid named in the prefix; 0 means this process

	// See votequorum_config.go and qdevice.go.
	waitForAll     bool
	lms            bool
	lmsWindow      time.Duration
	atb            bool
	atbNode        string
	allowDownscale bool
	noProvider     bool
	names          map[int]string // nodelist names set by NodeName; "" leaves the key out
	ipv6           bool
	qdevice        *QdeviceOptions
	errs           []error // bad option arguments, reported by New
}

// newConfig applies opts to the defaults.
func newConfig(opts []Option) config {
	cfg := config{votes: map[int]uint32{}, nodeExtra: map[int][]string{}, waitTimeout: DefaultWaitTimeout}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return cfg
}

// Votes sets node i's quorum_votes (default 1).
func Votes(i int, v uint32) Option {
	return func(c *config) { c.votes[i] = v }
}

// ExpectedVotes sets quorum.expected_votes for every node.
func ExpectedVotes(v uint32) Option {
	return func(c *config) { c.expected = v }
}

// TwoNode sets quorum.two_node: 1 (which implies wait_for_all in corosync).
func TwoNode() Option {
	return func(c *config) { c.twoNode = true }
}

// SocketIPC makes every node serve its IPC over sockets instead of shared
// memory (system.qb_ipc_type: socket).
func SocketIPC() Option {
	return func(c *config) { c.socketIPC = true }
}

// ExtraConfig appends lines verbatim to every node's corosync.conf. corosync
// merges a repeated section into the first one.
func ExtraConfig(lines ...string) Option {
	return func(c *config) { c.extra = append(c.extra, lines...) }
}

// NodeExtraConfig appends lines verbatim to node i's corosync.conf only.
func NodeExtraConfig(i int, lines ...string) Option {
	return func(c *config) { c.nodeExtra[i] = append(c.nodeExtra[i], lines...) }
}

// WaitTimeout bounds each wait of the harness that has no deadline of its
// own (cluster formation, node start, WaitMembers without a deadline).
// Default DefaultWaitTimeout.
func WaitTimeout(d time.Duration) Option {
	return func(c *config) { c.waitTimeout = d }
}

// NoWaitFormed makes Start return once every node's corosync answers IPC,
// without waiting for all nodes to see each other (for configurations that
// never form a full membership).
func NoWaitFormed() Option {
	return func(c *config) { c.noWaitJoined = true }
}

// configText renders node nd's corosync.conf for the install's version.
// corosync 2.x has no knet (udpu instead), no system section (its state
// directory comes from COROSYNC_RUN_DIR, see startNode) and takes the IPC
// type from qb.ipc_type, which 2.99.4 moved to system.qb_ipc_type.
func (c *Cluster) configText(nd *node) string {
	v2 := !c.inst.Version.AtLeast(3, 0, 0)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("totem {")
	w("\tversion: 2")
	w("\tcluster_name: %s", c.prefix)
	if v2 {
		w("\ttransport: udpu")
	} else {
		w("\ttransport: knet")
	}
	if c.cfg.ipv6 {
		w("\tip_version: ipv6")
	}
	w("\ttoken: 1000")
	w("\tcrypto_cipher: none")
	w("\tcrypto_hash: none")
	w("}")
	w("nodelist {")
	for _, o := range c.nodes {
		w("\tnode {")
		if name := c.nodeName(o.id); name != "" {
			w("\t\tname: %s", name)
		}
		w("\t\tnodeid: %d", o.id)
		if v, ok := c.cfg.votes[o.id]; ok {
			w("\t\tquorum_votes: %d", v)
		}
		w("\t\tring0_addr: %s", o.addr)
		w("\t}")
	}
	w("}")
	c.writeQuorum(w)
	w("logging {")
	w("\tto_stderr: yes")
	w("\tto_logfile: no")
	w("\tto_syslog: no")
	w("\ttimestamp: on")
	// The blackbox is a pair of /dev/shm files per process that a SIGKILL
	// leaves behind.
	w("\tblackbox: off")
	w("}")
	if v2 {
		if c.cfg.socketIPC {
			w("qb {")
			w("\tipc_type: socket")
			w("}")
		}
	} else {
		w("system {")
		w("\tstate_dir: %s", nd.stateDir())
		if c.cfg.socketIPC {
			w("\tqb_ipc_type: socket")
		}
		w("}")
	}
	for _, l := range c.cfg.extra {
		w("%s", l)
	}
	for _, l := range c.cfg.nodeExtra[nd.id] {
		w("%s", l)
	}
	return b.String()
}
