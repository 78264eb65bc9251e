//go:build linux

package qbipc

import (
	"errors"
	"fmt"

	"github.com/corosync-go/quorum/internal/cs"
	"golang.org/x/sys/unix"
)

// ErrClosed is the cause in errors from a Conn that was closed.
var ErrClosed = errors.New("qbipc: connection closed")

// errAgain signals ring or socket flow control to the request loop.
var errAgain = errors.New("qbipc: flow control")

// codeForErrno converts an errno the way libqb's callers do
// (qb_to_cs_error): a dead or missing server is CS_ERR_LIBRARY.
func codeForErrno(e unix.Errno) cs.Code {
	switch e {
	case unix.EAGAIN, unix.ETIMEDOUT, unix.EINTR:
		return cs.ErrTryAgain
	case unix.EACCES, unix.EPERM:
		return cs.ErrAccess
	case unix.ENOMEM, unix.ENOBUFS:
		return cs.ErrNoMemory
	case unix.EINVAL:
		return cs.ErrInvalidParam
	case unix.EMSGSIZE:
		return cs.ErrTooBig
	case unix.ENOSYS, unix.EOPNOTSUPP:
		return cs.ErrNotSupported
	}
	// ECONNREFUSED, ENOENT, ENOTCONN, EPIPE, ECONNRESET, EBADMSG, ...
	return cs.ErrLibrary
}

// wrapErr gives err a cs.Code: errnos by codeForErrno, *cs.Error unchanged,
// everything else (malformed data, faults) as CS_ERR_LIBRARY, because after
// it the connection cannot be trusted.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *cs.Error
	if errors.As(err, &ce) {
		return err
	}
	var en unix.Errno
	if errors.As(err, &en) {
		return &cs.Error{Op: op, Code: codeForErrno(en), Err: err}
	}
	return &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
}

// lostErr reports the server hanging up.
func lostErr(op string) error {
	return &cs.Error{Op: op, Code: cs.ErrLibrary, Err: fmt.Errorf("server hung up: %w", unix.ENOTCONN)}
}
