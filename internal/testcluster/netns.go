//go:build linux

package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The main goroutine keeps the process's main thread to itself. InNode runs
// fn on a locked thread that the runtime discards afterwards, but the main
// thread is never discarded: were fn to run there, the whole process would
// stay in the node's network namespace (and `ip netns pids`, which teardown
// kills, would list it).
func init() { runtime.LockOSThread() }

// netnsDir is where `ip netns add` mounts named namespaces.
const netnsDir = "/run/netns"

// InNode runs fn on an OS thread that has joined node i's network namespace
// and returns fn's error. Sockets created by fn's own goroutine belong to
// that namespace for their whole life, so a client connected inside fn talks
// to node i's corosync (abstract unix sockets are per network namespace)
// and keeps doing so after InNode returns. Goroutines that fn starts run on
// other threads, in the caller's namespace. The mount namespace is not
// changed: /dev/shm is the one corosync uses too.
//
// The thread is never handed back to the Go scheduler: the runtime discards
// it when fn's goroutine ends. A panic in fn, or fn ending its goroutine
// with runtime.Goexit (t.FailNow), is returned as an error.
func (c *Cluster) InNode(i int, fn func() error) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	return inNetns(nd.ns, fn)
}

// inNetns runs fn on a discarded thread inside the named namespace.
func inNetns(name string, fn func() error) error {
	if fn == nil {
		return errors.New("testcluster: nil func")
	}
	fd, err := unix.Open(filepath.Join(netnsDir, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("testcluster: open netns %s: %w", name, err)
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked, see the doc comment.
		runtime.LockOSThread()
		// Overwritten unless fn ends its goroutine with runtime.Goexit,
		// which recover does not see; InNode must return then too.
		err := fmt.Errorf("testcluster: function run in netns %s called runtime.Goexit (t.Fatal there?)", name)
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("testcluster: panic in function run in netns %s: %v\n%s", name, r, debug.Stack())
			}
			errc <- err
		}()
		serr := unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if serr != nil {
			err = fmt.Errorf("testcluster: setns %s: %w", name, serr)
			return
		}
		err = fn()
	}()
	return <-errc
}

// ownerPid extracts the creating pid from a name made by this package
// ("qtc-<pid>-..."), ok false for any other name.
func ownerPid(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok || digits == "" {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// pidAlive reports whether a process with that pid exists (a zombie counts:
// its parent is still about to reap it).
func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// stale reports whether name belongs to a run of this package whose process
// is gone. A run never considers its own names stale.
func stale(name string) bool {
	pid, ok := ownerPid(name)
	return ok && pid != os.Getpid() && !pidAlive(pid)
}

// gone reports whether pid no longer runs (absent or a zombie).
func gone(pid int) bool {
	st, err := procState(pid)
	return err != nil || st == 'Z' || st == 'X'
}

// killAndWait sends SIGKILL to pids and waits, bounded by ctx, until they
// are gone. Processes that are not our children are reaped by init, so
// absence (or zombie state) is what is waited for.
func killAndWait(ctx context.Context, pids []int) error {
	var killed []int
	for _, pid := range pids {
		// Never this process: a thread of it may sit in a node's
		// namespace (InNode), which makes `ip netns pids` list it.
		if pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = append(killed, pid)
		}
	}
	for _, pid := range killed {
		for !gone(pid) {
			if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
				return fmt.Errorf("pid %d survived SIGKILL: %w", pid, err)
			}
		}
	}
	return nil
}

// netnsPids lists the processes inside a named namespace.
func netnsPids(ctx context.Context, ip, ns string) ([]int, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := execCommand(ctx, ip, "netns", "pids", ns)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns pids %s: %w", ns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// deleteNetns kills whatever still runs in ns and deletes it. A namespace
// that no longer exists is not an error.
func deleteNetns(ctx context.Context, ip, ns string) error {
	if _, err := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	pids, err := netnsPids(ctx, ip, ns)
	if err == nil {
		err = killAndWait(ctx, pids)
	}
	if err != nil {
		if _, serr := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(serr, os.ErrNotExist) {
			return nil // deleted concurrently by another sweeper
		}
		return fmt.Errorf("netns %s: %w", ns, err)
	}
	if err := runTool(ctx, ip, "netns", "del", ns); err != nil {
		if _, serr := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(serr, os.ErrNotExist) {
			return nil // deleted concurrently by another sweeper
		}
		return err
	}
	return nil
}

// removeShm deletes what a corosync with this (dead) pid left in /dev/shm:
// its IPC connection folders or files and its blackbox files.
func removeShm(pid int) {
	matches, _ := filepath.Glob("/dev/shm/qb-*")
	for _, m := range matches {
		if shmOf(filepath.Base(m), pid) {
			_ = os.RemoveAll(m)
		}
	}
}

// flatShmRE matches the /dev/shm files of an IPC connection as libqb up to
// 1.0.3 names them, with no folder: qb-<service>-<ring>-<server pid>-
// <client pid>-<fd>-header and -data for each shared-memory ring, and
// qb-<service>-control-<server pid>-<client pid>-<fd> in socket mode.
var flatShmRE = regexp.MustCompile(`^qb-[A-Za-z0-9_]+-(?:request|response|event|control)-(\d+)-\d+-\d+(?:-header|-data)?$`)

// shmOf reports whether the /dev/shm entry name belongs to the corosync
// with this pid: an IPC connection folder qb-<pid>-<client pid>-<fd>-XXXXXX
// (libqb 1.0.4 and later), an IPC file of libqb up to 1.0.3 (flatShmRE),
// or a blackbox file qb-corosync-<pid>-blackbox-header/-data.
func shmOf(name string, pid int) bool {
	p := strconv.Itoa(pid)
	if strings.HasPrefix(name, "qb-"+p+"-") || strings.HasPrefix(name, "qb-corosync-"+p+"-") {
		return true
	}
	m := flatShmRE.FindStringSubmatch(name)
	return m != nil && m[1] == p
}

// sweep removes leftovers of earlier runs whose process is gone: their
// corosync processes (found by the config path in their command line, or
// for corosync 2.x in COROSYNC_MAIN_CONFIG_FILE of their environment),
// their namespaces (with whatever runs inside) and their folders (with the
// /dev/shm files of the corosync pids recorded there). Live runs, including
// this one, are never touched.
func sweep(ctx context.Context, ip string) error {
	var errs []error

	// Processes first: a namespace can only be deleted cleanly once empty,
	// and a corosync whose namespace name was already deleted is found only
	// this way.
	tmpPrefix := filepath.Join(os.TempDir(), namePrefix)
	var victims []int
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(raw, []byte("corosync")) {
			continue
		}
		if !bytes.Contains(raw, []byte(tmpPrefix)) {
			// corosync 2.x gets its config path in the environment.
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			raw = append(raw, env...)
		}
		for _, arg := range strings.Split(string(raw), "\x00") {
			j := strings.Index(arg, tmpPrefix)
			if j < 0 {
				continue
			}
			name := strings.TrimPrefix(arg[j:], os.TempDir()+"/")
			if k := strings.IndexAny(name, "/' "); k >= 0 {
				name = name[:k]
			}
			if stale(name) {
				victims = append(victims, pid)
			}
			break
		}
	}
	if err := killAndWait(ctx, victims); err != nil {
		errs = append(errs, err)
	}

	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			if stale(e.Name()) {
				if err := deleteNetns(ctx, ip, e.Name()); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}

	if ents, err := os.ReadDir(os.TempDir()); err == nil {
		for _, e := range ents {
			if !e.IsDir() || !stale(e.Name()) {
				continue
			}
			dir := filepath.Join(os.TempDir(), e.Name())
			files, _ := filepath.Glob(filepath.Join(dir, "n*", "pids"))
			for _, f := range files {
				b, _ := os.ReadFile(f)
				for _, s := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(s); err == nil && pid > 0 && !pidAlive(pid) {
						removeShm(pid)
					}
				}
			}
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
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
