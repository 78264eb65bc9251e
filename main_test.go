package quorum_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// Client, subscription and simulated connection must be released.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
