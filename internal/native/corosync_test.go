//go:build linux

package native

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// corosyncNode is a single-node corosync that a test started in a network
// namespace of its own (named h3-...), torn down by the test's cleanup.
// internal/testcluster will replace it once that package lands.
type corosyncNode struct {
	ns  string
	cmd *exec.Cmd
}

// startCorosync starts a single-node corosync with votequorum, in SHM or
// socket IPC mode, and waits until it is quorate. It skips the test when
// not root or corosync is missing.
func startCorosync(tb testing.TB, socketIPC bool) *corosyncNode {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("real-corosync tests need root (network namespaces)")
	}
	for _, p := range []string{"corosync", "corosync-quorumtool", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			tb.Skipf("real-corosync tests need %s: %v", p, err)
		}
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	n := &corosyncNode{ns: "h3-" + hex.EncodeToString(rnd[:])}
	dir := tb.TempDir()
	ipcType := ""
	if socketIPC {
		ipcType = "  qb_ipc_type: socket\n"
	}
	conf := fmt.Sprintf(`totem {
  version: 2
  cluster_name: h3native
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
`, dir, ipcType)
	confPath := filepath.Join(dir, "corosync.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "add", n.ns).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add: %v: %s", err, out)
	}
	tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.ns).Run() })
	if out, err := exec.Command("ip", "-n", n.ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		tb.Fatalf("lo up: %v: %s", err, out)
	}
	log, err := os.Create(filepath.Join(dir, "corosync.log"))
	if err != nil {
		tb.Fatal(err)
	}
	// ip netns exec gives corosync a private mount namespace; a tmpfs on
	// /run keeps its pid-file lock away from any other corosync.
	n.cmd = exec.Command("ip", "netns", "exec", n.ns, "sh", "-c",
		"mount -t tmpfs tmpfs /run && exec corosync -f -c "+confPath)
	n.cmd.Stdout, n.cmd.Stderr = log, log
	if err := n.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGCONT)
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		log.Close()
		if tb.Failed() {
			b, _ := os.ReadFile(log.Name())
			tb.Logf("corosync log:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if exec.Command("ip", "netns", "exec", n.ns, "corosync-quorumtool", "-s").Run() == nil {
			return n
		}
		if time.Now().After(deadline) {
			tb.Fatal("corosync did not become quorate within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (n *corosyncNode) signal(tb testing.TB, s syscall.Signal) {
	tb.Helper()
	if err := n.cmd.Process.Signal(s); err != nil {
		tb.Fatalf("signal %v: %v", s, err)
	}
}

// in runs fn on a thread inside the node's network namespace, so that
// sockets fn creates reach this node's corosync.
func (n *corosyncNode) in(tb testing.TB, fn func()) {
	tb.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		tb.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + n.ns)
	if err != nil {
		tb.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		tb.Fatalf("setns: %v", err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime then retires it
			// instead of reusing it in the wrong namespace.
			runtime.LockOSThread()
			tb.Errorf("restore netns: %v", err)
		}
	}()
	fn()
}

func (n *corosyncNode) dial(tb testing.TB) *Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c *Conn
	var err error
	n.in(tb, func() { c, err = Dial(ctx, nil) })
	if err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	return c
}

// waitReadable waits for fd to poll readable, at most d.
func waitReadable(fd int, d time.Duration) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, _ := unix.Poll(pfd, int(d/time.Millisecond))
	return n > 0
}
