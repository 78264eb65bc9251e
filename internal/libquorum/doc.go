// Package libquorum wraps corosync's libquorum through cgo, for the root
// package's libquorum backend. It is compiled only with the build tag
// libquorum (and cgo, on Linux); without it the package is empty.
//
// A Conn speaks quorum model V1 where the libquorum loaded at run time has
// it (corosync 3.1 and later), and model V0 otherwise (corosync 2.4 and
// 3.0), whose callback it turns into the notifications V1 would give (see
// Conn.Model). The package builds against the headers of either. Its requests (Quorate, TrackStart,
// TrackStop) and Dial respect their context even though libquorum itself has
// no timeouts: when corosync hangs, the caller gets its context's error back
// while the C call keeps running on its own goroutine until corosync answers,
// goes away, or the Conn is closed. Errors are *cs.Error values carrying
// corosync's cs_error_t.
//
// This package never imports the root package.
package libquorum
