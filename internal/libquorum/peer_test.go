//go:build libquorum && cgo && linux

package libquorum

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/qbipc/qbipctest"
	"github.com/corosync-go/quorum/internal/testcluster"
)

// nobody is the unprivileged uid and gid the tests run clients and servers as.
const nobody = 65534

// asNobody returns the command that runs argv inside the node's namespace as
// uid and gid nobody with no supplementary groups.
func (n *node) asNobody(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{fmt.Sprintf("--reuid=%d", nobody), fmt.Sprintf("--regid=%d", nobody),
		"--clear-groups"}, argv...)
	return n.cl.Exec(ctx, n.i, "setpriv", args...)
}

const helperEnv = "H2_LIBQUORUM_HELPER"

// TestHelperDial is not a test of its own: TestAccessDenied runs the test
// binary as an unprivileged user with helperEnv set, and this prints what
// Dial and Quorate gave there.
func TestHelperDial(t *testing.T) {
	if os.Getenv(helperEnv) != "dial" {
		t.Skip("helper for TestAccessDenied")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, nil)
	if err != nil {
		fmt.Printf("RESULT %v\n", err)
		return
	}
	defer c.Close()
	q, err := c.Quorate(ctx)
	fmt.Printf("RESULT quorate=%v err=%v\n", q, err)
}

func TestAccessDenied(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv is not installed")
	}
	n := newNode(t, "shm")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	helper := func() string {
		t.Helper()
		out, err := n.cl.RerunAs(ctx, t, n.i, nobody, "TestHelperDial", helperEnv+"=dial")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(out, "\n") {
			if r, ok := strings.CutPrefix(line, "RESULT "); ok {
				return r
			}
		}
		t.Fatalf("helper printed no result:\n%s", out)
		return ""
	}

	got := helper()
	want := (&cs.Error{Op: opInit, Code: cs.ErrAccess}).Error()
	if got != want {
		t.Fatalf("unprivileged Dial: %q, want %q", got, want)
	}

	// Granting the uid makes the same client work, so the refusal above was
	// corosync's access control and nothing else.
	if err := n.cl.GrantUID(n.i, nobody); err != nil {
		t.Fatal(err)
	}
	if got := helper(); got != "quorate=true err=<nil>" {
		t.Fatalf("Dial after uidgid was granted: %q", got)
	}
}

// startFakeServer compiles testdata/fakeserver.c and runs it as uid nobody in
// the node's namespace. It returns the server's pid.
func startFakeServer(t *testing.T, n *node, ipc string) int {
	t.Helper()
	return startFake(t, n, "fakeserver", ipc)
}

// startFake compiles testdata/<name>.c and runs it as startFakeServer does.
func startFake(t *testing.T, n *node, name, ipc string) int {
	t.Helper()
	for _, tool := range []string{"cc", "pkg-config", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "libqb").Output()
	if err != nil {
		t.Skipf("pkg-config libqb: %v (install libqb-dev)", err)
	}
	bin := filepath.Join(testcluster.PublicDir(t), name)
	args := append([]string{"-o", bin, "testdata/" + name + ".c"}, strings.Fields(string(flags))...)
	if out, err := exec.Command("cc", args...).CombinedOutput(); err != nil {
		t.Fatalf("building the fake server: %v\n%s", err, out)
	}
	// Killed by the Cleanup below; the context only bounds the test.
	cmd := n.asNobody(context.Background(), bin, ipc)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		removeServerShm(t, cmd.Process.Pid)
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("fake server said %q", line)
		}
		ready <- err
		io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("fake server: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fake server did not start")
	}
	return cmd.Process.Pid
}

// removeServerShm removes the shared-memory files of the connections that
// the killed server pid served, which it had no chance to remove itself:
// /dev/shm/qb-<pid>-<client pid>-<fd>-<random>/ (libqb 1.0.4 and later) and
// /dev/shm/qb-<service>-<kind>-<pid>-<client pid>-<fd>-{header,data} (before).
func removeServerShm(t *testing.T, pid int) {
	patterns := []string{fmt.Sprintf("/dev/shm/qb-%d-*", pid)}
	for _, service := range []string{"quorum", "cmap", "votequorum"} {
		patterns = append(patterns, fmt.Sprintf("/dev/shm/qb-%s-*-%d-*", service, pid))
	}
	for _, pattern := range patterns {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			if err := os.RemoveAll(p); err != nil {
				t.Errorf("removing the fake server's %s: %v", p, err)
			}
		}
	}
}

// TestPeerCheck: while corosync is down, an unprivileged process binds its
// abstract socket name and answers like it. libquorum accepts it; the peer
// check must not.
func TestPeerCheck(t *testing.T) {
	for _, ipc := range ipcModes {
		t.Run(ipc, func(t *testing.T) { testPeerCheck(t, ipc) })
	}
	// Model V0: quorum_initialize, and its callback's count check.
	t.Run("shm-v0", func(t *testing.T) {
		withV0(t)
		testPeerCheck(t, "shm")
	})
}

func testPeerCheck(t *testing.T, ipc string) {
	n := newNode(t, ipc)
	n.kill() // the namespace stays, without corosync
	pid := startFakeServer(t, n, ipc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := n.dial(ctx, nil)
	ce := wantCode(t, err, cs.ErrSecurity)
	t.Logf("refused: %v", err)
	for _, want := range []string{fmt.Sprintf("pid %d", pid), fmt.Sprintf("runs as uid %d", nobody),
		fmt.Sprintf("quorum.WithTrustedUIDs(%d)", nobody)} {
		if !strings.Contains(ce.Error(), want) {
			t.Errorf("error %q does not mention %q", ce.Error(), want)
		}
	}

	// Trusting that uid lets the very same server through, so it was the
	// peer check, not the fake server, that refused above.
	c, err := n.dial(ctx, []uint32{1000, nobody})
	if err != nil {
		t.Fatalf("Dial trusting uid %d: %v", nobody, err)
	}
	defer c.Close()
	checkModel(t, c)
	if q, err := c.Quorate(ctx); err != nil || !q {
		t.Fatalf("Quorate from the fake server = %v, %v", q, err)
	}

	// A notification claiming more members than a message can hold is
	// refused instead of read past libquorum's buffer.
	if err := c.TrackStart(ctx, trackChanges); err != nil {
		t.Fatalf("TrackStart on the fake server: %v", err)
	}
	if err := qbipctest.WaitReadable(c.Fd(), 5*time.Second); err != nil {
		t.Fatalf("poll for the fake notification: %v", err)
	}
	err = c.Dispatch(func(n Notification) { t.Errorf("bogus notification delivered: %+v", n) })
	wantCode(t, err, cs.ErrMessageError)
	t.Logf("bogus notification: %v", err)
}

func TestCheckPeerNotASocket(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wantCode(t, CheckPeer(int(f.Fd()), nil), cs.ErrSecurity)
}
