//go:build linux

// Package benchutil is what the getquorate round-trip benchmarks of every
// backend share, so that their figures, printed side by side by
// bench/quorate.sh, are measured the same way.
package benchutil

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Quorate benchmarks f, one getquorate round trip per call, twice:
// "background" with a context that has no Done channel (a backend may then
// wait on the calling goroutine) and "deadline" with one that can end (the
// wait must stay abandonable). Each reports round trips per second and the
// process's CPU time per call, all threads, user and system: what the rate
// costs, spinning included.
func Quorate(b *testing.B, f func(context.Context) (bool, error)) {
	run := func(b *testing.B, ctx context.Context) {
		start, cpu0 := time.Now(), CPUTime()
		for b.Loop() {
			if _, err := f(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "roundtrips/s")
		b.ReportMetric(float64(CPUTime()-cpu0)/float64(b.N), "cpu-ns/op")
	}
	b.Run("background", func(b *testing.B) { run(b, context.Background()) })
	b.Run("deadline", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		run(b, ctx)
	})
}

// CPUTime is the CPU time this process has used so far, in nanoseconds.
func CPUTime() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return unix.TimevalToNsec(ru.Utime) + unix.TimevalToNsec(ru.Stime)
}
