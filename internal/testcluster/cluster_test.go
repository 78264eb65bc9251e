//go:build linux

package testcluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pidLog collects the corosync pids the tests saw, to check afterwards that
// none survived and that their /dev/shm files are gone.
type pidLog struct {
	mu   sync.Mutex
	pids []int
}

func (p *pidLog) add(c *Cluster) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 1; i <= c.N(); i++ {
		if pid := c.Pid(i); pid != 0 {
			p.pids = append(p.pids, pid)
		}
	}
}

func (p *pidLog) list() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.pids...)
}

// TestCluster runs the cluster tests in parallel inside a group, then checks
// that nothing of this process is left.
func TestCluster(t *testing.T) {
	var pids pidLog
	t.Run("group", func(t *testing.T) {
		t.Run("Lifecycle", func(t *testing.T) { t.Parallel(); testLifecycle(t, &pids) })
		t.Run("TwoNodeSocket", func(t *testing.T) { t.Parallel(); testTwoNodeSocket(t, &pids) })
		t.Run("Votes", func(t *testing.T) { t.Parallel(); testVotes(t, &pids) })
	})
	checkNoLeftovers(t, pids.list())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitMembers(t *testing.T, c *Cluster, i int, want ...uint32) time.Duration {
	t.Helper()
	start := time.Now()
	must(t, c.WaitMembers(context.Background(), i, want))
	return time.Since(start)
}

func status(t *testing.T, c *Cluster, i int) Status {
	t.Helper()
	st, err := c.Quorumtool(i)
	must(t, err)
	return st
}

// dialAbstract connects to the abstract unix socket named like libqb does
// (name padded with NULs to the full sun_path, address length 110).
func dialAbstract(name string) error {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	return syscall.Connect(fd, abstractAddr(name))
}

// abstractAddr pads name to the whole sun_path. The standard library's
// SockaddrUnix accepts that (address length 110); x/sys/unix's rejects a
// 108-byte name with EINVAL.
func abstractAddr(name string) *syscall.SockaddrUnix {
	return &syscall.SockaddrUnix{Name: "@" + name + strings.Repeat("\x00", 108-1-len(name))}
}

// ipcConnectionType does the libqb handshake on the "quorum" socket and
// returns the connection type the server chose (0 socket, 1 shm).
func ipcConnectionType() (int32, error) {
	fd, typ, err := ipcConnect()
	if err == nil {
		unix.Close(fd)
	}
	return typ, err
}

// ipcConnect does the libqb handshake on the "quorum" socket and returns
// the connected socket, which holds the connection (and its /dev/shm
// files) open until closed.
func ipcConnect() (_ int, _ int32, err error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, 0, err
	}
	if err := syscall.Connect(fd, abstractAddr("quorum")); err != nil {
		return 0, 0, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return 0, 0, err
	}
	req := make([]byte, 24)
	binary.LittleEndian.PutUint32(req[0:], 0xffffffff) // QB_IPC_MSG_AUTHENTICATE
	binary.LittleEndian.PutUint32(req[8:], 24)
	binary.LittleEndian.PutUint32(req[16:], 1<<20)
	if _, err := unix.Write(fd, req); err != nil {
		return 0, 0, err
	}
	resp := make([]byte, 12328)
	for got := 0; got < len(resp); {
		n, err := unix.Read(fd, resp[got:])
		if err != nil {
			return 0, 0, err
		}
		if n == 0 {
			return 0, 0, fmt.Errorf("EOF after %d bytes", got)
		}
		got += n
	}
	if e := int32(binary.LittleEndian.Uint32(resp[16:])); e != 0 {
		return 0, 0, fmt.Errorf("handshake refused: errno %d", -e)
	}
	return fd, int32(binary.LittleEndian.Uint32(resp[24:])), nil
}

// netnsID identifies a network namespace by device and inode.
func netnsID(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), nil
}

func testLifecycle(t *testing.T, pids *pidLog) {
	start := time.Now()
	c := Start(t, 3)
	t.Logf("3-node cluster formed in %v", time.Since(start).Round(10*time.Millisecond))
	pids.add(c)

	st := status(t, c, 1)
	if !st.Quorate || !slices.Equal(st.Members, []uint32{1, 2, 3}) || st.NodeID != 1 ||
		st.ExpectedVotes != 3 || st.TotalVotes != 3 || st.Quorum != 2 || st.Nodes != 3 {
		t.Fatalf("node 1 view: %+v", st)
	}
	var table []string
	for _, m := range st.Table {
		table = append(table, fmt.Sprintf("%d:%d:%s:%v", m.NodeID, m.Votes, m.Name, m.Local))
	}
	wantTable := []string{"1:1:node1:true", "2:1:node2:false", "3:1:node3:false"}
	if !c.Install().Version.AtLeast(3, 0, 0) {
		// corosync-quorumtool 2.x names a node by its ring0_addr,
		// resolved through DNS: the address here.
		wantTable = []string{"1:1:10.213.0.1:true", "2:1:10.213.0.2:false", "3:1:10.213.0.3:false"}
	}
	if !slices.Equal(table, wantTable) {
		t.Errorf("membership table: %v", table)
	}
	ring0 := st.Ring
	if ring0.NodeID != 1 {
		t.Errorf("ring id %v: want node 1", ring0)
	}

	if !t.Run("InNode", func(t *testing.T) {
		nodeNS, err := netnsID(filepath.Join(netnsDir, c.Netns(1)))
		must(t, err)
		err = c.InNode(1, func() error {
			here, err := netnsID("/proc/thread-self/ns/net")
			if err != nil {
				return err
			}
			if here != nodeNS {
				return fmt.Errorf("thread in netns %s, want node 1's %s", here, nodeNS)
			}
			return dialAbstract("quorum")
		})
		if err != nil {
			t.Fatalf("dial inside node 1: %v", err)
		}
		// The bridge namespace has no corosync: the same dial is refused
		// there, which shows the success above came from node 1's.
		err = inNetns(c.BridgeNetns(), func() error { return dialAbstract("quorum") })
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial in bridge netns: %v, want ECONNREFUSED", err)
		}
		// The caller's thread must not have moved.
		runtime.LockOSThread()
		here, err := netnsID("/proc/thread-self/ns/net")
		runtime.UnlockOSThread()
		must(t, err)
		if here == nodeNS {
			t.Fatal("caller's thread is in node 1's netns")
		}
		err = c.InNode(1, func() error { panic("boom") })
		if err == nil || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("panic in fn: %v", err)
		}
		err = c.InNode(1, func() error { runtime.Goexit(); return nil })
		if err == nil || !strings.Contains(err.Error(), "Goexit") {
			t.Fatalf("Goexit in fn: %v", err)
		}
		if err := c.InNode(4, func() error { return nil }); err == nil {
			t.Fatal("InNode(4) on a 3-node cluster succeeded")
		}
	}) {
		return
	}

	if !t.Run("GrantUID", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := c.ExecAs(ctx, 1, 65534, c.tools.quorumtool, "-s").CombinedOutput()
		// corosync-quorumtool opens cmap first; the refusal shows there.
		if err == nil || !strings.Contains(string(out), "Cannot initialize CMAP") {
			t.Fatalf("uid 65534 was not refused: %v\n%s", err, out)
		}
		must(t, c.GrantUID(1, 65534))
		out, err = c.ExecAs(ctx, 1, 65534, c.tools.quorumtool, "-s").CombinedOutput()
		if err != nil {
			t.Fatalf("uid 65534 after GrantUID: %v: %s", err, out)
		}
		if _, err := ParseStatus(string(out)); err != nil {
			t.Fatalf("uid 65534 output: %v\n%s", err, out)
		}
		if out, err := c.ExecAs(ctx, 2, 65534, c.tools.quorumtool, "-s").CombinedOutput(); err == nil {
			t.Fatalf("grant on node 1 let uid 65534 into node 2:\n%s", out)
		}
	}) {
		return
	}

	if !t.Run("KillStart", func(t *testing.T) {
		pid := c.Pid(3)
		// A client connected while corosync is killed: the connection's
		// /dev/shm folder (libqb 1.0.4+) or files (up to 1.0.3) stay
		// behind unless the harness removes them.
		var fd int
		must(t, c.InNode(3, func() (err error) { fd, _, err = ipcConnect(); return err }))
		defer unix.Close(fd)
		if len(shmEntries(pid)) == 0 {
			t.Errorf("no /dev/shm entries of pid %d while a client is connected", pid)
		}
		must(t, c.Kill(3))
		if c.Pid(3) != 0 || pidAlive(pid) {
			t.Fatalf("node 3 (pid %d) still running after Kill", pid)
		}
		if err := c.Kill(3); err == nil {
			t.Fatal("second Kill(3) succeeded")
		}
		if err := c.InNode(3, func() error { return dialAbstract("quorum") }); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial in killed node 3: %v, want ECONNREFUSED", err)
		}
		if _, err := c.Quorumtool(3); err == nil {
			t.Fatal("quorumtool on killed node 3 succeeded")
		}
		d := waitMembers(t, c, 1, 1, 2)
		t.Logf("killed node left node 1's view after %v", d.Round(10*time.Millisecond))
		st := status(t, c, 1)
		if !st.Quorate || st.Ring.Seq <= ring0.Seq {
			t.Fatalf("after kill: %+v (ring before %v)", st, ring0)
		}
		if matches := shmEntries(pid); len(matches) > 0 {
			t.Errorf("killed corosync left %v", matches)
		}

		start := time.Now()
		must(t, c.Start(3))
		pids.add(c)
		if err := c.Start(3); err == nil {
			t.Fatal("Start(3) of a running node succeeded")
		}
		waitMembers(t, c, 1, 1, 2, 3)
		waitMembers(t, c, 3, 1, 2, 3)
		t.Logf("restarted node back in all views after %v", time.Since(start).Round(10*time.Millisecond))
	}) {
		return
	}

	if !t.Run("CutHeal", func(t *testing.T) {
		must(t, c.Cut(2))
		d := waitMembers(t, c, 1, 1, 3)
		t.Logf("cut node left node 1's view after %v", d.Round(10*time.Millisecond))
		waitMembers(t, c, 2, 2)
		if st := status(t, c, 2); st.Quorate {
			t.Fatalf("cut node 2 is quorate: %+v", st)
		}
		if st := status(t, c, 1); !st.Quorate {
			t.Fatalf("node 1 lost quorum: %+v", st)
		}
		start := time.Now()
		must(t, c.Heal(2))
		for i := 1; i <= 3; i++ {
			waitMembers(t, c, i, 1, 2, 3)
		}
		t.Logf("healed node back in all views after %v", time.Since(start).Round(10*time.Millisecond))
		if st := status(t, c, 2); !st.Quorate {
			t.Fatalf("healed node 2 not quorate: %+v", st)
		}
	}) {
		return
	}

	if !t.Run("FreezeThaw", func(t *testing.T) {
		must(t, c.Freeze(3))
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		_, err := c.QuorumtoolContext(ctx, 3)
		cancel()
		if err == nil {
			t.Fatal("frozen node 3 answered corosync-quorumtool")
		}
		d := waitMembers(t, c, 1, 1, 2)
		t.Logf("frozen node left node 1's view after %v", d.Round(10*time.Millisecond))
		start := time.Now()
		must(t, c.Thaw(3))
		waitMembers(t, c, 1, 1, 2, 3)
		waitMembers(t, c, 3, 1, 2, 3)
		t.Logf("thawed node back in all views after %v", time.Since(start).Round(10*time.Millisecond))
	}) {
		return
	}

	if !t.Run("Reform", func(t *testing.T) {
		ring0 := status(t, c, 1).Ring
		log0, err := c.Log(1)
		must(t, err)
		start := time.Now()
		must(t, c.Reform(3))
		for i := 1; i <= 3; i++ {
			must(t, c.WaitStatus(context.Background(), i, func(s Status) bool {
				return s.Ring.Seq > ring0.Seq && slices.Equal(s.Members, []uint32{1, 2, 3})
			}, fmt.Sprintf("a ring after %v with members [1 2 3]", ring0)))
		}
		t.Logf("ring re-formed with the same members after %v", time.Since(start).Round(10*time.Millisecond))
		// One ring, with no one leaving on the way (corosync logs "Sync
		// left[N]: ..." when someone does).
		log1, err := c.Log(1)
		must(t, err)
		if since := log1[len(log0):]; strings.Contains(since, "Sync left[") {
			t.Errorf("a node left on the way through Reform:\n%s", since)
		}
		if err := c.Reform(9); err == nil {
			t.Error("Reform of a node the cluster does not have succeeded")
		}
	}) {
		return
	}

	if !t.Run("SetExpectedVotes", func(t *testing.T) {
		// votequorum accepts an expected count as long as the current
		// votes still reach quorum (5 → quorum 3 of 3 votes), applies it
		// cluster-wide, and refuses one that would lose quorum.
		must(t, c.SetExpectedVotes(1, 5))
		must(t, c.WaitStatus(context.Background(), 2, func(s Status) bool { return s.ExpectedVotes == 5 }, "expected votes 5"))
		if st := status(t, c, 1); !st.Quorate || st.ExpectedVotes != 5 || st.Quorum != 3 {
			t.Fatalf("after -e 5: %+v", st)
		}
		err := c.SetExpectedVotes(1, 7)
		if err == nil || !strings.Contains(err.Error(), "CS_ERR_INVALID_PARAM") {
			t.Fatalf("-e 7 (quorum 4 of 3 votes): %v, want CS_ERR_INVALID_PARAM", err)
		}
		if err := c.SetExpectedVotes(1, 0); err == nil {
			t.Fatal("corosync-quorumtool -e 0 succeeded")
		}
		must(t, c.SetExpectedVotes(1, 3))
		must(t, c.WaitStatus(context.Background(), 1, func(s Status) bool { return s.ExpectedVotes == 3 && s.Quorum == 2 }, "expected votes 3"))
	}) {
		return
	}

	t.Run("BadIndex", func(t *testing.T) {
		for _, i := range []int{0, -1, 4} {
			if c.Pid(i) != 0 || c.Netns(i) != "" || c.Dir(i) != "" || c.ConfPath(i) != "" {
				t.Errorf("node %d: accessors gave a value", i)
			}
			if c.Kill(i) == nil || c.Start(i) == nil || c.Freeze(i) == nil || c.Cut(i) == nil || c.GrantUID(i, 1) == nil {
				t.Errorf("node %d: control succeeded", i)
			}
			if _, err := c.Quorumtool(i); err == nil {
				t.Errorf("node %d: Quorumtool succeeded", i)
			}
			if err := c.Exec(context.Background(), i, "true").Run(); err == nil {
				t.Errorf("node %d: Exec ran", i)
			}
		}
	})
}

// testTwoNodeSocket checks the TwoNode and SocketIPC options on a cluster
// that runs alongside the others without seeing them.
func testTwoNodeSocket(t *testing.T, pids *pidLog) {
	c := Start(t, 2, TwoNode(), SocketIPC())
	pids.add(c)
	st := status(t, c, 1)
	if !st.Quorate || !slices.Contains(st.Flags, "2Node") || !slices.Equal(st.Members, []uint32{1, 2}) {
		t.Fatalf("node 1 view: %+v", st)
	}
	for i := 1; i <= 2; i++ {
		var typ int32
		err := c.InNode(i, func() (err error) { typ, err = ipcConnectionType(); return err })
		must(t, err)
		if typ != 0 {
			t.Errorf("node %d: IPC connection type %d, want 0 (socket)", i, typ)
		}
	}
	must(t, c.Kill(2))
	waitMembers(t, c, 1, 1)
	if st := status(t, c, 1); !st.Quorate {
		t.Fatalf("two_node survivor not quorate: %+v", st)
	}
	must(t, c.Spawn(2))
	pids.add(c)
	waitMembers(t, c, 1, 1, 2)
	waitMembers(t, c, 2, 1, 2)
}

// testVotes checks Votes, ExpectedVotes and ExtraConfig, and that the
// default IPC is shared memory.
func testVotes(t *testing.T, pids *pidLog) {
	// The extra quorum section is merged with the generated one: both
	// its flag and the generated expected_votes show.
	c := Start(t, 2, Votes(1, 2), ExpectedVotes(3), ExtraConfig("quorum {", "\twait_for_all: 1", "}"))
	pids.add(c)
	st := status(t, c, 2)
	if !st.Quorate || st.TotalVotes != 3 || st.ExpectedVotes != 3 || !slices.Equal(st.Members, []uint32{1, 2}) ||
		!slices.Contains(st.Flags, "WaitForAll") {
		t.Fatalf("node 2 view: %+v", st)
	}
	var typ int32
	must(t, c.InNode(1, func() (err error) { typ, err = ipcConnectionType(); return err }))
	if typ != 1 {
		t.Errorf("IPC connection type %d, want 1 (shm)", typ)
	}
	must(t, c.Cut(2))
	waitMembers(t, c, 2, 2)
	waitMembers(t, c, 1, 1)
	if st := status(t, c, 1); !st.Quorate {
		t.Errorf("node 1 with 2 of 3 votes not quorate: %+v", st)
	}
	if st := status(t, c, 2); st.Quorate {
		t.Errorf("node 2 with 1 of 3 votes quorate: %+v", st)
	}
	// Left frozen: the cleanup must kill a stopped corosync too, which
	// checkNoLeftovers verifies.
	must(t, c.Freeze(1))
}

// checkNoLeftovers fails if any namespace, folder or process of this test
// process remains, or a /dev/shm entry of one of the corosync pids seen.
func checkNoLeftovers(t *testing.T, seen []int) {
	mine := fmt.Sprintf("%s%d-", namePrefix, os.Getpid())
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		if os.Geteuid() != 0 {
			return
		}
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	if strings.Contains(string(out), mine) {
		t.Errorf("namespaces left:\n%s", out)
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), mine+"*"))
	if len(dirs) > 0 {
		t.Errorf("folders left: %v", dirs)
	}
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(b), filepath.Join(os.TempDir(), mine)) && !gone(pid) {
			t.Errorf("process left: %d %q", pid, b)
		}
	}
	for _, pid := range seen {
		if !gone(pid) {
			t.Errorf("corosync pid %d still running", pid)
		}
		if m := shmEntries(pid); len(m) > 0 {
			t.Errorf("/dev/shm left by pid %d: %v", pid, m)
		}
	}
}

// shmEntries lists the /dev/shm entries of the corosync with this pid.
func shmEntries(pid int) []string {
	var found []string
	ents, _ := os.ReadDir("/dev/shm")
	for _, e := range ents {
		if shmOf(e.Name(), pid) {
			found = append(found, e.Name())
		}
	}
	return found
}

func TestFindTools(t *testing.T) {
	all := func(name string) (string, error) { return "/usr/sbin/" + filepath.Base(name), nil }
	if _, err := findTools(1000, all); err == nil || !strings.Contains(err.Error(), "not root") {
		t.Errorf("non-root: %v", err)
	}
	noCorosync := func(name string) (string, error) {
		if strings.Contains(name, "corosync") {
			return "", exec.ErrNotFound
		}
		return name, nil
	}
	if _, err := findTools(0, noCorosync); err == nil || !strings.Contains(err.Error(), "apt-get install corosync") {
		t.Errorf("no corosync: %v", err)
	}
	noIP := func(name string) (string, error) {
		if filepath.Base(name) == "ip" {
			return "", exec.ErrNotFound
		}
		return name, nil
	}
	if _, err := findTools(0, noIP); err == nil || !strings.Contains(err.Error(), "apt-get install iproute2") {
		t.Errorf("no ip: %v", err)
	}
	// Found only under /usr/sbin, as with a PATH lacking it.
	sbinOnly := func(name string) (string, error) {
		if strings.HasPrefix(name, "/usr/sbin/") {
			return name, nil
		}
		return "", exec.ErrNotFound
	}
	tl, err := findTools(0, sbinOnly)
	if err != nil || tl.corosync != "/usr/sbin/corosync" || tl.ip != "/usr/sbin/ip" {
		t.Errorf("sbin fallback: %+v, %v", tl, err)
	}
	if err := Available(); err != nil {
		t.Logf("Available: %v", err)
	}
}

func TestOwnerPid(t *testing.T) {
	for name, want := range map[string]int{
		"qtc-123-abcdef-1": 123,
		"qtc-123-abcdef":   123,
		"qtc-123":          0,
		"qtc--x":           0,
		"qtc-0-x":          0,
		"qtc-x1-2":         0,
		"other-123-x":      0,
		"":                 0,
	} {
		got, ok := ownerPid(name)
		if got != want || ok != (want != 0) {
			t.Errorf("ownerPid(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
	if stale(fmt.Sprintf("qtc-%d-x", os.Getpid())) {
		t.Error("own names are stale")
	}
	if stale("qtc-1-x") {
		t.Error("pid 1's names are stale")
	}
}
