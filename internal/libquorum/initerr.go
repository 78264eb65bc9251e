//go:build libquorum && cgo && linux

package libquorum

import (
	"fmt"

	"github.com/corosync-go/quorum/internal/cs"
)

// initError is codeError for a library's *_initialize. There, libqb's
// connect failing with EBADF, which the library reports as
// CS_ERR_BAD_HANDLE, is not a bad handle of ours (none existed yet): it is
// a connection that corosync, starting or stopping, dropped as it was made.
// It is reported as CS_ERR_LIBRARY, a lost connection, which the engine
// retries; seen with corosync 3.1.7 restarting under a reconnecting client.
func initError(op string, rc int32) error {
	if cs.Code(rc) == cs.ErrBadHandle {
		return &cs.Error{Op: op, Code: cs.ErrLibrary,
			Err: fmt.Errorf("the connection failed as it was made (CS_ERR_BAD_HANDLE: corosync starting or stopping)")}
	}
	return codeError(op, rc)
}
