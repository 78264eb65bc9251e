//go:build linux

package testcluster

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// WaitForAll sets quorum.wait_for_all: 1: after a cold start the cluster is
// quorate only once all nodes have been seen together.
func WaitForAll() Option {
	return func(c *config) { c.waitForAll = true }
}

// LastManStanding sets quorum.last_man_standing: 1, and
// last_man_standing_window to window (rounded down to milliseconds) when it
// is not 0; corosync's default window is 10 s. corosync refuses it together
// with a quorum device.
func LastManStanding(window time.Duration) Option {
	return func(c *config) {
		if window < 0 {
			c.errs = append(c.errs, fmt.Errorf("LastManStanding: negative window %v", window))
			return
		}
		if window > 0 && window < time.Millisecond {
			c.errs = append(c.errs, fmt.Errorf("LastManStanding: window %v is under a millisecond", window))
			return
		}
		c.lms, c.lmsWindow = true, window
	}
}

// AutoTieBreaker sets quorum.auto_tie_breaker: 1 and, unless mode is "",
// auto_tie_breaker_node: mode, which is "lowest" (corosync's default),
// "highest", or a list of node ids separated by spaces (the first of them
// still present wins the tie). corosync refuses it together with a quorum
// device.
func AutoTieBreaker(mode string) Option {
	return func(c *config) {
		if err := checkTieBreaker(mode, true); err != nil {
			c.errs = append(c.errs, fmt.Errorf("AutoTieBreaker: %w", err))
			return
		}
		c.atb, c.atbNode = true, strings.Join(strings.Fields(mode), " ")
	}
}

// checkTieBreaker accepts "lowest", "highest" and node ids: a list of them
// when list is set, one otherwise; "" is accepted (the default).
func checkTieBreaker(mode string, list bool) error {
	switch mode {
	case "", "lowest", "highest":
		return nil
	}
	ids := strings.Fields(mode)
	if len(ids) > 1 && !list {
		return fmt.Errorf("%q: want lowest, highest or one node id", mode)
	}
	for _, id := range ids {
		if v, err := strconv.ParseUint(id, 10, 32); err != nil || v == 0 {
			return fmt.Errorf("%q: want lowest, highest or node ids (1 and up)", mode)
		}
	}
	return nil
}

// AllowDownscale sets quorum.allow_downscale: 1: expected votes go down
// when nodes leave cleanly (corosync-cfgtool -H). corosync refuses it
// together with a quorum device.
func AllowDownscale() Option {
	return func(c *config) { c.allowDownscale = true }
}

// NodeName sets node i's nodelist name (the name key; default node<i>).
// An empty name leaves the key out: corosync-quorumtool 3.x then names the
// node by its first address, resolved. corosync-quorumtool 2.x never shows
// the name key: it prints the ring0_addr.
func NodeName(i int, name string) Option {
	return func(c *config) {
		if err := checkName(name); err != nil {
			c.errs = append(c.errs, fmt.Errorf("NodeName(%d): %w", i, err))
			return
		}
		if c.names == nil {
			c.names = map[int]string{}
		}
		c.names[i] = name
	}
}

// checkName refuses what corosync's config parser would read differently
// from what was written.
func checkName(name string) error {
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune("{}#", r) {
			return fmt.Errorf("name %q: no spaces, control characters, braces or #", name)
		}
	}
	return nil
}

// NoQuorumProvider leaves quorum.provider out: corosync runs without
// votequorum (QUORUM_FREE) and every partition is quorate. corosync-quorumtool
// -s then fails ("Unable to start votequorum status tracking:
// CS_ERR_BAD_HANDLE", 2.4.6 to main), and -l prints an empty table: the
// harness waits on cmap's runtime members instead.
func NoQuorumProvider() Option {
	return func(c *config) { c.noProvider = true }
}

// IPv6 gives the nodes (and the quorum device server) IPv6 addresses,
// Subnet6 followed by the index in hexadecimal, instead of IPv4 ones, and
// sets totem.ip_version: ipv6.
func IPv6() Option {
	return func(c *config) { c.ipv6 = true }
}

// Subnet6 is the IPv6 /64 prefix of the IPv6 option; node i has address
// Subnet6 + hex(i), e.g. fd00:213::a for node 10.
const Subnet6 = "fd00:213::"

// qnetdIndex is the host part of the quorum device server's address
// (10.213.0.254, fd00:213::fe), outside the nodes' 1..MaxNodes.
const qnetdIndex = 254

// hostAddr returns the address of host index i in the cluster's subnet.
func (cfg *config) hostAddr(i int) string {
	if cfg.ipv6 {
		return fmt.Sprintf("%s%x", Subnet6, i)
	}
	return fmt.Sprintf("%s.%d", Subnet, i)
}

// prefixLen is the length of the subnet's prefix.
func (cfg *config) prefixLen() string {
	if cfg.ipv6 {
		return "64"
	}
	return "24"
}

// check reports bad option arguments and options for nodes the cluster of
// n nodes does not have.
func (cfg *config) check(n int) error {
	errs := append([]error(nil), cfg.errs...)
	for i := range cfg.votes {
		if i < 1 || i > n {
			errs = append(errs, fmt.Errorf("Votes for node %d of %d", i, n))
		}
	}
	for i := range cfg.nodeExtra {
		if i < 1 || i > n {
			errs = append(errs, fmt.Errorf("NodeExtraConfig for node %d of %d", i, n))
		}
	}
	for i := range cfg.names {
		if i < 1 || i > n {
			errs = append(errs, fmt.Errorf("NodeName for node %d of %d", i, n))
		}
	}
	if q := cfg.qdevice; q != nil {
		if err := q.check(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testcluster: %w", err)
	}
	return nil
}

// nodeName returns node id's nodelist name as configured at the start.
func (c *Cluster) nodeName(id int) string {
	if name, ok := c.cfg.names[id]; ok {
		return name
	}
	return fmt.Sprintf("node%d", id)
}

// writeQuorum renders the quorum section, left out when empty.
func (c *Cluster) writeQuorum(w func(format string, args ...any)) {
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	if !c.cfg.noProvider {
		add("\tprovider: corosync_votequorum")
	}
	if c.cfg.expected > 0 {
		add("\texpected_votes: %d", c.cfg.expected)
	}
	if c.cfg.twoNode {
		add("\ttwo_node: 1")
	}
	if c.cfg.waitForAll {
		add("\twait_for_all: 1")
	}
	if c.cfg.lms {
		add("\tlast_man_standing: 1")
		if c.cfg.lmsWindow > 0 {
			add("\tlast_man_standing_window: %d", c.cfg.lmsWindow.Milliseconds())
		}
	}
	if c.cfg.atb {
		add("\tauto_tie_breaker: 1")
		if c.cfg.atbNode != "" {
			add("\tauto_tie_breaker_node: %s", c.cfg.atbNode)
		}
	}
	if c.cfg.allowDownscale {
		add("\tallow_downscale: 1")
	}
	if q := c.cfg.qdevice; q != nil {
		lines = append(lines, q.deviceSection(c.cfg.hostAddr(qnetdIndex))...)
	}
	if len(lines) == 0 {
		return
	}
	w("quorum {")
	for _, l := range lines {
		w("%s", l)
	}
	w("}")
}
