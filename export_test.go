package quorum

import (
	"context"
	"fmt"
	"time"
)

// OnStuckRequest makes c call fn whenever a request starts waiting for a
// frozen node, so that a test knows the request is in flight.
func OnStuckRequest(c *SimCluster, fn func(id uint32)) {
	c.mu.Lock()
	c.stuck = fn
	c.mu.Unlock()
}

// InNamespace returns inner with every connection it makes, the picture's
// included, made inside enter, which runs f in another network namespace:
// how the tests reach the corosync of one node of a test cluster. (A
// program reaches its own node's corosync without it.)
func InNamespace(inner Backend, enter func(f func()) error) Backend {
	return nsBackend{inner, enter}
}

type nsBackend struct {
	inner Backend
	enter func(f func()) error
}

func (b nsBackend) Connect(ctx context.Context, p ConnectParams) (conn Conn, err error) {
	if e := b.enter(func() { conn, err = b.inner.Connect(ctx, p) }); e != nil {
		return nil, e
	}
	return conn, err
}

func (b nsBackend) connectVotes(ctx context.Context, p ConnectParams, conn Conn) (v voteConn, err error) {
	vb, ok := b.inner.(voteBackend)
	if !ok {
		return nil, fmt.Errorf("%w: %T reads no votequorum", ErrNotSupported, b.inner)
	}
	if e := b.enter(func() { v, err = vb.connectVotes(ctx, p, conn) }); e != nil {
		return nil, e
	}
	return v, err
}

// WithRefreshTimeout shortens the bound on one re-read of votequorum, so
// that a test of a frozen corosync need not wait 5 s.
func WithRefreshTimeout(d time.Duration) OpenOption {
	return openOption{option{func(s *settings) { s.refreshTimeout = d }}}
}
