//go:build !(libquorum && cgo && linux)

package libquorum_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	quorum "github.com/corosync-go/quorum"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStubBackend runs in builds without the libquorum tag, where the root
// package's LibquorumBackend is the stub of backend_cgo_stub.go.
func TestStubBackend(t *testing.T) {
	c, err := quorum.LibquorumBackend().Connect(context.Background(), quorum.ConnectParams{})
	if c != nil || !errors.Is(err, quorum.ErrNotSupported) {
		t.Fatalf("Connect = %v, %v; want nil and an error matching ErrNotSupported", c, err)
	}
	for _, want := range []string{"-tags libquorum", "CGO_ENABLED=1", "libquorum-dev", "libcorosync-common-dev", "pkg-config"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
