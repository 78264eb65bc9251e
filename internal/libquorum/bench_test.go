//go:build libquorum && cgo && linux

package libquorum

import (
	"context"
	"errors"
	"testing"

	"github.com/corosync-go/quorum/internal/benchutil"
	"github.com/corosync-go/quorum/internal/cs"
)

// BenchmarkQuorateLibquorum is the loop of bench/c/getquorate_loop.c through
// a Conn: one quorum_getquorate round trip per iteration. It uses the
// corosync of the network namespace it runs in (bench/quorate.sh runs it
// inside a node), and is skipped when there is none.
//
// With "background" (benchutil.Quorate's context without a Done channel) the
// C call runs on the calling goroutine; with "deadline" each call runs on a
// goroutine of its own that the caller could abandon.
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
	benchutil.Quorate(b, c.Quorate)
}
