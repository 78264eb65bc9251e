//go:build !unix

package quorum

import "fmt"

// simSignal does not exist here: see poller_other.go.
type simSignal struct{}

func newSimSignal() (simSignal, error) {
	return simSignal{}, fmt.Errorf("%w: the simulated cluster needs a Unix system", ErrNotSupported)
}

func (simSignal) fd() int      { return -1 }
func (simSignal) raise()       {}
func (simSignal) clear()       {}
func (simSignal) close() error { return nil }
