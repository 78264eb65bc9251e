// Package libquorum wraps corosync's libquorum through cgo, for the root
// package's libquorum backend. It is compiled only with the build tag
// libquorum (and cgo, on Linux); without it the package is empty.
//
// A Conn speaks quorum model V1. Its requests (Quorate, TrackStart,
// TrackStop) and Dial respect their context even though libquorum itself has
// no timeouts: when corosync hangs, the caller gets its context's error back
// while the C call keeps running on its own goroutine until corosync answers,
// goes away, or the Conn is closed. Errors are *cs.Error values carrying
// corosync's cs_error_t.
//
// This package never imports the root package.
package libquorum
