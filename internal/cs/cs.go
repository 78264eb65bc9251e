// Package cs holds corosync's cs_error_t codes and the error value that the
// internal backend packages return, so that they need not import the root
// package (which imports them). The root package turns an *Error into its
// exported *quorum.Error.
package cs

import "strconv"

// Code is corosync's cs_error_t. Success is 1, not 0.
type Code int32

// The values of cs_error_t in corosync's corotypes.h.
const (
	OK                 Code = 1
	ErrLibrary         Code = 2
	ErrVersion         Code = 3
	ErrInit            Code = 4
	ErrTimeout         Code = 5
	ErrTryAgain        Code = 6
	ErrInvalidParam    Code = 7
	ErrNoMemory        Code = 8
	ErrBadHandle       Code = 9
	ErrBusy            Code = 10
	ErrAccess          Code = 11
	ErrNotExist        Code = 12
	ErrNameTooLong     Code = 13
	ErrExist           Code = 14
	ErrNoSpace         Code = 15
	ErrInterrupt       Code = 16
	ErrNameNotFound    Code = 17
	ErrNoResources     Code = 18
	ErrNotSupported    Code = 19
	ErrBadOperation    Code = 20
	ErrFailedOp        Code = 21
	ErrMessageError    Code = 22
	ErrQueueFull       Code = 23
	ErrQueueNotAvail   Code = 24
	ErrBadFlags        Code = 25
	ErrTooBig          Code = 26
	ErrNoSections      Code = 27
	ErrContextNotFound Code = 28
	ErrTooManyGroups   Code = 30
	ErrSecurity        Code = 100
)

var names = map[Code]string{
	OK: "CS_OK", ErrLibrary: "CS_ERR_LIBRARY", ErrVersion: "CS_ERR_VERSION",
	ErrInit: "CS_ERR_INIT", ErrTimeout: "CS_ERR_TIMEOUT", ErrTryAgain: "CS_ERR_TRY_AGAIN",
	ErrInvalidParam: "CS_ERR_INVALID_PARAM", ErrNoMemory: "CS_ERR_NO_MEMORY",
	ErrBadHandle: "CS_ERR_BAD_HANDLE", ErrBusy: "CS_ERR_BUSY", ErrAccess: "CS_ERR_ACCESS",
	ErrNotExist: "CS_ERR_NOT_EXIST", ErrNameTooLong: "CS_ERR_NAME_TOO_LONG",
	ErrExist: "CS_ERR_EXIST", ErrNoSpace: "CS_ERR_NO_SPACE", ErrInterrupt: "CS_ERR_INTERRUPT",
	ErrNameNotFound: "CS_ERR_NAME_NOT_FOUND", ErrNoResources: "CS_ERR_NO_RESOURCES",
	ErrNotSupported: "CS_ERR_NOT_SUPPORTED", ErrBadOperation: "CS_ERR_BAD_OPERATION",
	ErrFailedOp: "CS_ERR_FAILED_OPERATION", ErrMessageError: "CS_ERR_MESSAGE_ERROR",
	ErrQueueFull: "CS_ERR_QUEUE_FULL", ErrQueueNotAvail: "CS_ERR_QUEUE_NOT_AVAILABLE",
	ErrBadFlags: "CS_ERR_BAD_FLAGS", ErrTooBig: "CS_ERR_TOO_BIG", ErrNoSections: "CS_ERR_NO_SECTIONS",
	ErrContextNotFound: "CS_ERR_CONTEXT_NOT_FOUND", ErrTooManyGroups: "CS_ERR_TOO_MANY_GROUPS",
	ErrSecurity: "CS_ERR_SECURITY",
}

// String returns corosync's name for the code, such as "CS_ERR_TRY_AGAIN".
func (c Code) String() string {
	if n, ok := names[c]; ok {
		return n
	}
	return "cs_error_t(" + strconv.Itoa(int(c)) + ")"
}

// Error is a failed corosync operation. Err, when set, is the underlying cause
// (an errno from a system call, say) and is what Unwrap returns.
type Error struct {
	Op   string // the operation, such as "quorum_getquorate"
	Code Code
	Err  error
}

func (e *Error) Error() string {
	s := e.Op + ": " + e.Code.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }
