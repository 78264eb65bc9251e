//go:build linux

package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// proc is one process the harness started: a corosync, qnetd or a qdevice.
// done is closed once it has been reaped.
type proc struct {
	cmd   *exec.Cmd
	pid   int
	done  chan struct{}
	err   error // Wait's result, valid after done
	group bool  // leads a process group of its own (qnetd, qdevice)
}

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

// waitReady waits until node nd's corosync answers corosync-quorumtool -s
// (corosync-cmapctl without a quorum provider), i.e. clients can connect.
func (c *Cluster) waitReady(ctx context.Context, nd *node) error {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	var last error
	for {
		if err := c.checkAlive(nd); err != nil {
			return err
		}
		_, err := c.view(ctx, nd.id)
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
// With a quorum device, it then starts the node's qdevice again unless
// StopQdevice or KillQdevice stopped it (or it never ran: NoStart).
func (c *Cluster) Start(i int) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	if err := c.startNode(nd); err != nil {
		return err
	}
	if err := c.waitReady(context.Background(), nd); err != nil {
		return err
	}
	c.mu.Lock()
	want := nd.qdevWanted
	c.mu.Unlock()
	if want {
		return c.StartQdevice(i)
	}
	return nil
}

// Spawn starts node i's corosync and returns at once, so that a test can
// watch clients while corosync is still starting. It never starts the
// node's qdevice, which would give up on a corosync not answering yet:
// StartQdevice does, once corosync answers.
func (c *Cluster) Spawn(i int) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	return c.startNode(nd)
}

// Kill sends SIGKILL to node i's corosync and waits until it has exited.
// A qdevice running in the node is killed first (it would exit on its own
// once corosync is gone); Start(i) starts it again.
func (c *Cluster) Kill(i int) error {
	nd, p, err := c.runningProc(i)
	if err != nil {
		return err
	}
	if err := c.killQdevice(nd); err != nil {
		return err
	}
	return c.killProc(nd, p)
}

// runningProc returns node i and its corosync process, or an error when
// there is no such node or its corosync is not running.
func (c *Cluster) runningProc(i int) (*node, *proc, error) {
	nd, err := c.node(i)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	p := nd.proc
	c.mu.Unlock()
	if p == nil || p.exited() {
		return nil, nil, fmt.Errorf("testcluster: node %d: corosync not running", i)
	}
	return nd, p, nil
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
	_, p, err := c.runningProc(i)
	if err != nil {
		return err
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
