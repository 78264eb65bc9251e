//go:build libquorum && linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// event is what the demo reads back from one line of quorumwatch's output.
type event struct {
	kind    string // nodelist, quorum, disconnected, reconnected, error
	initial bool
	quorate bool
	members []uint32
}

// textLine matches quorumwatch's text format, e.g.
//
//	2026-11-25T10:00:00.123Z #3 quorum ring 1.2c quorate members [1 2] joined [] left [3] initial
var textLine = regexp.MustCompile(`^\S+ #\d+ (\S+) ring \S+ (\S+) members \[([0-9 ]*)\] joined \[[0-9 ]*\] left \[[0-9 ]*\]( initial)?`)

// parseLine reads one line of quorumwatch's output in either format. ok is
// false for a line that is not an event.
func parseLine(line []byte, asJSON bool) (ev event, ok bool) {
	if asJSON {
		var j struct {
			Kind    string   `json:"kind"`
			Initial bool     `json:"initial"`
			Quorate bool     `json:"quorate"`
			Members []uint32 `json:"members"`
		}
		if err := json.Unmarshal(line, &j); err != nil || j.Kind == "" {
			return event{}, false
		}
		return event{kind: j.Kind, initial: j.Initial, quorate: j.Quorate, members: j.Members}, true
	}
	m := textLine.FindSubmatch(line)
	if m == nil {
		return event{}, false
	}
	ev = event{kind: string(m[1]), quorate: string(m[2]) == "quorate", initial: len(m[4]) > 0}
	for _, f := range strings.Fields(string(m[3])) {
		id, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return event{}, false
		}
		ev.members = append(ev.members, uint32(id))
	}
	return ev, true
}

// quorumEvent matches a quorum event with exactly members (in any order)
// and the given state.
func quorumEvent(members []uint32, quorate bool) func(event) bool {
	want := slices.Sorted(slices.Values(members))
	return func(ev event) bool {
		got := slices.Sorted(slices.Values(ev.members))
		return ev.kind == "quorum" && ev.quorate == quorate && slices.Equal(got, want)
	}
}

// kindEvent matches any event of the given kind.
func kindEvent(kind string) func(event) bool {
	return func(ev event) bool { return ev.kind == kind }
}

// watcher is a running quorumwatch whose stdout the demo copies through and
// reads back.
type watcher struct {
	// events carries every event line in order; it is closed when
	// quorumwatch's stdout ends. Sends never block: a line that does not
	// fit is still printed, only not checked (the demo makes a few dozen).
	events chan event
	done   chan struct{} // closed once quorumwatch has exited and been reaped
	err    error         // how it exited; set before done is closed
	cancel context.CancelFunc
}

// startWatcher starts the quorumwatch command that newCmd returns, with its
// stdout copied to stdout line by line and its stderr going to stderr.
// newCmd gets the context whose end stops quorumwatch.
//
// The command is started from an OS thread that stays alive until it has
// exited, with SIGKILL as its parent-death signal: if the demo itself is
// killed, quorumwatch does not outlive it.
func startWatcher(newCmd func(context.Context) *exec.Cmd, stdout, stderr io.Writer, asJSON bool) (*watcher, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newCmd(ctx)
	cmd.Stdout, cmd.Stderr = pw, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stopWithSIGINT(cmd)

	w := &watcher{events: make(chan event, 256), done: make(chan struct{}), cancel: cancel}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked the child ends, so
		// that thread must outlive the child: it is kept locked (and
		// discarded by the runtime when this goroutine ends).
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(w.done)
			return
		}
		started <- nil
		w.err = cmd.Wait()
		close(w.done)
	}()
	err = <-started
	pw.Close() // quorumwatch holds the only write end now
	if err != nil {
		pr.Close()
		cancel()
		return nil, err
	}
	go w.copyOut(pr, stdout, asJSON)
	return w, nil
}

// copyOut forwards quorumwatch's stdout and parses each line.
func (w *watcher) copyOut(pr *os.File, stdout io.Writer, asJSON bool) {
	defer close(w.events)
	defer pr.Close()
	r := bufio.NewReader(pr)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			// Written whole so that a line never mixes with narration.
			stdout.Write(line)
			if ev, ok := parseLine(bytes.TrimRight(line, "\r\n"), asJSON); ok {
				select {
				case w.events <- ev:
				default:
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// waitFor reads quorumwatch's events until one satisfies match, for at most
// streamWait. what names the awaited event in the error.
func (w *watcher) waitFor(ctx context.Context, what string, match func(event) bool) error {
	t := time.NewTimer(streamWait)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				return fmt.Errorf("quorumwatch ended before it showed %s (%s)", what, w.exitStatus())
			}
			if match(ev) {
				return nil
			}
		case <-t.C:
			return fmt.Errorf("quorumwatch did not show %s within %v", what, streamWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// exitStatus describes how quorumwatch ended, once its output has ended.
func (w *watcher) exitStatus() string {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		return "its output closed but it has not exited"
	}
	if w.err == nil {
		return "exit status 0"
	}
	return w.err.Error()
}

// stop asks quorumwatch to stop with SIGINT (SIGKILL after a few seconds)
// and waits until it has exited and its output has been copied. An exit
// with status 0, or by the SIGINT, is not an error.
func (w *watcher) stop() error {
	w.cancel()
	<-w.done // bounded: WaitDelay kills quorumwatch if SIGINT did not end it
	// The rest of its output is printed as it is read; the channel closes
	// at EOF, which comes with quorumwatch's exit unless something else
	// inherited the pipe.
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
drain:
	for {
		select {
		case _, ok := <-w.events:
			if !ok {
				break drain
			}
		case <-t.C:
			break drain
		}
	}
	err := w.err
	if errors.Is(err, context.Canceled) {
		// exec reports a clean exit after our SIGINT this way
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() && st.Signal() == syscall.SIGINT {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("exited with %v", err)
	}
	return nil
}
