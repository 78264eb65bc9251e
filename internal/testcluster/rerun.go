//go:build linux

package testcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// PublicDir returns a new directory, removed when tb ends, that every user
// can read and search: for programs that a test runs as another user.
func PublicDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", namePrefix+"public-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// RerunAs runs, inside node i as user and group uid (see ExecAs), the test
// binary of the calling process, with -test.run selecting only test and
// env added to the node's environment, and returns what it printed. The
// test usually skips unless env says it runs as a helper. The binary is
// copied into a PublicDir first: the build cache is private to root. The
// error (which includes the output) is the helper's exit status.
func (c *Cluster) RerunAs(ctx context.Context, tb testing.TB, i int, uid uint32, test string, env ...string) (string, error) {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		tb.Fatal(err)
	}
	dir := PublicDir(tb)
	bin := filepath.Join(dir, filepath.Base(exe))
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		tb.Fatal(err)
	}
	cmd := c.ExecAs(ctx, i, uid, bin, "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s as uid %d in node %d: %w\n%s", test, uid, i, err, out)
	}
	return string(out), nil
}
