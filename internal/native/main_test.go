//go:build linux

package native

import (
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

// The main goroutine keeps the process's main thread to itself. Tests join
// nodes' network namespaces on locked threads that are thrown away after;
// the main thread cannot be thrown away, and if such a goroutine ran on it,
// the whole process would look like a member of that namespace to
// `ip netns pids`, which testcluster's teardown kills.
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
