package quorum

// The pump waits in one place, a poller: on the connection's descriptor, on
// wake-ups from other goroutines, and on a deadline (the reconnection
// backoff, or the picture's refresh). On Linux it is an epoll set parked on the Go netpoller
// (poller_epoll.go); on other Unix systems, and on Linux when built with the
// tag quorum_portable (CI runs the engine's tests so once), poll(2) on the
// pump's own thread (poller_poll.go). Elsewhere there is none
// (poller_other.go): the package builds, and Open says what is missing.
//
// Every poller has the same methods, all called by the pump alone except
// wake, which any goroutine may call and which never blocks:
//
//	newPoller() (*poller, error)
//	setConns(fds ...int) error // wait on fds from now on (none: on nothing)
//	wake()                     // make a wait in progress, or the next, return
//	wait(deadline time.Time) (waitResult, error) // zero deadline: none
//	close()

// waitResult says what woke the pump.
type waitResult struct {
	conn, woken, timedOut bool
}
