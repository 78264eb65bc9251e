//go:build linux

package native

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/testcluster"
)

const helperEnv = "NATIVE_TEST_HELPER_DIAL"

// TestHelperDial is not a test: TestRealAccess runs this test binary as an
// unprivileged user inside a node, and this function dials and prints the
// resulting code.
func TestHelperDial(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper for TestRealAccess")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, nil)
	if err != nil {
		fmt.Printf("helper-result code=%d err=%v\n", code(err), err)
		return
	}
	q, err := c.Quorate(ctx)
	c.Close()
	fmt.Printf("helper-result code=%d quorate=%v err=%v\n", cs.OK, q, err)
}

// TestRealAccess: corosync refuses an unprivileged user (CS_ERR_ACCESS)
// until a uidgid entry grants it, after which the user gets a working
// connection over shared memory it does not own as root.
func TestRealAccess(t *testing.T) {
	cl := testcluster.Start(t, 1)
	const uid = 65534
	run := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := cl.RerunAs(ctx, t, 1, uid, "TestHelperDial", helperEnv+"=1")
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "helper-result ") {
				return l
			}
		}
		t.Fatalf("helper: %v: %s", err, out)
		return ""
	}
	if got := run(); !strings.Contains(got, fmt.Sprintf("code=%d ", cs.ErrAccess)) {
		t.Fatalf("unprivileged user: %s, want CS_ERR_ACCESS", got)
	}
	if err := cl.GrantUID(1, uid); err != nil {
		t.Fatal(err)
	}
	if got := run(); !strings.Contains(got, fmt.Sprintf("code=%d quorate=true err=<nil>", cs.OK)) {
		t.Fatalf("granted user: %s", got)
	}
}

// TestRealStartup dials a corosync that is still starting: every failure
// must be CS_ERR_LIBRARY (not listening yet) or CS_ERR_TRY_AGAIN (not
// ready), and a connection must come.
func TestRealStartup(t *testing.T) {
	cl := testcluster.Start(t, 1)
	n := &corosyncNode{c: cl, i: 1}
	if err := cl.Kill(1); err != nil {
		t.Fatal(err)
	}
	if err := cl.Spawn(1); err != nil {
		t.Fatal(err)
	}
	seen := map[cs.Code]int{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var c *Conn
		err := n.c.InNode(1, func() error {
			var err error
			c, err = Dial(ctx, nil)
			return err
		})
		cancel()
		if err == nil {
			q, qerr := c.Quorate(context.Background())
			c.Close()
			if qerr != nil && code(qerr) != cs.ErrTryAgain {
				t.Fatalf("Quorate on a fresh connection: %v", qerr)
			}
			t.Logf("connected (quorate %v, %v) after failures %v", q, qerr, seen)
			return
		}
		if c := code(err); c != cs.ErrLibrary && c != cs.ErrTryAgain {
			t.Fatalf("Dial during startup: %v", err)
		}
		seen[code(err)]++
		if time.Now().After(deadline) {
			t.Fatalf("no connection within 30 s; failures %v", seen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
