//go:build !unix

package quorum

import (
	"fmt"
	"time"
)

// poller does not exist here: the engine waits on file descriptors, which
// this system does not offer the way Unix does.
type poller struct{}

func newPoller() (*poller, error) {
	return nil, fmt.Errorf("%w: the engine needs a Unix system to wait on corosync's descriptors "+
		"(corosync itself runs on Linux)", ErrNotSupported)
}

func (*poller) setConns(...int) error              { return nil }
func (*poller) wake()                              {}
func (*poller) wait(time.Time) (waitResult, error) { return waitResult{}, nil }
func (*poller) close()                             {}
