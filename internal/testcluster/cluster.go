//go:build linux

// Package testcluster runs a real N-node corosync cluster for tests, each
// node in a network namespace of its own, joined by a bridge that lives in one
// more namespace. Nothing is configured in the caller's network namespace.
//
// It needs root (network namespaces, mounts) and the corosync package; see
// Available. Start skips the test when either is missing, unless the
// environment variable QUORUM_REQUIRE_CLUSTER=1 is set, in which case it
// fails the test instead.
//
// Node i (1-based) has corosync node id i. Every method that addresses a node
// returns an error (it never panics) for an index outside 1..N.
//
// The harness polls corosync-quorumtool to wait for membership states. That
// polling is a test convenience only: it says nothing about how the SDK
// itself learns of changes.
package testcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a skip for a missing
// prerequisite into a test failure. CI sets it to "1".
const RequireEnv = "QUORUM_REQUIRE_CLUSTER"

// namePrefix starts every namespace and temporary directory this package
// creates; the creating process's pid follows it, so that leftovers of dead
// runs can be told from those of live ones.
const namePrefix = "qtc-"

// Subnet is the IPv4 /24 used inside every cluster's namespaces; node i has
// address Subnet.i. Each cluster has its own bridge namespace, so clusters
// reuse it without seeing each other.
const Subnet = "10.213.0"

// MaxNodes is the largest cluster Start builds (one /24, node ids 1..250).
const MaxNodes = 250

// Default timeouts. Token 1000 ms gives seconds-scale membership changes; the
// defaults leave a wide margin on a loaded two-core machine.
const (
	DefaultWaitTimeout = 45 * time.Second
	cmdTimeout         = 10 * time.Second
	killTimeout        = 10 * time.Second
)

// Cluster is a running test cluster. Its methods are safe for concurrent
// use. Close (which Start registers as a test cleanup) tears down
// everything it started.
type Cluster struct {
	tools   tools
	qdTools qdTools // with Qdevice only
	inst    Install
	cfg     config
	prefix  string // qtc-<pid>-<rand>
	dir     string // temporary directory holding every node's files
	brNS    string
	nodes   []*node // index 0 is node 1
	qnetd   *qnetd  // with Qdevice only

	spawn chan spawnReq

	mu     sync.Mutex
	closed bool
}

type node struct {
	id   int
	ns   string
	addr string
	dir  string // node's folder: corosync.conf, corosync.log, state/

	proc       *proc  // guarded by Cluster.mu
	name       string // nodelist name now (RenameNode); guarded by Cluster.mu
	qdev       *proc  // its corosync-qdevice; guarded by Cluster.mu
	qdevWanted bool   // Start(i) starts qdevice after corosync; guarded by Cluster.mu
}

// The node's files, all in its folder.
func (nd *node) stateDir() string { return filepath.Join(nd.dir, "state") }
func (nd *node) confPath() string { return filepath.Join(nd.dir, "corosync.conf") }
func (nd *node) logPath() string  { return filepath.Join(nd.dir, "corosync.log") }

// Start builds an n-node cluster with New and registers a t.Cleanup that
// closes it, logging the tail of every node's log first if the test failed.
// Missing prerequisites call t.Skip with Available's reason (or
// QdeviceAvailable's, with the Qdevice option), or t.Fatal when
// QUORUM_REQUIRE_CLUSTER=1; any other failure calls t.Fatal. Start must be
// called from the test's goroutine.
func Start(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	avail := Available
	if newConfig(opts).qdevice != nil {
		avail = QdeviceAvailable
	}
	if err := avail(); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%v (%s=1)", err, RequireEnv)
		}
		t.Skip(err)
	}
	c, err := New(context.Background(), n, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testcluster: logs of the cluster's nodes:\n%s", c.logTails(150))
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// New builds an n-node cluster outside of a test (a demo program, say):
// it removes leftovers of earlier runs whose process no longer exists,
// creates the namespaces, starts corosync on every node and waits until
// each node's view has all n members (or, with NoWaitFormed, until each
// answers IPC). ctx bounds the whole start; the wait timeout bounds it too.
// On failure everything created is removed and the error carries the log
// of the node that failed. The caller must Close the cluster.
func New(ctx context.Context, n int, opts ...Option) (*Cluster, error) {
	tl, inst, err := setup(os.Geteuid(), os.Getenv(PrefixEnv), exec.LookPath)
	if err != nil {
		return nil, err
	}
	if n < 1 || n > MaxNodes {
		return nil, fmt.Errorf("testcluster: %d nodes: want 1..%d", n, MaxNodes)
	}
	cfg := newConfig(opts)
	if err := cfg.check(n); err != nil {
		return nil, err
	}
	var qt qdTools
	if cfg.qdevice != nil {
		if qt, err = findQdeviceTools(exec.LookPath); err != nil {
			return nil, err
		}
	}
	if cfg.waitTimeout <= 0 {
		cfg.waitTimeout = DefaultWaitTimeout
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.waitTimeout)
	defer cancel()

	// A failed sweep must not stop this run: the leftovers belong to
	// someone else and do not collide with fresh names.
	_ = sweep(ctx, tl.ip)

	c := &Cluster{tools: tl, qdTools: qt, inst: inst, cfg: cfg, spawn: make(chan spawnReq)}
	go c.spawner()
	if err := c.boot(ctx, n); err != nil {
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return c, nil
}

// boot creates the cluster's resources and starts and waits for corosync.
func (c *Cluster) boot(ctx context.Context, n int) error {
	if err := c.create(ctx, n); err != nil {
		return fmt.Errorf("testcluster: %w", err)
	}
	for _, nd := range c.nodes {
		if err := c.startNode(nd); err != nil {
			return err
		}
	}
	for _, nd := range c.nodes {
		if err := c.waitReady(ctx, nd); err != nil {
			return fmt.Errorf("testcluster: %w", err)
		}
	}
	q := c.cfg.qdevice
	if q != nil {
		if err := c.startQnetdWait(ctx); err != nil {
			return err
		}
		if !q.NoStart {
			for _, nd := range c.nodes {
				if err := c.startQdeviceWait(ctx, nd.id); err != nil {
					return err
				}
			}
		}
	}
	if c.cfg.noWaitJoined {
		return nil
	}
	all := make([]uint32, n)
	for i := range all {
		all[i] = uint32(i + 1)
	}
	for _, nd := range c.nodes {
		if err := c.WaitMembers(ctx, nd.id, all); err != nil {
			return fmt.Errorf("testcluster: cluster did not form: %w", err)
		}
	}
	if q != nil && !q.NoStart {
		for _, nd := range c.nodes {
			if err := c.WaitStatus(ctx, nd.id, qdeviceVoting, "every member's qdevice alive and voting", "-p"); err != nil {
				return fmt.Errorf("testcluster: quorum device: %w", err)
			}
		}
	}
	return nil
}

// randomTag returns 6 hex digits.
func randomTag() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// create makes the temporary directory, namespaces, bridge and links, and
// writes every node's configuration.
func (c *Cluster) create(ctx context.Context, n int) error {
	// The directory is created exclusively, so the tag is unique among
	// this process's clusters without shared state; namespaces reuse it.
	for attempt := 0; ; attempt++ {
		tag, err := randomTag()
		if err != nil {
			return err
		}
		owner := c.cfg.owner
		if owner == 0 {
			owner = os.Getpid()
		}
		prefix := fmt.Sprintf("%s%d-%s", namePrefix, owner, tag)
		dir := filepath.Join(os.TempDir(), prefix)
		err = os.Mkdir(dir, 0o755)
		if err == nil {
			c.mu.Lock()
			c.prefix, c.dir = prefix, dir
			c.mu.Unlock()
			break
		}
		if !errors.Is(err, os.ErrExist) || attempt > 10 {
			return err
		}
	}
	br := c.prefix + "-b"
	if err := c.ipCmd(ctx, "netns", "add", br); err != nil {
		return err
	}
	c.mu.Lock()
	c.brNS = br
	c.mu.Unlock()
	for _, args := range [][]string{
		{"-n", br, "link", "set", "lo", "up"},
		{"-n", br, "link", "add", "br0", "type", "bridge"},
		{"-n", br, "link", "set", "br0", "up"},
	} {
		if err := c.ipCmd(ctx, args...); err != nil {
			return err
		}
	}
	for i := 1; i <= n; i++ {
		nd := &node{
			id:   i,
			ns:   fmt.Sprintf("%s-%d", c.prefix, i),
			addr: c.cfg.hostAddr(i),
			dir:  filepath.Join(c.dir, fmt.Sprintf("n%d", i)),
			name: c.nodeName(i),
		}
		if err := os.MkdirAll(nd.stateDir(), 0o755); err != nil {
			return err
		}
		if err := c.ipCmd(ctx, "netns", "add", nd.ns); err != nil {
			return err
		}
		c.mu.Lock()
		c.nodes = append(c.nodes, nd)
		c.mu.Unlock()
		if err := c.linkHost(ctx, nd.ns, fmt.Sprintf("n%d", i), nd.addr); err != nil {
			return err
		}
	}
	if c.cfg.qdevice != nil {
		if err := c.createQnetd(ctx); err != nil {
			return err
		}
	}
	for _, nd := range c.nodes {
		if err := os.WriteFile(c.ConfPath(nd.id), []byte(c.configText(nd)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// node returns node i or an error naming the valid range.
func (c *Cluster) node(i int) (*node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("testcluster: cluster already torn down")
	}
	if i < 1 || i > len(c.nodes) {
		return nil, fmt.Errorf("testcluster: no node %d (cluster has 1..%d)", i, len(c.nodes))
	}
	return c.nodes[i-1], nil
}

// N returns the number of nodes.
func (c *Cluster) N() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes)
}

// Netns returns the name of node i's network namespace (as for
// `ip netns exec`), or "" when there is no node i.
func (c *Cluster) Netns(i int) string {
	nd, err := c.node(i)
	if err != nil {
		return ""
	}
	return nd.ns
}

// BridgeNetns returns the name of the namespace holding the bridge.
func (c *Cluster) BridgeNetns() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.brNS
}

// Addr returns node i's IPv4 address (inside the cluster's namespaces), or
// "" when there is no node i.
func (c *Cluster) Addr(i int) string {
	nd, err := c.node(i)
	if err != nil {
		return ""
	}
	return nd.addr
}

// Dir returns node i's corosync state_dir, or "" when there is no node i.
func (c *Cluster) Dir(i int) string { return c.nodePath(i, (*node).stateDir) }

// ConfPath returns the path of node i's corosync.conf, or "" when there is
// no node i. Changes to it take effect at the node's next Start (or after
// `corosync-cfgtool -R` for what corosync reloads).
func (c *Cluster) ConfPath(i int) string { return c.nodePath(i, (*node).confPath) }

// LogPath returns the file that collects node i's corosync stderr across
// restarts, or "" when there is no node i.
func (c *Cluster) LogPath(i int) string { return c.nodePath(i, (*node).logPath) }

// nodePath returns path(node i), or "" when there is no node i.
func (c *Cluster) nodePath(i int, path func(*node) string) string {
	nd, err := c.node(i)
	if err != nil {
		return ""
	}
	return path(nd)
}

// Pid returns the pid of node i's corosync, or 0 when it is not running.
func (c *Cluster) Pid(i int) int {
	nd, err := c.node(i)
	if err != nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if nd.proc == nil || nd.proc.exited() {
		return 0
	}
	return nd.proc.pid
}

// Running reports whether node i's corosync process exists (frozen counts).
func (c *Cluster) Running(i int) bool { return c.Pid(i) != 0 }

// tokenLost is what corosync logs when the token is lost and a new
// membership round begins.
const tokenLost = "A processor failed, forming new configuration"

// Install returns the corosync install the cluster runs (its version, its
// programs and the environment a client built against its libraries needs).
func (c *Cluster) Install() Install { return c.inst }

// Log returns node i's whole log so far.
func (c *Cluster) Log(i int) (string, error) {
	nd, err := c.node(i)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(nd.logPath())
	return string(b), err
}

// logTail returns the last n lines of nd's log, or a note why not.
func (c *Cluster) logTail(nd *node, n int) string {
	b, err := os.ReadFile(nd.logPath())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tailLines(string(b), n)
}

func tailLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Close kills every process of the cluster, deletes its namespaces and its
// folder, and returns what went wrong. It keeps going after errors so that
// one failure leaves as little as possible behind. Calls after the first
// return nil; every other method fails after Close.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	nodes := append([]*node(nil), c.nodes...)
	br, dir, q := c.brNS, c.dir, c.qnetd
	c.mu.Unlock()

	var errs []error
	for _, nd := range nodes {
		if err := c.killQdevice(nd); err != nil {
			errs = append(errs, err)
		}
		c.mu.Lock()
		p := nd.proc
		c.mu.Unlock()
		if p != nil && !p.exited() {
			if err := c.killProc(nd, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if q != nil {
		c.mu.Lock()
		p := q.proc
		c.mu.Unlock()
		if p != nil && !p.exited() {
			if err := stopProc(p, syscall.SIGKILL, "qnetd"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	close(c.spawn)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, nd := range nodes {
		if err := deleteNetns(ctx, c.tools.ip, nd.ns); err != nil {
			errs = append(errs, err)
		}
	}
	if q != nil {
		if err := deleteNetns(ctx, c.tools.ip, q.ns); err != nil {
			errs = append(errs, err)
		}
	}
	if br != "" {
		if err := deleteNetns(ctx, c.tools.ip, br); err != nil {
			errs = append(errs, err)
		}
	}
	if dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testcluster: close: %w", err)
	}
	return nil
}

// logTails returns the last n lines of every node's log, one block each.
func (c *Cluster) logTails(n int) string {
	c.mu.Lock()
	nodes := append([]*node(nil), c.nodes...)
	c.mu.Unlock()
	var b strings.Builder
	for _, nd := range nodes {
		fmt.Fprintf(&b, "--- node %d (netns %s) log tail:\n%s\n", nd.id, nd.ns, c.logTail(nd, n))
		if _, err := os.Stat(nd.qdeviceLogPath()); err == nil {
			fmt.Fprintf(&b, "--- node %d qdevice log tail:\n%s\n", nd.id, fileTail(nd.qdeviceLogPath(), n))
		}
	}
	c.mu.Lock()
	q := c.qnetd
	c.mu.Unlock()
	if q != nil {
		fmt.Fprintf(&b, "--- qnetd (netns %s) log tail:\n%s\n", q.ns, fileTail(q.logPath(), n))
	}
	return b.String()
}
