//go:build linux

package quorum

import (
	"context"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/model"
	"github.com/corosync-go/quorum/internal/testcluster"
)

// countingVotes counts a voteConn's votequorum_getinfo calls.
type countingVotes struct {
	voteConn
	getinfo int
}

func (v *countingVotes) GetInfo(ctx context.Context, id uint32) (model.VoteInfo, error) {
	v.getinfo++
	return v.voteConn.GetInfo(ctx, id)
}

// BenchmarkPictureRefresh measures what one change costs a picture Client
// once corosync has notified it: the re-read of votequorum (getinfo of this
// node and of every other node, here on a real 3-node cluster through the
// pure-Go backend) and the publication to a subscriber. It reports the
// round trips per re-read.
func BenchmarkPictureRefresh(b *testing.B) {
	cl := testcluster.Start(b, 3)
	enter := func(f func()) error { return cl.InNode(1, func() error { f(); return nil }) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Open(ctx, WithBackend(nsBackend{NativeBackend(), enter}), WithPicture())
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
	// The pump is idle now; the benchmark re-reads on its own goroutine
	// with the session the pump would use, so that nothing else runs.
	c.mu.Lock()
	sess := c.sess
	counter := &countingVotes{voteConn: sess.votes}
	sess.votes = counter
	c.mu.Unlock()
	b.ResetTimer()
	for b.Loop() {
		c.mu.Lock()
		sess.pic.stale = true
		c.pic = Picture{} // so that the value is published again
		c.mu.Unlock()
		if err := c.refreshPicture(sess); err != nil {
			b.Fatal(err)
		}
		if p := <-ch; !p.Connected || p.TotalVotes != 3 {
			b.Fatalf("picture %+v", p)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(counter.getinfo)/float64(b.N), "getinfo/op")
}
