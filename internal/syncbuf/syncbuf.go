// Package syncbuf is a bytes.Buffer that one goroutine may read while
// another writes it: the tests' stand-in for a terminal that quorumwatch or
// the demo prints to while the test watches the output.
package syncbuf

import (
	"bytes"
	"sync"
	"time"
)

// Buffer is safe for concurrent Write and String. The zero value is empty
// and ready.
type Buffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // closed by the next Write; made by a waiting Wait
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written != nil {
		close(s.written)
		s.written = nil
	}
	return s.b.Write(p)
}

// Wait waits at most d for what was written to satisfy ok, checking after
// each Write, and returns what was written then (or at the timeout) and
// whether ok held.
func (s *Buffer) Wait(d time.Duration, ok func(string) bool) (string, bool) {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		out := s.b.String()
		if ok(out) {
			s.mu.Unlock()
			return out, true
		}
		if s.written == nil {
			s.written = make(chan struct{})
		}
		written := s.written
		s.mu.Unlock()
		select {
		case <-written:
		case <-timeout.C:
			out := s.String()
			return out, ok(out)
		}
	}
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
