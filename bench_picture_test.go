//go:build linux

package quorum_test

import (
	"context"
	"testing"
	"time"

	"github.com/corosync-go/quorum"
	"github.com/corosync-go/quorum/internal/testcluster"
)

// BenchmarkPicture reads the whole picture of node 1 of a real 3-node
// cluster, the way corosync-quorumtool -s shows it, two ways in one run:
//   - cached: (*Client).Picture on a Client opened WithPicture through the
//     pure-Go backend, which answers from the engine's cache;
//   - quorumtool: what Go programs do today, per read: start
//     corosync-quorumtool -s -p in the node and parse its output (with
//     testcluster.ParseStatus, the parser the conformance tests use).
//
// It is skipped without root or corosync.
func BenchmarkPicture(b *testing.B) {
	cl := testcluster.Start(b, 3)
	b.Run("cached", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := quorum.Open(ctx, quorum.WithBackend(nodeBackend(cl, 1, quorum.NativeBackend())), quorum.WithPicture())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ch, err := c.SubscribePicture(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for p := range ch {
			if p.Connected && !p.Syncing {
				break
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if p := c.Picture(); len(p.Nodes) != 3 || p.TotalVotes != 3 {
				b.Fatalf("picture: %+v", p)
			}
		}
	})
	b.Run("quorumtool", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			out, err := cl.Output(ctx, 1, "corosync-quorumtool", "-s", "-p")
			if err != nil && len(out) == 0 {
				b.Fatalf("corosync-quorumtool: %v", err)
			}
			st, err := testcluster.ParseStatus(string(out))
			if err != nil || len(st.Members) != 3 || st.TotalVotes != 3 {
				b.Fatalf("parsed %+v, %v", st, err)
			}
		}
	})
}
