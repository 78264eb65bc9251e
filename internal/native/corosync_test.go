//go:build linux

package native

import (
	"context"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/testcluster"
)

// corosyncNode is node i of a real test cluster (internal/testcluster).
type corosyncNode struct {
	c *testcluster.Cluster
	i int
}

// startCorosync starts a single-node cluster in SHM or socket IPC mode.
// testcluster skips the test when root or corosync are missing.
func startCorosync(tb testing.TB, socketIPC bool) *corosyncNode {
	tb.Helper()
	var opts []testcluster.Option
	if socketIPC {
		opts = append(opts, testcluster.SocketIPC())
	}
	return &corosyncNode{c: testcluster.Start(tb, 1, opts...), i: 1}
}

func (n *corosyncNode) kill(tb testing.TB) {
	tb.Helper()
	if err := n.c.Kill(n.i); err != nil {
		tb.Fatal(err)
	}
}

func (n *corosyncNode) freeze(tb testing.TB) {
	tb.Helper()
	if err := n.c.Freeze(n.i); err != nil {
		tb.Fatal(err)
	}
}

func (n *corosyncNode) thaw(tb testing.TB) {
	tb.Helper()
	if err := n.c.Thaw(n.i); err != nil {
		tb.Error(err)
	}
}

// dial connects from inside the node's network namespace.
func (n *corosyncNode) dial(tb testing.TB) *Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c *Conn
	err := n.c.InNode(n.i, func() error {
		var err error
		c, err = Dial(ctx, nil)
		return err
	})
	if err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	return c
}
