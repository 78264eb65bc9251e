package syncbuf

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWait(t *testing.T) {
	var b Buffer
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ready
		for _, s := range []string{"a\n", "b\n", "c\n"} {
			b.Write([]byte(s))
		}
	}()
	close(ready)
	got, ok := b.Wait(10*time.Second, func(s string) bool { return strings.Count(s, "\n") >= 3 })
	<-done
	if !ok || got != "a\nb\nc\n" {
		t.Errorf("Wait: %q, %v", got, ok)
	}
	start := time.Now()
	got, ok = b.Wait(20*time.Millisecond, func(s string) bool { return strings.Contains(s, "d") })
	if ok || got != "a\nb\nc\n" || time.Since(start) < 20*time.Millisecond {
		t.Errorf("Wait for what is never written: %q, %v after %v", got, ok, time.Since(start))
	}
}
