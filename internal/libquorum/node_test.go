//go:build libquorum && cgo && linux

package libquorum

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// node is one corosync running alone in a network namespace of its own,
// started by a test. The namespace and process are removed by t.Cleanup.
type node struct {
	t    *testing.T
	ns   string // network namespace name, prefixed h2-
	dir  string
	conf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and runs corosync")
	}
	if _, err := exec.LookPath("corosync"); err != nil {
		t.Skip("corosync is not installed")
	}
}

// ipcModes are corosync's IPC transports: libqb shared memory (the
// default) and sockets (system.qb_ipc_type: socket).
var ipcModes = []string{"shm", "socket"}

// newNode creates the namespace and configuration; call start to run it. ipc
// is "shm" or "socket".
func newNode(t *testing.T, ipc string) *node {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	ns := fmt.Sprintf("h2-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	n := &node{t: t, ns: ns, dir: dir, conf: filepath.Join(dir, "corosync.conf")}
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`totem {
  version: 2
  cluster_name: h2test
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
  state_dir: %s
%s}
`, filepath.Join(dir, "state"), ipcLine(ipc))
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		n.kill()
		if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v: %s", ns, err, out)
		}
	})
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	return n
}

func ipcLine(ipc string) string {
	if ipc == "socket" {
		return "  qb_ipc_type: socket\n"
	}
	return ""
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// start runs corosync in the namespace and waits until a client can connect.
func (n *node) start() {
	n.t.Helper()
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		n.t.Fatal("corosync already running")
	}
	// ip netns exec gives corosync a private mount namespace, where a fresh
	// /run keeps its pid-file lock apart from any other corosync.
	cmd := exec.Command("ip", "netns", "exec", n.ns, "sh", "-c",
		"mount -t tmpfs tmpfs /run && exec corosync -f -c "+n.conf)
	// A file, not a buffer, so that exec starts no copying goroutine.
	logf, err := os.OpenFile(filepath.Join(n.dir, "corosync.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.mu.Unlock()
		n.t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		n.t.Fatal(err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	done := n.done
	go n.reap(cmd, done)
	n.mu.Unlock()
	n.waitReady()
}

// reap waits for corosync; leak checks ignore it.
func (n *node) reap(cmd *exec.Cmd, done chan struct{}) {
	cmd.Wait()
	close(done)
}

func (n *node) waitReady() {
	n.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := n.dial(context.Background(), nil)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("corosync in %s did not come up: %v\n%s", n.ns, err, n.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *node) output() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "corosync.log"))
	return string(b)
}

func (n *node) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		n.t.Fatal("corosync not running")
	}
	return n.cmd.Process.Pid
}

func (n *node) signal(sig syscall.Signal) {
	n.t.Helper()
	if err := syscall.Kill(n.pid(), sig); err != nil {
		n.t.Fatalf("signal %v: %v", sig, err)
	}
}

// kill stops corosync (resuming it first if frozen) and waits for it.
func (n *node) kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		n.t.Errorf("corosync pid %d did not exit", cmd.Process.Pid)
	}
}

// in runs fn on an OS thread inside the node's network namespace. The thread
// is discarded afterwards.
func (n *node) in(fn func()) {
	n.t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f, err := os.Open("/var/run/netns/" + n.ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		n.t.Fatalf("entering netns %s: %v", n.ns, err)
	}
}

func (n *node) dial(ctx context.Context, trusted []uint32) (c *Conn, err error) {
	n.in(func() { c, err = Dial(ctx, trusted) })
	return c, err
}

// mustDial connects and registers the Close.
func (n *node) mustDial() *Conn {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := n.dial(ctx, nil)
	if err != nil {
		n.t.Fatalf("Dial: %v", err)
	}
	n.t.Cleanup(func() { c.Close() })
	return c
}

// waitNotifications polls the fd and dispatches until want notifications
// arrived or the deadline passes.
func waitNotifications(t *testing.T, c *Conn, want int, timeout time.Duration) []Notification {
	t.Helper()
	var got []Notification
	deadline := time.Now().Add(timeout)
	for len(got) < want {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("got %d notifications, want %d: %+v", len(got), want, got)
		}
		fds := []unix.PollFd{{Fd: int32(c.Fd()), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatal(err)
		}
		if err := c.Dispatch(func(n Notification) { got = append(got, n) }); err != nil {
			t.Fatalf("Dispatch: %v (after %+v)", err, got)
		}
	}
	return got
}
