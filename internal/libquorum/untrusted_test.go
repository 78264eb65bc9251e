//go:build libquorum && cgo && linux

package libquorum

import (
	"errors"
	"fmt"
	"testing"

	"github.com/corosync-go/quorum/internal/cs"
)

// TestUntrustedOrGone: a server that closed the connection as it was made
// (corosync stopping or restarting) is a lost connection, which the engine
// retries; one that cannot be identified is a refusal, which it does not.
func TestUntrustedOrGone(t *testing.T) {
	var ce *cs.Error
	err := untrustedService("cmap", fmt.Errorf("event socket (fd 7): %w", errNoPeer))
	if !errors.As(err, &ce) || ce.Code != cs.ErrLibrary || ce.Op != "cmap_initialize" {
		t.Errorf("no peer: %v", err)
	}
	err = untrustedService("votequorum", errors.New("event socket's peer \"x\" is not named like libqb's"))
	if !errors.As(err, &ce) || ce.Code != cs.ErrSecurity {
		t.Errorf("unidentified server: %v", err)
	}
}

// TestInitBadHandle: CS_ERR_BAD_HANDLE from an *_initialize is a connection
// corosync dropped as it was made, retried as a lost connection.
func TestInitBadHandle(t *testing.T) {
	var ce *cs.Error
	if err := initError("quorum_initialize", int32(cs.ErrBadHandle)); !errors.As(err, &ce) || ce.Code != cs.ErrLibrary {
		t.Errorf("BAD_HANDLE from quorum_initialize: %v", err)
	}
	if err := initError("cmap_initialize", int32(cs.ErrAccess)); !errors.As(err, &ce) || ce.Code != cs.ErrAccess {
		t.Errorf("ACCESS from cmap_initialize: %v", err)
	}
}
