//go:build libquorum && cgo && linux

package libquorum

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corosync-go/quorum/internal/testcluster"
)

// ipcModes are corosync's IPC transports: libqb shared memory (the
// default) and sockets (system.qb_ipc_type: socket).
var ipcModes = []string{"shm", "socket"}

// node is node i of a testcluster, with the operations these tests use.
type node struct {
	t  *testing.T
	cl *testcluster.Cluster
	i  int
}

// newNode starts a one-node cluster serving IPC in the given mode ("shm" or
// "socket") and returns its node, running.
func newNode(t *testing.T, ipc string) *node {
	t.Helper()
	var opts []testcluster.Option
	if ipc == "socket" {
		opts = append(opts, testcluster.SocketIPC())
	}
	return &node{t: t, cl: testcluster.Start(t, 1, opts...), i: 1}
}

func (n *node) kill() {
	n.t.Helper()
	if err := n.cl.Kill(n.i); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) freeze() {
	n.t.Helper()
	if err := n.cl.Freeze(n.i); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) thaw() {
	n.t.Helper()
	if err := n.cl.Thaw(n.i); err != nil {
		n.t.Fatal(err)
	}
}

// dial runs Dial on a thread inside the node's network namespace; the
// connection stays in that namespace afterwards.
func (n *node) dial(ctx context.Context, trusted []uint32) (c *Conn, err error) {
	n.t.Helper()
	if e := n.cl.InNode(n.i, func() error {
		c, err = Dial(ctx, trusted)
		return nil
	}); e != nil {
		n.t.Fatal(e)
	}
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
	return waitChanges(t, c, want, timeout, nil)
}

// waitChanges is waitNotifications for what follows a change to the
// cluster: a ring re-formed with the members of the last ring, prev (see
// testcluster.Reformed), is dropped with its quorum notification. A nil
// prev drops nothing.
func waitChanges(t *testing.T, c *Conn, want int, timeout time.Duration, prev []uint32) []Notification {
	t.Helper()
	var reformed *uint64
	keep := func(n Notification) bool {
		switch {
		case n.Kind == KindNodeList && testcluster.Reformed(prev, n.Members, n.Joined, n.Left):
			t.Logf("dropped a ring re-formed with the same members: %s", formatNotification(n))
			reformed = &n.Ring.Seq
			return false
		case n.Kind == KindQuorum && reformed != nil && n.Ring.Seq == *reformed:
			return false
		}
		return true
	}
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
		err := c.Dispatch(func(n Notification) {
			if keep(n) {
				got = append(got, n)
			}
		})
		if err != nil {
			t.Fatalf("Dispatch: %v (after %+v)", err, got)
		}
	}
	return got
}

// formatNotification prints a notification the way the shared corosync notes
// do, for failure messages.
func formatNotification(n Notification) string {
	if n.Kind == KindNodeList {
		if n.Joined == nil && n.Left == nil {
			// Model V0: no lists at all, as opposed to empty ones.
			return fmt.Sprintf("nodelist ring %d.%d members %v joined nil left nil", n.Ring.NodeID, n.Ring.Seq, n.Members)
		}
		return fmt.Sprintf("nodelist ring %d.%d members %v joined %v left %v", n.Ring.NodeID, n.Ring.Seq, n.Members, n.Joined, n.Left)
	}
	return fmt.Sprintf("quorum ring %d.%d quorate %v members %v", n.Ring.NodeID, n.Ring.Seq, n.Quorate, n.Members)
}
