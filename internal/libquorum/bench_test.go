//go:build libquorum && cgo && linux

package libquorum

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corosync-go/quorum/internal/benchutil"
	"github.com/corosync-go/quorum/internal/cs"
)

// benchDial connects to the corosync of the network namespace the benchmark
// runs in (bench/quorate.sh runs it inside a node), or skips.
func benchDial(b *testing.B) *Conn {
	b.Helper()
	c, err := Dial(context.Background(), nil)
	var ce *cs.Error
	if errors.As(err, &ce) && ce.Code == cs.ErrLibrary {
		b.Skip("no corosync in this network namespace; run bench/quorate.sh")
	}
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkQuorateLibquorum is the loop of bench/c/getquorate_loop.c through
// a Conn: one quorum_getquorate round trip per iteration.
//
// With "background" (benchutil.Quorate's context without a Done channel) the
// C call runs on the calling goroutine; with "deadline" each call runs on a
// goroutine of its own that the caller could abandon.
func BenchmarkQuorateLibquorum(b *testing.B) {
	c := benchDial(b)
	defer c.Close()
	benchutil.Quorate(b, c.Quorate)
}

// BenchmarkSnapshotLibquorum is the loop of bench/c/snapshot_loop.c through a
// Conn: per round, TrackStart(CS_TRACK_CURRENT) queues a nodelist and a
// quorum notification, then poll(2) on Fd and Dispatch until both arrived.
// dispatch-ns/op is the time spent in Dispatch per round, callbacks
// included, beside the C loop's time in quorum_dispatch.
func BenchmarkSnapshotLibquorum(b *testing.B) {
	c := benchDial(b)
	defer c.Close()
	ctx := context.Background()
	seen := 0
	fn := func(Notification) { seen++ }
	fds := []unix.PollFd{{Fd: int32(c.Fd()), Events: unix.POLLIN}}
	var inDispatch time.Duration
	start, cpu0 := time.Now(), benchutil.CPUTime()
	for b.Loop() {
		if err := c.TrackStart(ctx, trackCurrentFlag); err != nil {
			b.Fatal(err)
		}
		for seen = 0; seen < 2; {
			if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
				b.Fatal(err)
			}
			t := time.Now()
			err := c.Dispatch(fn)
			inDispatch += time.Since(t)
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rounds/s")
	b.ReportMetric(float64(inDispatch.Nanoseconds())/float64(b.N), "dispatch-ns/op")
	b.ReportMetric(float64(benchutil.CPUTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
