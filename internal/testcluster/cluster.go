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
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// tools are the programs the harness runs, found by Available.
type tools struct {
	corosync, quorumtool, cfgtool, ip string
}

// Available reports whether clusters can be started here: nil when the
// process is root, network namespaces can be created, ip is installed and
// so is corosync (corosync, corosync-quorumtool, corosync-cfgtool: the
// system's, or those under QUORUM_COROSYNC_PREFIX, whose `corosync -v` must
// run). Otherwise the error says in one line why and what to do.
func Available() error {
	if _, _, err := setup(os.Geteuid(), os.Getenv(PrefixEnv), exec.LookPath); err != nil {
		return err
	}
	return canUnshareNet()
}

// setup finds the programs and probes the corosync install, selected by
// prefix ("" for the system's).
func setup(euid int, prefix string, lookPath func(string) (string, error)) (tools, Install, error) {
	if prefix == "" {
		t, err := findTools(euid, lookPath)
		if err != nil {
			return t, Install{}, err
		}
		in, err := probe(t, "")
		return t, in, err
	}
	if err := checkRoot(euid); err != nil {
		return tools{}, Install{}, err
	}
	ip, err := lookSystem(lookPath, "ip", "iproute2")
	if err != nil {
		return tools{}, Install{}, err
	}
	t, err := findPrefix(prefix, lookPath)
	if err != nil {
		return t, Install{}, err
	}
	t.ip = ip
	in, err := probe(t, prefix)
	return t, in, err
}

func checkRoot(euid int) error {
	if euid != 0 {
		return fmt.Errorf("testcluster: not root (euid %d): network namespaces and corosync need root", euid)
	}
	return nil
}

// findTools checks the prerequisites that do not need a system call, for
// the system's corosync, with the effective uid and the program lookup
// passed in so tests can vary them.
func findTools(euid int, lookPath func(string) (string, error)) (tools, error) {
	if err := checkRoot(euid); err != nil {
		return tools{}, err
	}
	t, err := findCorosync(lookPath)
	if err != nil {
		return t, err
	}
	t.ip, err = lookSystem(lookPath, "ip", "iproute2")
	return t, err
}

// findCorosync finds the system's corosync programs.
func findCorosync(lookPath func(string) (string, error)) (tools, error) {
	var t tools
	var err error
	for _, x := range []struct {
		dst  *string
		name string
	}{
		{&t.corosync, "corosync"},
		{&t.quorumtool, "corosync-quorumtool"},
		{&t.cfgtool, "corosync-cfgtool"},
	} {
		if *x.dst, err = lookSystem(lookPath, x.name, "corosync"); err != nil {
			return t, err
		}
	}
	return t, nil
}

// lookSystem finds an installed program, in PATH or in the usual system
// directories: root's PATH normally has /usr/sbin, but sudo -E or a test
// runner may not; corosync lives there on Debian.
func lookSystem(lookPath func(string) (string, error), name, pkg string) (string, error) {
	if p, err := lookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if p, err := lookPath(filepath.Join(dir, name)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("testcluster: %s not installed: apt-get install %s", name, pkg)
}

// canUnshareNet creates a network namespace on a thread that is thrown away
// afterwards, to tell a root without CAP_SYS_ADMIN (an unprivileged
// container) from a usable one.
func canUnshareNet() error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime ends the thread with the goroutine
		// instead of reusing it in the wrong namespace.
		runtime.LockOSThread()
		errc <- unix.Unshare(unix.CLONE_NEWNET)
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("testcluster: cannot create a network namespace (%v): needs CAP_SYS_ADMIN, not an unprivileged container", err)
	}
	return nil
}

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

// Cluster is a running test cluster. Its methods are safe for concurrent
// use. Close (which Start registers as a test cleanup) tears down
// everything it started.
type Cluster struct {
	tools  tools
	inst   Install
	cfg    config
	prefix string // qtc-<pid>-<rand>
	dir    string // temporary directory holding every node's files
	brNS   string
	nodes  []*node // index 0 is node 1

	spawn chan spawnReq

	mu     sync.Mutex
	closed bool
}

type node struct {
	id   int
	ns   string
	addr string
	dir  string // node's folder: corosync.conf, corosync.log, state/

	proc *proc // guarded by Cluster.mu
}

// proc is one corosync process. done is closed once it has been reaped.
type proc struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
	err  error // Wait's result, valid after done
}

// The node's files, all in its folder.
func (nd *node) stateDir() string { return filepath.Join(nd.dir, "state") }
func (nd *node) confPath() string { return filepath.Join(nd.dir, "corosync.conf") }
func (nd *node) logPath() string  { return filepath.Join(nd.dir, "corosync.log") }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

type spawnReq struct {
	cmd *exec.Cmd
	res chan error
}

// Start builds an n-node cluster with New and registers a t.Cleanup that
// closes it, logging the tail of every node's log first if the test failed.
// Missing prerequisites call t.Skip with Available's reason, or t.Fatal
// when QUORUM_REQUIRE_CLUSTER=1; any other failure calls t.Fatal. Start must
// be called from the test's goroutine.
func Start(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	if err := Available(); err != nil {
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
	cfg := config{votes: map[int]uint32{}, nodeExtra: map[int][]string{}, waitTimeout: DefaultWaitTimeout}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	for i := range cfg.votes {
		if i < 1 || i > n {
			return nil, fmt.Errorf("testcluster: Votes for node %d of %d", i, n)
		}
	}
	for i := range cfg.nodeExtra {
		if i < 1 || i > n {
			return nil, fmt.Errorf("testcluster: NodeExtraConfig for node %d of %d", i, n)
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

	c := &Cluster{tools: tl, inst: inst, cfg: cfg, spawn: make(chan spawnReq)}
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
	return nil
}

// spawner starts every corosync from one locked OS thread that lives as long
// as the cluster. The processes get SIGKILL as parent-death signal, and Linux
// sends it when the creating *thread* ends; starting them from an arbitrary
// thread would kill them whenever the runtime retires that thread.
func (c *Cluster) spawner() {
	runtime.LockOSThread()
	// Left locked on return: the thread is discarded, and by then every
	// process it started has been reaped.
	for req := range c.spawn {
		req.res <- req.cmd.Start()
	}
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
			addr: fmt.Sprintf("%s.%d", Subnet, i),
			dir:  filepath.Join(c.dir, fmt.Sprintf("n%d", i)),
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
		port := fmt.Sprintf("n%d", i)
		for _, args := range [][]string{
			// Created from inside the bridge namespace with the peer
			// placed directly in the node's: no interface ever exists
			// in the caller's namespace.
			{"-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", nd.ns},
			{"-n", br, "link", "set", port, "master", "br0"},
			{"-n", br, "link", "set", port, "up"},
			{"-n", nd.ns, "link", "set", "lo", "up"},
			{"-n", nd.ns, "addr", "add", nd.addr + "/24", "dev", "eth0"},
			{"-n", nd.ns, "link", "set", "eth0", "up"},
		} {
			if err := c.ipCmd(ctx, args...); err != nil {
				return err
			}
		}
	}
	for _, nd := range c.nodes {
		if err := os.WriteFile(c.ConfPath(nd.id), []byte(c.configText(nd)), 0o644); err != nil {
			return err
		}
	}
	return nil
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
	w("\ttoken: 1000")
	w("\tcrypto_cipher: none")
	w("\tcrypto_hash: none")
	w("}")
	w("nodelist {")
	for _, o := range c.nodes {
		w("\tnode {")
		w("\t\tname: node%d", o.id)
		w("\t\tnodeid: %d", o.id)
		if v, ok := c.cfg.votes[o.id]; ok {
			w("\t\tquorum_votes: %d", v)
		}
		w("\t\tring0_addr: %s", o.addr)
		w("\t}")
	}
	w("}")
	w("quorum {")
	w("\tprovider: corosync_votequorum")
	if c.cfg.expected > 0 {
		w("\texpected_votes: %d", c.cfg.expected)
	}
	if c.cfg.twoNode {
		w("\ttwo_node: 1")
	}
	w("}")
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

// ipCmd runs ip with args and returns an error carrying its output.
func (c *Cluster) ipCmd(ctx context.Context, args ...string) error {
	return runTool(ctx, c.tools.ip, args...)
}

func runTool(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := execCommand(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// execCommand is exec.CommandContext with a bound on waiting for output
// pipes after the process ends (a grandchild may hold them open).
func execCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	return cmd
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

// startNode launches corosync for nd without waiting for it.
func (c *Cluster) startNode(nd *node) error {
	// Held throughout so that teardown, which marks the cluster closed
	// under mu before it closes c.spawn and kills what it finds, either
	// sees this process or makes this call fail, and a node is never
	// started twice.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("testcluster: cluster already torn down")
	}
	if nd.proc != nil && !nd.proc.exited() {
		return fmt.Errorf("testcluster: node %d: corosync already running (pid %d)", nd.id, nd.proc.pid)
	}

	script, env, err := c.corosyncCommand(nd)
	if err != nil {
		return fmt.Errorf("testcluster: node %d: %v", nd.id, err)
	}
	logf, err := os.OpenFile(nd.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own copy
	fmt.Fprintf(logf, "=== testcluster: starting node %d at %s ===\n", nd.id, time.Now().UTC().Format(time.RFC3339Nano))

	cmd := exec.Command(c.tools.ip, "netns", "exec", nd.ns, "/bin/sh", "-c", script)
	cmd.Env = env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = nd.dir
	// If the test binary dies without its cleanup, corosync dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	res := make(chan error, 1)
	c.spawn <- spawnReq{cmd: cmd, res: res}
	if err := <-res; err != nil {
		return fmt.Errorf("testcluster: node %d: starting corosync: %v", nd.id, err)
	}
	// ip and sh exec in place, so this pid becomes corosync's.
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	appendPid(nd.dir, p.pid)
	go func() {
		p.err = cmd.Wait()
		// A killed corosync leaves its IPC folders in /dev/shm. Removed
		// right after reaping, before the pid can name another process.
		removeShm(p.pid)
		close(p.done)
	}()
	nd.proc = p
	return nil
}

// corosyncCommand returns the shell script that starts node nd's corosync
// inside its namespace, and the environment to run it with.
//
// ip netns exec gives the node a private mount namespace; a tmpfs on /run
// there gives each corosync its own /run/corosync.pid lock (Debian's
// corosync locks /var/run/corosync.pid, and /var/run links to /run). A
// corosync built into a prefix locks <prefix>/var/run/corosync.pid, which
// gets a tmpfs of its own the same way. corosync 2.x has no -c: it reads
// the config path from COROSYNC_MAIN_CONFIG_FILE and keeps its state in
// COROSYNC_RUN_DIR.
func (c *Cluster) corosyncCommand(nd *node) (script string, env []string, err error) {
	lock, err := lockMount(c.inst.lockDir)
	if err != nil {
		return "", nil, err
	}
	script = "mount -t tmpfs tmpfs /run && " + lock + "exec " + shellQuote(c.tools.corosync) + " -f"
	env = c.inst.Env()
	if c.inst.Version.AtLeast(3, 0, 0) {
		script += " -c " + shellQuote(nd.confPath())
	} else {
		env = append(env, "COROSYNC_MAIN_CONFIG_FILE="+nd.confPath(), "COROSYNC_RUN_DIR="+nd.stateDir())
	}
	return script, mergeEnv(os.Environ(), env...), nil
}

// appendPid records a corosync pid in the node's folder, so that a later
// run can clean /dev/shm after this process died without its cleanup.
func appendPid(dir string, pid int) {
	f, err := os.OpenFile(filepath.Join(dir, "pids"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, pid)
	f.Close()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// waitReady waits until node nd's corosync answers corosync-quorumtool,
// i.e. clients can connect.
func (c *Cluster) waitReady(ctx context.Context, nd *node) error {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	var last error
	for {
		if err := c.checkAlive(nd); err != nil {
			return err
		}
		_, err := c.QuorumtoolContext(ctx, nd.id)
		if err == nil {
			return nil
		}
		last = err
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("node %d: corosync not ready: %v (last: %v)\n%s", nd.id, err, last, c.logTail(nd, 30))
		}
	}
}

// checkAlive fails when node nd's corosync has exited.
func (c *Cluster) checkAlive(nd *node) error {
	c.mu.Lock()
	p := nd.proc
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("node %d: corosync not started", nd.id)
	}
	if p.exited() {
		return fmt.Errorf("node %d: corosync (pid %d) exited: %v\n%s", nd.id, p.pid, p.err, c.logTail(nd, 30))
	}
	return nil
}

// bounded applies the cluster's wait timeout to a context without deadline.
func (c *Cluster) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.cfg.waitTimeout)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// Start restarts node i's corosync (after Kill) and waits until it answers
// IPC; it does not wait for the node to join the others (use WaitMembers).
func (c *Cluster) Start(i int) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	if err := c.startNode(nd); err != nil {
		return err
	}
	return c.waitReady(context.Background(), nd)
}

// Spawn starts node i's corosync and returns at once, so that a test can
// watch clients while corosync is still starting.
func (c *Cluster) Spawn(i int) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	return c.startNode(nd)
}

// Kill sends SIGKILL to node i's corosync and waits until it has exited.
func (c *Cluster) Kill(i int) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	c.mu.Lock()
	p := nd.proc
	c.mu.Unlock()
	if p == nil || p.exited() {
		return fmt.Errorf("testcluster: node %d: corosync not running", i)
	}
	return c.killProc(nd, p)
}

func (c *Cluster) killProc(nd *node, p *proc) error {
	// os.Process.Signal refuses once the process is reaped, so this never
	// hits a recycled pid.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("testcluster: node %d: kill pid %d: %v", nd.id, p.pid, err)
	}
	tm := time.NewTimer(killTimeout)
	defer tm.Stop()
	select {
	case <-p.done:
	case <-tm.C:
		return fmt.Errorf("testcluster: node %d: pid %d still running %v after SIGKILL", nd.id, p.pid, killTimeout)
	}
	return nil
}

// Freeze stops node i's corosync with SIGSTOP (a hung server: its sockets
// stay open, nothing answers) and waits until the kernel reports it stopped.
func (c *Cluster) Freeze(i int) error { return c.signalState(i, syscall.SIGSTOP, true) }

// Thaw resumes a frozen node i with SIGCONT and waits until it runs again.
func (c *Cluster) Thaw(i int) error { return c.signalState(i, syscall.SIGCONT, false) }

func (c *Cluster) signalState(i int, sig syscall.Signal, stop bool) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	c.mu.Lock()
	p := nd.proc
	c.mu.Unlock()
	if p == nil || p.exited() {
		return fmt.Errorf("testcluster: node %d: corosync not running", i)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("testcluster: node %d: %v: %v", i, sig, err)
	}
	deadline := time.Now().Add(killTimeout)
	for {
		st, err := procState(p.pid)
		if err == nil && (st == 'T') == stop {
			break
		}
		if p.exited() {
			return fmt.Errorf("testcluster: node %d: corosync exited", i)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testcluster: node %d: pid %d in state %q after %v", i, p.pid, st, sig)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// procState returns the state letter of /proc/pid/stat (R, S, T, Z, ...).
func procState(pid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// comm may hold spaces and parentheses; the state follows the last ')'.
	j := bytes.LastIndexByte(b, ')')
	if j < 0 || j+2 >= len(b) {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return b[j+2], nil
}

// tokenLost is what corosync logs when the token is lost and a new
// membership round begins.
const tokenLost = "A processor failed, forming new configuration"

// Reform makes the cluster form a new ring with the same members. It holds
// node i's corosync (SIGSTOP) until another running node logs the loss of
// the token, then resumes it inside the consensus timeout (1.2 token), so
// that node i takes part in the new ring instead of being left out. On
// corosync 3.1.7 with 5 nodes the token is lost about 2.9 s after the
// stop, and the ring re-forms at once when node i resumes.
func (c *Cluster) Reform(i int) error {
	if _, err := c.node(i); err != nil {
		return err
	}
	witness := 0
	for j := 1; j <= c.N() && witness == 0; j++ {
		if st, err := procState(c.Pid(j)); j != i && err == nil && st != 'T' {
			witness = j // running, not frozen
		}
	}
	if witness == 0 {
		return fmt.Errorf("testcluster: Reform(%d): no other node is running to form a ring with", i)
	}
	before, err := c.Log(witness)
	if err != nil {
		return err
	}
	if err := c.Freeze(i); err != nil {
		return err
	}
	ctx, cancel := c.bounded(context.Background())
	defer cancel()
	for {
		l, err := c.Log(witness)
		if err == nil && strings.Count(l, tokenLost) > strings.Count(before, tokenLost) {
			return c.Thaw(i)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			thawErr := c.Thaw(i)
			return errors.Join(fmt.Errorf("testcluster: Reform(%d): node %d did not log the token's loss (%q): %w",
				i, witness, tokenLost, err), thawErr)
		}
	}
}

// Cut sets the bridge side of node i's veth link down: the node stays up
// but loses every peer, as with a pulled cable.
func (c *Cluster) Cut(i int) error { return c.setLink(i, "down") }

// Heal sets node i's link up again.
func (c *Cluster) Heal(i int) error { return c.setLink(i, "up") }

func (c *Cluster) setLink(i int, state string) error {
	if _, err := c.node(i); err != nil {
		return err
	}
	err := c.ipCmd(context.Background(), "-n", c.BridgeNetns(), "link", "set", fmt.Sprintf("n%d", i), state)
	if err != nil {
		return fmt.Errorf("testcluster: node %d: link %s: %v", i, state, err)
	}
	return nil
}

// Exec returns a command that runs name with args inside node i's network
// namespace (through `ip netns exec`, so also in a private mount namespace
// that shares /dev/shm with the caller). The caller runs it; ctx kills it.
// For a node index out of range the command fails when run. Its Env is the
// install's environment (Install().Environ(): with QUORUM_COROSYNC_PREFIX,
// the prefix's lib first in LD_LIBRARY_PATH, so that corosync's tools and
// clients built against the prefix's libraries find them); append to it
// rather than replace it.
func (c *Cluster) Exec(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	ns := c.Netns(i)
	if ns == "" {
		// An invalid namespace name makes ip fail with a clear message
		// instead of running the command in the caller's namespace.
		ns = fmt.Sprintf("testcluster-no-node-%d", i)
	}
	cmd := execCommand(ctx, c.tools.ip, append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.Env = c.inst.Environ()
	return cmd
}

// Install returns the corosync install the cluster runs (its version, its
// programs and the environment a client built against its libraries needs).
func (c *Cluster) Install() Install { return c.inst }

// ExecAs is Exec with name run as user and group uid with no
// supplementary groups (through setpriv from util-linux), e.g. to check
// that corosync refuses a user until GrantUID.
func (c *Cluster) ExecAs(ctx context.Context, i int, uid uint32, name string, args ...string) *exec.Cmd {
	id := strconv.FormatUint(uint64(uid), 10)
	return c.Exec(ctx, i, "setpriv", append([]string{"--reuid=" + id, "--regid=" + id, "--clear-groups", name}, args...)...)
}

// Output runs name in node i and returns its combined output; the error
// includes that output.
func (c *Cluster) Output(ctx context.Context, i int, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := c.Exec(ctx, i, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("node %d: %s %s: %w: %s", i, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// SetExpectedVotes runs `corosync-quorumtool -e v` in node i. The error
// carries the tool's output (corosync refuses values it cannot apply).
func (c *Cluster) SetExpectedVotes(i int, v uint32) error {
	_, err := c.Output(context.Background(), i, c.tools.quorumtool, "-e", strconv.FormatUint(uint64(v), 10))
	return err
}

// GrantUID lets uid use node i's IPC: it appends a uidgid section to the
// node's corosync.conf and reloads it with `corosync-cfgtool -R`. The grant
// survives a restart of the node.
func (c *Cluster) GrantUID(i int, uid uint32) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(nd.confPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "uidgid {\n\tuid: %d\n}\n", uid)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	_, err = c.Output(context.Background(), i, c.tools.cfgtool, "-R")
	return err
}

// Quorumtool runs `corosync-quorumtool -s` in node i and parses its view. A
// node that is not quorate is not an error (the tool exits 2 then).
func (c *Cluster) Quorumtool(i int) (Status, error) {
	return c.QuorumtoolContext(context.Background(), i)
}

// QuorumtoolContext is Quorumtool bounded by ctx as well as by a
// per-call timeout (a frozen corosync never answers).
func (c *Cluster) QuorumtoolContext(ctx context.Context, i int) (Status, error) {
	if _, err := c.node(i); err != nil {
		return Status{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := c.Exec(ctx, i, c.tools.quorumtool, "-s").CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 2) {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return Status{}, fmt.Errorf("node %d: corosync-quorumtool -s: %w: %s", i, err, bytes.TrimSpace(out))
	}
	st, perr := ParseStatus(string(out))
	if perr != nil {
		return st, fmt.Errorf("node %d: %w", i, perr)
	}
	return st, nil
}

// WaitMembers polls node i's view until its members are exactly want (in
// any order). Without a deadline on ctx the cluster's wait timeout applies.
// The error includes the last view seen and the node's log tail.
func (c *Cluster) WaitMembers(ctx context.Context, i int, want []uint32) error {
	return c.WaitStatus(ctx, i, func(s Status) bool { return sameSet(s.Members, want) },
		fmt.Sprintf("members %v", sortedCopy(want)))
}

// WaitStatus polls node i's view until cond holds; what describes cond in
// the error. Without a deadline on ctx the cluster's wait timeout applies.
func (c *Cluster) WaitStatus(ctx context.Context, i int, cond func(Status) bool, what string) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	var (
		last    Status
		lastErr error
		seen    bool
	)
	for {
		if err := c.checkAlive(nd); err != nil {
			return err
		}
		st, err := c.QuorumtoolContext(ctx, i)
		if err == nil {
			if cond(st) {
				return nil
			}
			last, seen, lastErr = st, true, nil
		} else {
			lastErr = err
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			var got string
			switch {
			case lastErr != nil:
				got = "last error: " + lastErr.Error()
			case seen:
				got = fmt.Sprintf("last view: quorate=%v ring=%s members=%v", last.Quorate, last.Ring, last.Members)
			default:
				got = "no view"
			}
			return fmt.Errorf("node %d: waiting for %s: %v; %s\nlog tail of node %d:\n%s", i, what, err, got, i, c.logTail(nd, 30))
		}
	}
}

func sortedCopy(v []uint32) []uint32 {
	s := append([]uint32(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

func sameSet(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := sortedCopy(a), sortedCopy(b)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

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
	br, dir := c.brNS, c.dir
	c.mu.Unlock()

	var errs []error
	for _, nd := range nodes {
		c.mu.Lock()
		p := nd.proc
		c.mu.Unlock()
		if p != nil && !p.exited() {
			if err := c.killProc(nd, p); err != nil {
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
	}
	return b.String()
}
