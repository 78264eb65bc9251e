//go:build linux

package qbipc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/qbipc/qbipctest"
)

// TestLongTempDir: the fake server's sessions work under a long $TMPDIR. Its
// SOCKET names are cut at libqb's 106 bytes, and under a directory named
// after the test in a 55-byte $TMPDIR "-request" and "-response" (and
// "-event" and "-event-tx") were cut to the same name, so that Dial failed
// with EADDRINUSE.
func TestLongTempDir(t *testing.T) {
	const tmpLen = 55
	base := t.TempDir()
	if len(base)+2 > tmpLen {
		t.Skipf("$TMPDIR is already too long to lengthen to %d bytes: %s", tmpLen, base)
	}
	long := filepath.Join(base, strings.Repeat("d", tmpLen-len(base)-1))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", long)
	forTransports(t, func(t *testing.T, socket bool) {
		s := qbipctest.Start(t, qbipctest.Options{Socket: socket})
		c, sc := mustDial(t, s)
		serve(t, sc, func(req []byte) []byte { return resp(7, 24, 0) })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := c.Request(ctx, msg(7, 24, 0), any)
		if err != nil || len(got) != 24 {
			t.Fatalf("Request under a %d-byte $TMPDIR: %d bytes, %v", tmpLen, len(got), err)
		}
	})
}
