//go:build linux

package quorum_test

import (
	"context"
	"testing"
	"time"

	"github.com/corosync-go/quorum"
	"github.com/corosync-go/quorum/internal/benchutil"
	"github.com/corosync-go/quorum/internal/testcluster"
)

// BenchmarkClientQuorate measures (*Client).Quorate round trips, one at a
// time on one Client, through each real backend built into the test binary:
// the whole public path, the Client's request slot and error conversion
// included. It reports roundtrips/s and cpu-ns/op.
//
// Inside a network namespace where a corosync already runs (bench/quorate.sh
// runs the test binary in one), it uses that corosync for every backend, so
// that they and the C loop are measured against the same node in the same
// run; variants that need their own IPC type are then skipped, because that
// corosync serves one. Elsewhere each variant starts a one-node testcluster
// of its own, and the benchmark is skipped without root or corosync.
//
// The "background" and "deadline" sub-benchmarks are benchutil.Quorate's.
func BenchmarkClientQuorate(b *testing.B) {
	here := corosyncHere()
	for _, v := range realVariants() {
		b.Run(v.name, func(b *testing.B) {
			backend := v.backend
			switch {
			case here && v.opts != nil:
				b.Skip("the corosync of this network namespace serves one IPC type; bench/quorate.sh starts one per type")
			case !here:
				cl := testcluster.Start(b, 1, v.opts...)
				backend = nodeBackend(cl, 1, v.backend)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			client, err := quorum.Open(ctx, quorum.WithBackend(backend))
			cancel()
			if err != nil {
				b.Fatalf("Open: %v", err)
			}
			defer client.Close()
			benchutil.Quorate(b, client.Quorate)
		})
	}
}

// corosyncHere reports whether a corosync answers in the calling thread's
// network namespace. It asks through the pure-Go backend, which needs no
// library, and through libquorum where the pure-Go one is not supported.
func corosyncHere() bool {
	for _, be := range []quorum.Backend{quorum.NativeBackend(), quorum.LibquorumBackend()} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := be.Connect(ctx, quorum.ConnectParams{})
		cancel()
		if err == nil {
			conn.Close()
			return true
		}
	}
	return false
}
