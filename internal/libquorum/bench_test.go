//go:build libquorum && cgo && linux

package libquorum

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/cs"
)

// BenchmarkQuorateLibquorum is the loop of bench/c/getquorate_loop.c through
// a Conn: one quorum_getquorate round trip per iteration. It uses the
// corosync of the network namespace it runs in (bench/quorate.sh runs it
// inside a node), and is skipped when there is none.
//
// "background" passes a context without a Done channel, so the C call runs
// on the calling goroutine; "deadline" passes one with a deadline, so each
// call runs on a goroutine of its own that the caller could abandon.
func BenchmarkQuorateLibquorum(b *testing.B) {
	c, err := Dial(context.Background(), nil)
	var ce *cs.Error
	if errors.As(err, &ce) && ce.Code == cs.ErrLibrary {
		b.Skip("no corosync in this network namespace; run bench/quorate.sh")
	}
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	run := func(b *testing.B, ctx context.Context) {
		start := time.Now()
		for b.Loop() {
			if _, err := c.Quorate(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "roundtrips/s")
	}
	b.Run("background", func(b *testing.B) { run(b, context.Background()) })
	b.Run("deadline", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		run(b, ctx)
	})
}
