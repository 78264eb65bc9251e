package quorum

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/corosync-go/quorum/internal/cs"
)

// Sentinel errors, for errors.Is. An *Error from corosync matches the sentinel
// of its code, so errors.Is(err, ErrTryAgain) holds for a CS_ERR_TRY_AGAIN
// from any backend.
var (
	// ErrTryAgain: corosync is starting or busy (CS_ERR_TRY_AGAIN). The
	// engine retries it on its own when connecting.
	ErrTryAgain = errors.New("quorum: corosync asks to try again")
	// ErrAccess: corosync refused this process (CS_ERR_ACCESS). Run as root,
	// or grant the user a uidgid entry in corosync.conf.
	ErrAccess = errors.New("quorum: access denied by corosync")
	// ErrConnectionLost: corosync is not running or went away
	// (CS_ERR_LIBRARY, or a hang-up on the connection).
	ErrConnectionLost = errors.New("quorum: connection to corosync lost")
	// ErrInvalidParam: an argument was refused (CS_ERR_INVALID_PARAM), or
	// this package refused an argument before calling corosync.
	ErrInvalidParam = errors.New("quorum: invalid parameter")
	// ErrExist: tracking was already started on the connection (CS_ERR_EXIST).
	ErrExist = errors.New("quorum: already exists")
	// ErrNotSupported: the operation or backend is not available here
	// (CS_ERR_NOT_SUPPORTED, or a backend not built into this binary).
	ErrNotSupported = errors.New("quorum: not supported")
	// ErrBadHandle: the connection handle is no longer valid (CS_ERR_BAD_HANDLE).
	ErrBadHandle = errors.New("quorum: bad handle")
	// ErrNoMemory: corosync or the library ran out of memory (CS_ERR_NO_MEMORY).
	ErrNoMemory = errors.New("quorum: out of memory")
	// ErrSlowConsumer ends a lossless subscription whose buffer overflowed:
	// it is carried by the last event before its channel closes.
	ErrSlowConsumer = errors.New("quorum: subscriber fell behind its lossless buffer")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("quorum: client closed")
)

// Code is corosync's cs_error_t. Success is 1 (CS_OK), not 0.
type Code int32

// The values of corosync's cs_error_t (corotypes.h). Not every one is ever
// returned by the quorum service; all are here so that none is written as a
// bare number.
const (
	CodeOK                Code = Code(cs.OK)
	CodeLibrary           Code = Code(cs.ErrLibrary)
	CodeVersion           Code = Code(cs.ErrVersion)
	CodeInit              Code = Code(cs.ErrInit)
	CodeTimeout           Code = Code(cs.ErrTimeout)
	CodeTryAgain          Code = Code(cs.ErrTryAgain)
	CodeInvalidParam      Code = Code(cs.ErrInvalidParam)
	CodeNoMemory          Code = Code(cs.ErrNoMemory)
	CodeBadHandle         Code = Code(cs.ErrBadHandle)
	CodeBusy              Code = Code(cs.ErrBusy)
	CodeAccess            Code = Code(cs.ErrAccess)
	CodeNotExist          Code = Code(cs.ErrNotExist)
	CodeNameTooLong       Code = Code(cs.ErrNameTooLong)
	CodeExist             Code = Code(cs.ErrExist)
	CodeNoSpace           Code = Code(cs.ErrNoSpace)
	CodeInterrupt         Code = Code(cs.ErrInterrupt)
	CodeNameNotFound      Code = Code(cs.ErrNameNotFound)
	CodeNoResources       Code = Code(cs.ErrNoResources)
	CodeNotSupported      Code = Code(cs.ErrNotSupported)
	CodeBadOperation      Code = Code(cs.ErrBadOperation)
	CodeFailedOperation   Code = Code(cs.ErrFailedOp)
	CodeMessageError      Code = Code(cs.ErrMessageError)
	CodeQueueFull         Code = Code(cs.ErrQueueFull)
	CodeQueueNotAvailable Code = Code(cs.ErrQueueNotAvail)
	CodeBadFlags          Code = Code(cs.ErrBadFlags)
	CodeTooBig            Code = Code(cs.ErrTooBig)
	CodeNoSections        Code = Code(cs.ErrNoSections)
	CodeContextNotFound   Code = Code(cs.ErrContextNotFound)
	CodeTooManyGroups     Code = Code(cs.ErrTooManyGroups)
	CodeSecurity          Code = Code(cs.ErrSecurity)
)

// String returns corosync's name for the code, such as "CS_ERR_TRY_AGAIN".
func (c Code) String() string { return cs.Code(c).String() }

// Error is a failed corosync operation: the operation, corosync's code, and
// the underlying cause when there is one (an errno, say).
//
// errors.Is matches an *Error against the sentinel of its code
// (CS_ERR_LIBRARY matches ErrConnectionLost, and so on); errors.As retrieves
// it to read Code.
type Error struct {
	Op   string // the corosync call, such as "quorum_initialize"
	Code Code   // corosync's cs_error_t
	Err  error  // the cause, or nil
}

func (e *Error) Error() string {
	s := "quorum: " + e.Op + ": " + e.Code.String() + " (" + strconv.Itoa(int(e.Code)) + ")"
	if e.Err != nil {
		s += ": " + e.Err.Error()
	} else if sentinel := sentinelFor(e.Code); sentinel != nil {
		s += ": " + strings.TrimPrefix(sentinel.Error(), "quorum: ")
	}
	if e.Code == Code(cs.ErrAccess) {
		s += "; " + accessHint()
	}
	return s
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel for e's code.
func (e *Error) Is(target error) bool {
	s := sentinelFor(e.Code)
	return s != nil && s == target
}

func sentinelFor(c Code) error {
	switch cs.Code(c) {
	case cs.ErrTryAgain:
		return ErrTryAgain
	case cs.ErrAccess, cs.ErrSecurity:
		return ErrAccess
	case cs.ErrLibrary:
		return ErrConnectionLost
	case cs.ErrInvalidParam, cs.ErrBadFlags:
		return ErrInvalidParam
	case cs.ErrExist:
		return ErrExist
	case cs.ErrNotSupported:
		return ErrNotSupported
	case cs.ErrBadHandle:
		return ErrBadHandle
	case cs.ErrNoMemory:
		return ErrNoMemory
	}
	return nil
}

func accessHint() string {
	uid := os.Geteuid()
	return fmt.Sprintf("corosync accepts root and the users and groups it lists: add "+
		"\"uidgid { uid: %d }\" to corosync.conf (or a file in /etc/corosync/uidgid.d/) "+
		"and run corosync-cfgtool -R, or run this program as root", uid)
}

// fromInternal turns the internal backends' *cs.Error into an exported *Error,
// keeping any other error as it is.
func fromInternal(err error) error {
	var ce *cs.Error
	if errors.As(err, &ce) {
		return &Error{Op: ce.Op, Code: Code(ce.Code), Err: ce.Err}
	}
	return err
}

// newError is shorthand for the backends in this package.
func newError(op string, code cs.Code, cause error) *Error {
	return &Error{Op: op, Code: Code(code), Err: cause}
}
