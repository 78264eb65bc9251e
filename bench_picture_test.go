//go:build linux

package quorum_test

import (
	"context"
	"os/exec"
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
//     corosync-quorumtool -s -p on the node and parse its output (with
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
		// Started from inside the node's network namespace, as a program
		// on the node would start it: no namespace tool in between.
		tool := cl.Install().Quorumtool
		b.ReportAllocs()
		for b.Loop() {
			var out []byte
			err := cl.InNode(1, func() (err error) {
				out, err = exec.Command(tool, "-s", "-p").Output()
				return err
			})
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
