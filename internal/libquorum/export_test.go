//go:build libquorum && cgo && linux

package libquorum

import "testing"

// ForceV0 lets the backend tests (package libquorum_test) run the root
// package's LibquorumBackend on model V0 until the test ends.
func ForceV0(t testing.TB) {
	t.Helper()
	forceV0.Store(true)
	t.Cleanup(func() { forceV0.Store(false) })
}
