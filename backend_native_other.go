//go:build !linux

package quorum

import (
	"context"
	"fmt"
	"runtime"
)

// NativeBackend returns the Backend that speaks corosync's IPC protocol in
// Go. corosync runs on Linux only, so here its Connect always fails with an
// error matching ErrNotSupported; the package still builds, and the
// simulated cluster (SimCluster) works, for tests and demos.
func NativeBackend() Backend { return nativeUnsupported{} }

type nativeUnsupported struct{}

func (nativeUnsupported) Connect(context.Context, ConnectParams) (Conn, error) {
	return nil, fmt.Errorf("%w: corosync runs on Linux, and this program was built for %s: "+
		"build it for linux, or use a SimCluster's Backend here", ErrNotSupported, runtime.GOOS)
}
