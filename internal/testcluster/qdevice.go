//go:build linux

package testcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults of QdeviceOptions: far below corosync's (10 s and 30 s) so that
// the loss of the device shows within seconds, and above the 1.25 s under
// which qdevice raises its heartbeat (0.8 of the timeout) to qnetd's
// 1 s minimum.
const (
	DefaultQdeviceTimeout     = 2 * time.Second
	DefaultQdeviceSyncTimeout = 3 * time.Second
)

// QdeviceOptions configures the quorum device that Qdevice adds: model
// net, one corosync-qnetd server, corosync-qdevice on every node, TLS on
// with certificates made for the cluster.
type QdeviceOptions struct {
	// Algorithm is quorum.device.net.algorithm: "ffsplit" (the default)
	// or "lms".
	Algorithm string
	// Votes is quorum.device.votes; 0 leaves the key out and votequorum
	// computes it (nodes - 1, when every node has 1 vote). ffsplit is
	// meant to have 1.
	Votes uint32
	// TieBreaker is quorum.device.net.tie_breaker: "lowest" (the
	// default), "highest" or one node id.
	TieBreaker string
	// Timeout and SyncTimeout are quorum.device.timeout and sync_timeout
	// (DefaultQdeviceTimeout and DefaultQdeviceSyncTimeout when 0), in
	// whole milliseconds.
	Timeout, SyncTimeout time.Duration
	// MasterWins starts qdevice with -S master_wins=on, which shows as MW
	// in the Qdevice column.
	MasterWins bool
	// NoStart starts qnetd but no qdevice: StartQdevice starts them.
	NoStart bool
}

// Qdevice gives the cluster a quorum device: corosync-qnetd in a network
// namespace of its own on the cluster's bridge (QnetdAddr), and on every
// node a quorum.device section and, after corosync, corosync-qdevice in
// the node's namespace. Start then also waits until every node sees every
// member's device alive and voting (unless NoStart or NoWaitFormed). It
// needs the Debian packages corosync-qnetd and corosync-qdevice (whose
// dependency libnss3-tools provides certutil); Start skips without them like
// without corosync. corosync refuses a device together with two_node,
// last_man_standing, auto_tie_breaker or allow_downscale.
func Qdevice(o QdeviceOptions) Option {
	return func(c *config) { c.qdevice = &o }
}

func (q *QdeviceOptions) algorithm() string {
	if q.Algorithm == "" {
		return "ffsplit"
	}
	return q.Algorithm
}

func (q *QdeviceOptions) timeouts() (timeout, sync time.Duration) {
	timeout, sync = q.Timeout, q.SyncTimeout
	if timeout == 0 {
		timeout = DefaultQdeviceTimeout
	}
	if sync == 0 {
		sync = DefaultQdeviceSyncTimeout
	}
	return timeout, sync
}

func (q *QdeviceOptions) check() error {
	switch q.Algorithm {
	case "", "ffsplit", "lms":
	default:
		return fmt.Errorf("Qdevice: algorithm %q: want ffsplit or lms", q.Algorithm)
	}
	if err := checkTieBreaker(q.TieBreaker, false); err != nil {
		return fmt.Errorf("Qdevice: tie_breaker %w", err)
	}
	if q.Timeout < 0 || q.SyncTimeout < 0 || (q.Timeout > 0 && q.Timeout < time.Millisecond) ||
		(q.SyncTimeout > 0 && q.SyncTimeout < time.Millisecond) {
		return fmt.Errorf("Qdevice: timeouts %v, %v: want 0 (default) or at least 1ms", q.Timeout, q.SyncTimeout)
	}
	return nil
}

// deviceSection renders quorum.device for the qnetd at host.
func (q *QdeviceOptions) deviceSection(host string) []string {
	timeout, sync := q.timeouts()
	l := []string{"\tdevice {", "\t\tmodel: net"}
	if q.Votes > 0 {
		l = append(l, fmt.Sprintf("\t\tvotes: %d", q.Votes))
	}
	l = append(l,
		fmt.Sprintf("\t\ttimeout: %d", timeout.Milliseconds()),
		fmt.Sprintf("\t\tsync_timeout: %d", sync.Milliseconds()),
		"\t\tnet {",
		"\t\t\thost: "+host,
		"\t\t\talgorithm: "+q.algorithm(),
	)
	if q.TieBreaker != "" {
		l = append(l, "\t\t\ttie_breaker: "+q.TieBreaker)
	}
	return append(l, "\t\t\ttls: on", "\t\t}", "\t}")
}

// qdTools are the quorum device's programs.
type qdTools struct {
	qnetd, qnetdTool, qdevice, qdeviceTool, certutil string
}

// findQdeviceTools finds the system's quorum device programs: Debian's
// corosync-qnetd and corosync-qdevice talk to any corosync from 2.4 on over
// its IPC, so an install prefix does not need its own.
func findQdeviceTools(look func(string) (string, error)) (qdTools, error) {
	var t qdTools
	for _, x := range []struct {
		dst       *string
		name, pkg string
	}{
		{&t.qnetd, "corosync-qnetd", "corosync-qnetd"},
		{&t.qnetdTool, "corosync-qnetd-tool", "corosync-qnetd"},
		{&t.qdevice, "corosync-qdevice", "corosync-qdevice"},
		{&t.qdeviceTool, "corosync-qdevice-tool", "corosync-qdevice"},
		{&t.certutil, "certutil", "libnss3-tools"},
	} {
		p, err := lookSystem(look, x.name, x.pkg)
		if err != nil {
			return t, err
		}
		*x.dst = p
	}
	return t, nil
}

// QdeviceAvailable reports whether clusters with a quorum device can be
// started here: Available, and the quorum device's programs installed.
func QdeviceAvailable() error {
	if err := Available(); err != nil {
		return err
	}
	_, err := findQdeviceTools(exec.LookPath)
	return err
}

// qnetd is the quorum device server of a cluster.
type qnetd struct {
	ns, addr, dir string
	proc          *proc // guarded by Cluster.mu
}

func (q *qnetd) logPath() string  { return filepath.Join(q.dir, "qnetd.log") }
func (q *qnetd) sockPath() string { return filepath.Join(q.dir, "qnetd.sock") }
func (q *qnetd) nssDir() string   { return filepath.Join(q.dir, "nssdb") }

// The node's quorum device files, in its folder.
func (nd *node) qdeviceLogPath() string  { return filepath.Join(nd.dir, "qdevice.log") }
func (nd *node) qdeviceSockPath() string { return filepath.Join(nd.dir, "qdevice.sock") }
func (nd *node) nssDir() string          { return filepath.Join(nd.dir, "nssdb") }

// createQnetd makes the quorum device server's namespace, linked to the
// bridge like a node, its folder and the certificates of qnetd and of
// every node.
func (c *Cluster) createQnetd(ctx context.Context) error {
	q := &qnetd{ns: c.prefix + "-q", addr: c.cfg.hostAddr(qnetdIndex), dir: filepath.Join(c.dir, "qnetd")}
	if err := os.Mkdir(q.dir, 0o755); err != nil {
		return err
	}
	if err := c.ipCmd(ctx, "netns", "add", q.ns); err != nil {
		return err
	}
	c.mu.Lock()
	c.qnetd = q
	c.mu.Unlock()
	if err := c.linkHost(ctx, q.ns, "nq", q.addr); err != nil {
		return err
	}
	// Paths go into -S lists (comma-separated key=value) and unix socket
	// addresses (108 bytes).
	for _, p := range []string{q.sockPath(), c.nodes[len(c.nodes)-1].qdeviceSockPath()} {
		if strings.ContainsAny(p, ",=") || len(p) >= 108 {
			return fmt.Errorf("path %s does not fit a socket address or a -S option: set TMPDIR to a short path", p)
		}
	}
	return c.makeCerts(ctx, q)
}

// makeCerts does what corosync-qnetd-certutil -i, corosync-qdevice-net-
// certutil -i/-r/-M and corosync-qnetd-certutil -s would do, in the
// cluster's folder instead of /etc/corosync: a CA and the server
// certificate in qnetd's NSS database; a database per node trusting the
// CA, with a client certificate for the cluster name signed by it. The
// nicknames and subject are those qnetd and qdevice look for by default.
func (c *Cluster) makeCerts(ctx context.Context, q *qnetd) error {
	cu := c.qdTools.certutil
	noise := filepath.Join(c.dir, "noise")
	pwd := filepath.Join(c.dir, "nss-password") // empty: no password
	b := make([]byte, 2048)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	if err := os.WriteFile(noise, b, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(pwd, nil, 0o600); err != nil {
		return err
	}
	// run runs certutil with stdin and returns its standard output.
	run := func(stdin string, args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
		defer cancel()
		cmd := execCommand(ctx, cu, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("certutil %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
		}
		return out, nil
	}
	srv := q.nssDir()
	cl := filepath.Join(c.dir, "cluster-nssdb") // copied to every node
	caFile := filepath.Join(c.dir, "qnetd-cacert.crt")
	crq := filepath.Join(c.dir, "cluster.crq")
	crt := filepath.Join(c.dir, "cluster.crt")
	for _, d := range []string{srv, cl} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	steps := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"-N", "-d", srv, "-f", pwd}},
		// A self-signed CA; the answers: a CA, no path length limit,
		// critical extension.
		{"y\n0\ny\n", []string{"-S", "-n", "QNet CA", "-s", "CN=QNet CA", "-x", "-t", "CT,,", "-m", "1", "-v", "120",
			"-d", srv, "-z", noise, "-f", pwd, "-2"}},
		{"", []string{"-S", "-n", "QNetd Cert", "-s", "CN=Qnetd Server", "-c", "QNet CA", "-t", "u,u,u", "-m", "2", "-v", "120",
			"-d", srv, "-z", noise, "-f", pwd}},
		{"", []string{"-N", "-d", cl, "-f", pwd}},
		{"", []string{"-A", "-d", cl, "-t", "CT,c,c", "-n", "QNet CA", "-f", pwd, "-i", caFile}},
		{"", []string{"-R", "-s", "CN=" + c.prefix, "-o", crq, "-d", cl, "-f", pwd, "-z", noise}},
		{"", []string{"-C", "-v", "120", "-m", "3", "-i", crq, "-o", crt, "-c", "QNet CA", "-d", srv, "-f", pwd}},
		{"", []string{"-A", "-d", cl, "-t", "u,u,u", "-n", "Cluster Cert", "-i", crt, "-f", pwd}},
	}
	for n, s := range steps {
		if _, err := run(s.stdin, s.args...); err != nil {
			return err
		}
		if n == 1 {
			// The CA certificate, for the nodes' databases to trust.
			pem, err := run("", "-L", "-d", srv, "-n", "QNet CA", "-a")
			if err != nil {
				return err
			}
			if err := os.WriteFile(caFile, pem, 0o644); err != nil {
				return err
			}
		}
	}
	files, err := os.ReadDir(cl)
	if err != nil {
		return err
	}
	for _, nd := range c.nodes {
		if err := os.Mkdir(nd.nssDir(), 0o700); err != nil {
			return err
		}
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(cl, f.Name()))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(nd.nssDir(), f.Name()), data, 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

// linkHost links namespace ns to the bridge through port and gives it addr.
func (c *Cluster) linkHost(ctx context.Context, ns, port, addr string) error {
	br := c.BridgeNetns()
	add := []string{"-n", ns, "addr", "add", addr + "/" + c.cfg.prefixLen(), "dev", "eth0"}
	if c.cfg.ipv6 {
		// Duplicate address detection would hold the address back for
		// seconds; the subnet is private to the cluster.
		add = append(add, "nodad")
	}
	for _, args := range [][]string{
		// Created from inside the bridge namespace with the peer placed
		// directly in ns: no interface ever exists in the caller's
		// namespace.
		{"-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", br, "link", "set", port, "master", "br0"},
		{"-n", br, "link", "set", port, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		add,
		{"-n", ns, "link", "set", "eth0", "up"},
	} {
		if err := c.ipCmd(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// spawnDaemon starts cmd (qnetd or a qdevice) from the spawner thread, with
// output appended to logPath after a marker line, in a process group of
// its own (qdevice forks a heuristics worker), dying with this process.
// The caller holds c.mu and has checked that the cluster is not closed.
func (c *Cluster) spawnDaemon(cmd *exec.Cmd, logPath, what string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child keeps its own copy
	fmt.Fprintf(logf, "=== testcluster: starting %s at %s ===\n", what, time.Now().UTC().Format(time.RFC3339Nano))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	res := make(chan error, 1)
	c.spawn <- spawnReq{cmd: cmd, res: res}
	if err := <-res; err != nil {
		return nil, fmt.Errorf("testcluster: starting %s: %v", what, err)
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{}), group: true}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// qnetdServer returns the cluster's qnetd, or an error without Qdevice.
func (c *Cluster) qnetdServer() (*qnetd, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("testcluster: cluster already torn down")
	}
	if c.qnetd == nil {
		return nil, errors.New("testcluster: the cluster has no quorum device (Qdevice option)")
	}
	return c.qnetd, nil
}

// StartQnetd starts the quorum device server (at the cluster's start, or
// again after StopQnetd or KillQnetd) and waits until it answers
// corosync-qnetd-tool. The qdevices connect again on their own.
func (c *Cluster) StartQnetd() error { return c.startQnetdWait(context.Background()) }

// startQnetdWait is StartQnetd with its wait bounded by ctx too.
func (c *Cluster) startQnetdWait(ctx context.Context) error {
	q, err := c.qnetdServer()
	if err != nil {
		return err
	}
	if err := c.startQnetd(q); err != nil {
		return err
	}
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	return c.waitDaemon(ctx, q.proc, "qnetd", q.logPath(), func(ctx context.Context) error {
		_, err := c.QnetdTool(ctx, "-s")
		return err
	})
}

func (c *Cluster) startQnetd(q *qnetd) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("testcluster: cluster already torn down")
	}
	if q.proc != nil && !q.proc.exited() {
		return fmt.Errorf("testcluster: qnetd already running (pid %d)", q.proc.pid)
	}
	// The lock file and local socket default to /var/run/corosync-qnetd
	// and the database to /etc/corosync/qnetd/nssdb: all moved into the
	// cluster's folder.
	set := fmt.Sprintf("nss_db_dir=%s,lock_file=%s,local_socket_file=%s",
		q.nssDir(), filepath.Join(q.dir, "qnetd.pid"), q.sockPath())
	cmd := exec.Command(c.tools.ip, "netns", "exec", q.ns, c.qdTools.qnetd, "-f", "-d", "-S", set)
	cmd.Dir = q.dir
	p, err := c.spawnDaemon(cmd, q.logPath(), "qnetd")
	if err != nil {
		return err
	}
	q.proc = p
	return nil
}

// waitDaemon polls ready until it succeeds, p exits or ctx ends.
func (c *Cluster) waitDaemon(ctx context.Context, p *proc, what, logPath string, ready func(context.Context) error) error {
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("testcluster: %s (pid %d) exited: %v\n%s", what, p.pid, p.err, fileTail(logPath, 30))
		}
		if last = ready(ctx); last == nil {
			return nil
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("testcluster: %s not ready: %v (last: %v)\n%s", what, err, last, fileTail(logPath, 30))
		}
	}
}

// fileTail returns the last n lines of a file, or a note why not.
func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tailLines(string(b), n)
}

// StopQnetd stops the quorum device server with SIGTERM (a clean shutdown:
// it closes its connections) and waits until it has exited.
func (c *Cluster) StopQnetd() error { return c.stopQnetd(syscall.SIGTERM) }

// KillQnetd kills the quorum device server with SIGKILL and waits until it
// has exited: the kernel still closes its connections, so the qdevices
// notice at once. For a server that vanishes silently, use CutQnetd.
func (c *Cluster) KillQnetd() error { return c.stopQnetd(syscall.SIGKILL) }

func (c *Cluster) stopQnetd(sig syscall.Signal) error {
	q, err := c.qnetdServer()
	if err != nil {
		return err
	}
	c.mu.Lock()
	p := q.proc
	c.mu.Unlock()
	if p == nil || p.exited() {
		return errors.New("testcluster: qnetd not running")
	}
	return stopProc(p, sig, "qnetd")
}

// CutQnetd sets the bridge side of the quorum device server's link down:
// it keeps running and its connections stay open, but nothing reaches it.
func (c *Cluster) CutQnetd() error { return c.setQnetdLink("down") }

// HealQnetd sets the quorum device server's link up again.
func (c *Cluster) HealQnetd() error { return c.setQnetdLink("up") }

func (c *Cluster) setQnetdLink(state string) error {
	if _, err := c.qnetdServer(); err != nil {
		return err
	}
	if err := c.ipCmd(context.Background(), "-n", c.BridgeNetns(), "link", "set", "nq", state); err != nil {
		return fmt.Errorf("testcluster: qnetd: link %s: %v", state, err)
	}
	return nil
}

// stopProc signals p (SIGTERM) or its whole process group (SIGKILL) and
// waits until p has been reaped and the rest of its group is gone too;
// after SIGTERM it falls back to SIGKILL when that takes longer than
// killTimeout.
func stopProc(p *proc, sig syscall.Signal, what string) error {
	return stopProcWithin(p, sig, what, killTimeout)
}

// stopProcWithin is stopProc with a bound of d on the wait after SIGTERM
// and after SIGKILL each.
func stopProcWithin(p *proc, sig syscall.Signal, what string, d time.Duration) error {
	target := p.pid
	if p.group {
		target = -p.pid
	}
	if sig == syscall.SIGTERM {
		// Only the daemon: it ends its helpers itself.
		target = p.pid
	}
	if err := syscall.Kill(target, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("testcluster: %s: kill %d: %v", what, target, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := waitProcGroup(ctx, p)
	if err != nil && sig != syscall.SIGKILL {
		return errors.Join(fmt.Errorf("testcluster: %s did not exit on %v within %v: %w", what, sig, d, err),
			stopProcWithin(p, syscall.SIGKILL, what, d))
	}
	if err != nil {
		return fmt.Errorf("testcluster: %s (pid %d) still running after SIGKILL: %w", what, p.pid, err)
	}
	return nil
}

// waitProcGroup waits until p has been reaped and, for a group leader,
// every other process of its group has gone (zombies count as gone: they
// were reparented and wait for init).
func waitProcGroup(ctx context.Context, p *proc) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if !p.group {
		return nil
	}
	for len(groupPids(p.pid)) > 0 {
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return fmt.Errorf("processes %v of group %d: %w", groupPids(p.pid), p.pid, err)
		}
	}
	return nil
}

// groupPids lists the live (not zombie) processes of process group pgid.
func groupPids(pgid int) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		j := bytes.LastIndexByte(b, ')')
		if j < 0 {
			continue
		}
		f := strings.Fields(string(b[j+1:]))
		// state, ppid, pgrp
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// StartQdevice starts corosync-qdevice in node i (whose corosync must be
// running) and waits until it answers corosync-qdevice-tool, by which time
// it has registered with votequorum; it connects to qnetd afterwards. The
// node's qdevice is started again by Start(i) after Kill(i) from then on.
func (c *Cluster) StartQdevice(i int) error { return c.startQdeviceWait(context.Background(), i) }

// startQdeviceWait is StartQdevice with its wait bounded by ctx too.
func (c *Cluster) startQdeviceWait(ctx context.Context, i int) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	if _, err := c.qnetdServer(); err != nil {
		return err
	}
	if err := c.checkAlive(nd); err != nil {
		return fmt.Errorf("testcluster: %w", err)
	}
	p, err := c.startQdevice(nd)
	if err != nil {
		return err
	}
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	return c.waitDaemon(ctx, p, fmt.Sprintf("qdevice of node %d", i), nd.qdeviceLogPath(), func(ctx context.Context) error {
		_, err := c.QdeviceTool(ctx, i, "-s")
		return err
	})
}

func (c *Cluster) startQdevice(nd *node) (*proc, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("testcluster: cluster already torn down")
	}
	if nd.qdev != nil && !nd.qdev.exited() {
		return nil, fmt.Errorf("testcluster: node %d: qdevice already running (pid %d)", nd.id, nd.qdev.pid)
	}
	// As for qnetd: lock file, socket and database in the node's folder.
	set := fmt.Sprintf("net_nss_db_dir=%s,lock_file=%s,local_socket_file=%s",
		nd.nssDir(), filepath.Join(nd.dir, "qdevice.pid"), nd.qdeviceSockPath())
	if c.cfg.qdevice.MasterWins {
		set += ",master_wins=on"
	}
	// The system's environment, not the install's: it is Debian's
	// qdevice with Debian's client libraries, which talk to any corosync
	// over IPC.
	cmd := exec.Command(c.tools.ip, "netns", "exec", nd.ns, c.qdTools.qdevice, "-f", "-d", "-S", set)
	cmd.Dir = nd.dir
	p, err := c.spawnDaemon(cmd, nd.qdeviceLogPath(), fmt.Sprintf("qdevice on node %d", nd.id))
	if err != nil {
		return nil, err
	}
	nd.qdev, nd.qdevWanted = p, true
	return p, nil
}

// StopQdevice stops node i's qdevice with SIGTERM (it unregisters from
// votequorum: the node's Qdevice column reads NR) and waits until it and
// its heuristics worker have exited. Start(i) does not restart it.
func (c *Cluster) StopQdevice(i int) error { return c.stopQdevice(i, syscall.SIGTERM) }

// KillQdevice kills node i's qdevice and its heuristics worker with
// SIGKILL and waits until they have exited: it stays registered, and
// votequorum marks it not alive (NA) when its timeout passes without a
// poll. Start(i) does not restart it.
func (c *Cluster) KillQdevice(i int) error { return c.stopQdevice(i, syscall.SIGKILL) }

func (c *Cluster) stopQdevice(i int, sig syscall.Signal) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	c.mu.Lock()
	p := nd.qdev
	nd.qdevWanted = false
	c.mu.Unlock()
	if p == nil || p.exited() {
		return fmt.Errorf("testcluster: node %d: qdevice not running", i)
	}
	return stopProc(p, sig, fmt.Sprintf("node %d: qdevice", i))
}

// killQdevice kills node nd's qdevice, if running, before its corosync
// goes: a qdevice would exit on its own once corosync is gone, but only
// after logging errors and at a time of its choosing.
func (c *Cluster) killQdevice(nd *node) error {
	c.mu.Lock()
	p := nd.qdev
	c.mu.Unlock()
	if p == nil || p.exited() {
		return nil
	}
	return stopProc(p, syscall.SIGKILL, fmt.Sprintf("node %d: qdevice", nd.id))
}

// QdevicePid returns the pid of node i's qdevice, or 0 when it is not
// running.
func (c *Cluster) QdevicePid(i int) int {
	nd, err := c.node(i)
	if err != nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if nd.qdev == nil || nd.qdev.exited() {
		return 0
	}
	return nd.qdev.pid
}

// QnetdPid returns the pid of the quorum device server, or 0 when it is
// not running.
func (c *Cluster) QnetdPid() int {
	q, err := c.qnetdServer()
	if err != nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if q.proc == nil || q.proc.exited() {
		return 0
	}
	return q.proc.pid
}

// QnetdAddr returns the quorum device server's address, "" without
// Qdevice.
func (c *Cluster) QnetdAddr() string {
	q, err := c.qnetdServer()
	if err != nil {
		return ""
	}
	return q.addr
}

// QnetdNetns returns the name of the quorum device server's namespace, ""
// without Qdevice.
func (c *Cluster) QnetdNetns() string {
	q, err := c.qnetdServer()
	if err != nil {
		return ""
	}
	return q.ns
}

// QnetdLogPath returns the file that collects qnetd's output (with -d,
// debug) across restarts, "" without Qdevice.
func (c *Cluster) QnetdLogPath() string {
	q, err := c.qnetdServer()
	if err != nil {
		return ""
	}
	return q.logPath()
}

// QdeviceLogPath returns the file that collects node i's qdevice output
// (with -d, debug) across restarts, "" when there is no node i.
func (c *Cluster) QdeviceLogPath(i int) string { return c.nodePath(i, (*node).qdeviceLogPath) }

// QnetdTool runs corosync-qnetd-tool with args (e.g. "-s", or "-l" for the
// clusters and their nodes' votes) against the cluster's qnetd and
// returns its output; the error includes it.
func (c *Cluster) QnetdTool(ctx context.Context, args ...string) (string, error) {
	q, err := c.qnetdServer()
	if err != nil {
		return "", err
	}
	return runOutput(ctx, c.qdTools.qnetdTool, append([]string{"-p", q.sockPath()}, args...)...)
}

// QdeviceTool runs corosync-qdevice-tool with args (e.g. "-s", "-s -v")
// against node i's qdevice and returns its output; the error includes it.
func (c *Cluster) QdeviceTool(ctx context.Context, i int, args ...string) (string, error) {
	nd, err := c.node(i)
	if err != nil {
		return "", err
	}
	if _, err := c.qnetdServer(); err != nil {
		return "", err
	}
	return runOutput(ctx, c.qdTools.qdeviceTool, append([]string{"-p", nd.qdeviceSockPath()}, args...)...)
}

// QdeviceState returns the State line of node i's `corosync-qdevice-tool
// -s` (the connection to qnetd: "Connected", "Connect failed", ...).
func (c *Cluster) QdeviceState(ctx context.Context, i int) (string, error) {
	out, err := c.QdeviceTool(ctx, i, "-s")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "State" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("node %d: no State line in corosync-qdevice-tool -s:\n%s", i, out)
}

// runOutput runs a program in the caller's namespace, bounded by ctx and
// cmdTimeout, and returns its combined output.
func runOutput(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := execCommand(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// qdeviceVoting reports whether view s shows every member's quorum device
// registered, alive and voting, and the device's row.
func qdeviceVoting(s Status) bool {
	if s.Qdevice == nil || len(s.Table) == 0 {
		return false
	}
	for _, m := range s.Table {
		if !m.Qdevice.Registered || !m.Qdevice.Alive || !m.Qdevice.CastVote {
			return false
		}
	}
	return true
}
