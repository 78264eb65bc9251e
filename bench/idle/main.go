//go:build linux

// Command idle subscribes to corosync's quorum events and then does nothing
// but wait for the next one, so that bench/idle.sh can count the process's
// context switches while it is idle.
//
//	idle [-backend libquorum|native|sim] [-control-ticker DURATION]
//
// It prints every event on stdout, one line each, and exits 0 on SIGINT or
// SIGTERM. It exits 1 if the subscription cannot start or ends with an
// error, and 2 on bad flags.
//
// Backends:
//   - libquorum (default): corosync's C library through cgo. It needs the
//     binary built with -tags libquorum; without the tag Subscribe fails with
//     ErrNotSupported.
//   - native: the pure-Go client of corosync's IPC protocol.
//   - sim: a simulated 3-node cluster inside this process, no corosync.
//
// -control-ticker adds a time.Ticker whose ticks are counted and discarded.
// It exists only to show that the measurement sees wake-ups when a process
// has them; without it the process runs nothing besides the subscription.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/corosync-go/quorum"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run subscribes as the flags in args say and prints events to stdout until
// ctx ends (then it returns 0) or the subscription fails (1); bad flags
// return 2.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	backend := fs.String("backend", "libquorum", "libquorum, native or sim")
	tick := fs.Duration("control-ticker", 0, "add a ticker of this period (a control for the measurement); 0: none")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "idle: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *tick < 0 {
		fmt.Fprintf(stderr, "idle: -control-ticker %v: must not be negative\n", *tick)
		return 2
	}

	var b quorum.Backend
	switch *backend {
	case "libquorum":
		b = quorum.LibquorumBackend()
	case "native":
		b = quorum.NativeBackend()
	case "sim":
		c, err := quorum.NewSimClusterN(3)
		if err != nil {
			fmt.Fprintf(stderr, "idle: %v\n", err)
			return 1
		}
		b = c.Backend(1)
	default:
		fmt.Fprintf(stderr, "idle: -backend %q: want libquorum, native or sim\n", *backend)
		return 2
	}

	events, err := quorum.Subscribe(ctx, quorum.TrackCurrent|quorum.TrackChanges, quorum.WithBackend(b))
	if err != nil {
		fmt.Fprintf(stderr, "idle: subscribe (%s): %v\n", *backend, err)
		return 1
	}

	// A nil channel blocks forever, so without the control the select below
	// waits on the subscription alone.
	var ticks <-chan time.Time
	if *tick > 0 {
		t := time.NewTicker(*tick)
		defer t.Stop()
		ticks = t.C
	}

	var last error
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				// The channel closes after a cancelled ctx (a signal) or
				// after a last event carrying the error that ended it.
				if last != nil {
					fmt.Fprintf(stderr, "idle: subscription ended: %v\n", last)
					return 1
				}
				return 0
			}
			// Write errors are ignored: a closed stdout must not stop the
			// measurement, which reads /proc, not this output.
			fmt.Fprintln(stdout, ev)
			if ev.Kind == quorum.EventError {
				last = ev.Err
			}
		case <-ticks:
		}
	}
}
