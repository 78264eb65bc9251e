//go:build !(libquorum && cgo && linux)

package quorum

import (
	"context"
	"fmt"
)

// LibquorumBackend returns the Backend that talks to corosync through its C
// library, libquorum. This program was built without it, so its Connect
// always fails with an error matching ErrNotSupported that says how to build
// it in: CGO_ENABLED=1 go build -tags libquorum, with the Debian packages
// libquorum-dev, libvotequorum-dev, libcmap-dev, libcorosync-common-dev and pkg-config
// installed (Linux only).
func LibquorumBackend() Backend { return libquorumStub{} }

// defaultBackend is the pure-Go backend when libquorum is not built in.
func defaultBackend() Backend { return NativeBackend() }

type libquorumStub struct{}

func (libquorumStub) Connect(context.Context, ConnectParams) (Conn, error) {
	return nil, fmt.Errorf("%w: the libquorum backend is not built into this program: "+
		"build it on Linux with CGO_ENABLED=1 and -tags libquorum "+
		"(needs the packages libquorum-dev, libvotequorum-dev, libcmap-dev, libcorosync-common-dev and pkg-config)", ErrNotSupported)
}
