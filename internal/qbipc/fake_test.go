//go:build linux

package qbipc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/qbipc/qbipctest"
	"golang.org/x/sys/unix"
)

func dialFake(t *testing.T, s *qbipctest.Server, trusted ...uint32) (*Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Dial(ctx, Config{Service: s.Service, ShmDir: s.Dir, TrustedUIDs: trusted})
}

func mustDial(t *testing.T, s *qbipctest.Server) (*Conn, *qbipctest.Conn) {
	t.Helper()
	c, err := dialFake(t, s)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, s.Next(t)
}

func codeOf(err error) cs.Code {
	var ce *cs.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// msg builds a message whose header says id and len; the body is filled
// with a pattern derived from seed.
func msg(id int32, size int, seed byte) []byte {
	b := make([]byte, size)
	binary.NativeEndian.PutUint32(b[0:], uint32(id))
	binary.NativeEndian.PutUint32(b[8:], uint32(size))
	for i := RequestHeaderSize; i < size; i++ {
		b[i] = seed + byte(i)
	}
	return b
}

// resp builds a response (24-byte header, error CS_OK) with a pattern.
func resp(id int32, size int, seed byte) []byte {
	b := msg(id, size, seed)
	binary.NativeEndian.PutUint32(b[16:], 1)
	return b
}

func any(ResponseHeader) bool { return true }

func forTransports(t *testing.T, fn func(t *testing.T, socket bool)) {
	t.Run("shm", func(t *testing.T) { fn(t, false) })
	t.Run("socket", func(t *testing.T) { fn(t, true) })
}

func TestHandshakeAndClose(t *testing.T) {
	forTransports(t, func(t *testing.T, socket bool) {
		s := qbipctest.Start(t, qbipctest.Options{Socket: socket})
		c, sc := mustDial(t, s)
		want := TransportSHM
		if socket {
			want = TransportSocket
		}
		if c.Transport() != want || c.MaxMsgSize() != 1<<20 {
			t.Fatalf("transport %v max %d", c.Transport(), c.MaxMsgSize())
		}
		if sc.ClientMaxMsgSize != DefaultMaxMsgSize {
			t.Fatalf("client asked for %d", sc.ClientMaxMsgSize)
		}
		if pid, uid, _ := c.Peer(); pid != int32(os.Getpid()) || uid != uint32(os.Geteuid()) {
			t.Fatalf("peer pid %d uid %d", pid, uid)
		}
		if !socket {
			for _, r := range []*qbipctest.Ring{sc.Request, sc.Response, sc.Event} {
				if r.RefCount() != 2 {
					t.Fatalf("%s ref count %d after connect, want 2", r.Base, r.RefCount())
				}
			}
		}
		c.Close()
		if !socket {
			for _, r := range []*qbipctest.Ring{sc.Request, sc.Response, sc.Event} {
				if r.RefCount() != 1 {
					t.Fatalf("%s ref count %d after Close, want 1", r.Base, r.RefCount())
				}
			}
		}
		var b [1]byte
		if err := qbipctest.WaitReadable(sc.Setup, time.Second); err != nil {
			t.Fatal("server did not see the hang-up")
		}
		if n, _ := unix.Read(sc.Setup, b[:]); n != 0 {
			t.Fatalf("server read %d bytes after Close, want EOF", n)
		}
		if _, err := c.Request(context.Background(), msg(0, 16, 0), any); !errors.Is(err, ErrClosed) {
			t.Fatalf("Request after Close: %v", err)
		}
		if _, _, err := c.ReadEvent(); !errors.Is(err, ErrClosed) {
			t.Fatalf("ReadEvent after Close: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// serve answers every request with respond(req) until the test ends.
func serve(t *testing.T, sc *qbipctest.Conn, respond func(req []byte) []byte) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			default:
			}
			req, err := sc.ReadRequest(50 * time.Millisecond)
			if err != nil {
				continue
			}
			if r := respond(req); r != nil {
				if err := sc.Respond(r); err != nil {
					t.Errorf("respond: %v", err)
				}
			}
		}
	}()
}

func TestRequestResponse(t *testing.T) {
	forTransports(t, func(t *testing.T, socket bool) {
		s := qbipctest.Start(t, qbipctest.Options{Socket: socket})
		c, sc := mustDial(t, s)
		serve(t, sc, func(req []byte) []byte {
			// Echo the body back after a response header.
			r := resp(int32(binary.NativeEndian.Uint32(req)), len(req)+8, 0)
			copy(r[24:], req[16:])
			return r
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for i := 0; i < 50; i++ {
			size := 16 + 4*i + i%4
			req := msg(int32(i), size, byte(i))
			got, err := c.Request(ctx, req, func(h ResponseHeader) bool { return h.ID == int32(i) })
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if !bytes.Equal(got[24:], req[16:]) {
				t.Fatalf("request %d: echo mismatch", i)
			}
		}
	})
}

func TestEvents(t *testing.T) {
	forTransports(t, func(t *testing.T, socket bool) {
		s := qbipctest.Start(t, qbipctest.Options{Socket: socket})
		c, sc := mustDial(t, s)
		if _, ok, err := c.ReadEvent(); ok || err != nil {
			t.Fatalf("ReadEvent on an idle connection: %v %v", ok, err)
		}
		if qbipctest.WaitReadable(c.Fd(), 50*time.Millisecond) == nil {
			t.Fatal("Fd readable with nothing queued")
		}
		var sent [][]byte
		for i := 0; i < 5; i++ {
			m := resp(int32(6+i%2), 60+4*i, byte(i))
			sent = append(sent, m)
			if err := sc.SendEvent(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := qbipctest.WaitReadable(c.Fd(), time.Second); err != nil {
			t.Fatalf("Fd not readable with events queued: %v", err)
		}
		for i, want := range sent {
			got, ok, err := c.ReadEvent()
			if err != nil || !ok || !bytes.Equal(got, want) {
				t.Fatalf("event %d: ok %v err %v equal %v", i, ok, err, bytes.Equal(got, want))
			}
		}
		if _, ok, err := c.ReadEvent(); ok || err != nil {
			t.Fatalf("ReadEvent after draining: %v %v", ok, err)
		}
		// Every doorbell was read back as an acknowledgement, so the fd
		// is quiet again.
		if qbipctest.WaitReadable(c.Fd(), 50*time.Millisecond) == nil {
			t.Fatal("Fd still readable after all events were read")
		}
	})
}

// TestLateDoorbell: the server posts the event before it rings; a client
// that reads the event first must consume the byte later.
func TestLateDoorbell(t *testing.T) {
	s := qbipctest.Start(t, qbipctest.Options{})
	c, sc := mustDial(t, s)
	if err := sc.Event.Write(resp(6, 56, 1)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.ReadEvent(); !ok || err != nil {
		t.Fatalf("ReadEvent: %v %v", ok, err)
	}
	if err := sc.Doorbell(); err != nil {
		t.Fatal(err)
	}
	if err := qbipctest.WaitReadable(c.Fd(), time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.ReadEvent(); ok || err != nil {
		t.Fatalf("ReadEvent: %v %v", ok, err)
	}
	if qbipctest.WaitReadable(c.Fd(), 50*time.Millisecond) == nil {
		t.Fatal("late doorbell was not consumed")
	}
}

func TestWrapAround(t *testing.T) {
	// 64-word rings: every few messages wrap, and some payloads straddle
	// the end of the data file.
	s := qbipctest.Start(t, qbipctest.Options{DataBytes: 256, MaxMsgSize: 200})
	c, sc := mustDial(t, s)
	serve(t, sc, func(req []byte) []byte {
		r := resp(int32(binary.NativeEndian.Uint32(req)), len(req)+8, 0)
		copy(r[24:], req[16:])
		return r
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wrapped := false
	for i := 0; i < 200; i++ {
		size := 16 + (i*7)%100
		req := msg(int32(i), size, byte(i))
		got, err := c.Request(ctx, req, any)
		if err != nil {
			t.Fatalf("request %d (%d bytes): %v", i, size, err)
		}
		if !bytes.Equal(got[24:], req[16:]) {
			t.Fatalf("request %d: echo mismatch", i)
		}
		ev := resp(7, 24+(i*13)%150, byte(i))
		if err := sc.SendEvent(ev); err != nil {
			t.Fatal(err)
		}
		got, ok, err := c.ReadEvent()
		if err != nil || !ok || !bytes.Equal(got, ev) {
			t.Fatalf("event %d: ok %v err %v", i, ok, err)
		}
		if r, _ := sc.Event.Pointers(); r < 10 && i > 0 {
			wrapped = true
		}
	}
	if !wrapped {
		t.Fatal("the event ring never wrapped")
	}
}

func TestFlowControl(t *testing.T) {
	forTransports(t, func(t *testing.T, socket bool) {
		s := qbipctest.Start(t, qbipctest.Options{Socket: socket})
		c, sc := mustDial(t, s)
		sc.SetFlowControl(1)
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := c.Request(ctx, msg(0, 16, 0), any)
			done <- err
		}()
		if req, err := sc.ReadRequest(200 * time.Millisecond); err == nil {
			t.Fatalf("request %x sent through flow control", req)
		}
		sc.SetFlowControl(0)
		if _, err := sc.ReadRequest(2 * time.Second); err != nil {
			t.Fatalf("request after flow control ended: %v", err)
		}
		if err := sc.Respond(resp(0, 32, 0)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// Level 2 (RATE_OFF_2) is above libqb's fc_enable_max: sends go on.
		sc.SetFlowControl(2)
		serve(t, sc, func([]byte) []byte { return resp(0, 32, 0) })
		if _, err := c.Request(context.Background(), msg(0, 16, 0), any); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRingFull: with no room in the request ring the request waits, within
// its context, and goes through once the server makes room.
func TestRingFull(t *testing.T) {
	s := qbipctest.Start(t, qbipctest.Options{DataBytes: 256, MaxMsgSize: 200})
	c, sc := mustDial(t, s)
	// A write pointer just behind the read pointer leaves no free word.
	sc.Request.SetPointers(10, 9)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := c.Request(ctx, msg(0, 16, 0), any)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request into a full ring: %v", err)
	}
	if req, err := sc.ReadRequest(50 * time.Millisecond); err == nil {
		t.Fatalf("server got %x from a full ring", req)
	}
	stalled := make(chan struct{}, 1)
	c.hooks.stalled = func() {
		select {
		case stalled <- struct{}{}:
		default:
		}
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := c.Request(ctx, msg(0, 16, 0), any)
		if err == nil && r[24] != 9+24 {
			err = fmt.Errorf("wrong response %x", r)
		}
		done <- err
	}()
	<-stalled // the request waits for room
	sc.Request.SetPointers(9, 9)
	if _, err := sc.ReadRequest(2 * time.Second); err != nil {
		t.Fatalf("request after room was made: %v", err)
	}
	if err := sc.Respond(resp(0, 32, 9)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestLateResponse: a request whose context ends leaves its response to be
// drained; the next request gets its own answer, not the stale one.
func TestLateResponse(t *testing.T) {
	forTransports(t, func(t *testing.T, socket bool) {
		s := qbipctest.Start(t, qbipctest.Options{Socket: socket})
		c, sc := mustDial(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		_, err := c.Request(ctx, msg(0, 16, 0), any)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("unanswered request: %v", err)
		}
		// The server never answers, so returning at all shows the deadline
		// was kept; the bound catches a wait on a timer of the client's
		// own, with slack for a busy machine.
		if el := time.Since(start); el > 100*time.Millisecond+time.Second {
			t.Fatalf("request held its caller %v with a 100 ms deadline", el)
		}
		if _, err := sc.ReadRequest(time.Second); err != nil {
			t.Fatal(err)
		}
		if err := sc.Respond(resp(0, 32, 1)); err != nil { // the stale answer
			t.Fatal(err)
		}
		serve(t, sc, func([]byte) []byte { return resp(0, 32, 2) })
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for i := 0; i < 3; i++ {
			r, err := c.Request(ctx, msg(0, 16, 0), any)
			if err != nil || r[24] != 2+24 {
				t.Fatalf("request %d after a timeout: %x %v", i, r, err)
			}
		}
	})
}

// TestStaleByID: a response the matcher rejects is skipped.
func TestStaleByID(t *testing.T) {
	s := qbipctest.Start(t, qbipctest.Options{})
	c, sc := mustDial(t, s)
	serve(t, sc, func([]byte) []byte {
		if err := sc.Respond(resp(9, 24, 0)); err != nil {
			t.Error(err)
		}
		return resp(1, 32, 5)
	})
	r, err := c.Request(context.Background(), msg(1, 16, 0), func(h ResponseHeader) bool { return h.ID == 1 })
	if err != nil || r[24] != 5+24 {
		t.Fatalf("%x %v", r, err)
	}
}

func TestHangUp(t *testing.T) {
	forTransports(t, func(t *testing.T, socket bool) {
		s := qbipctest.Start(t, qbipctest.Options{Socket: socket})
		c, sc := mustDial(t, s)
		if err := sc.SendEvent(resp(6, 56, 0)); err != nil {
			t.Fatal(err)
		}
		sc.HangUp()
		if err := qbipctest.WaitReadable(c.Fd(), time.Second); err != nil {
			t.Fatalf("Fd not readable after hang-up: %v", err)
		}
		// The queued event still arrives, then the loss.
		if _, ok, err := c.ReadEvent(); !ok || err != nil {
			t.Fatalf("queued event: %v %v", ok, err)
		}
		if _, _, err := c.ReadEvent(); codeOf(err) != cs.ErrLibrary {
			t.Fatalf("ReadEvent after hang-up: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.Request(ctx, msg(0, 16, 0), any); codeOf(err) != cs.ErrLibrary {
			t.Fatalf("Request after hang-up: %v", err)
		}
	})
}

// TestHangUpWhileWaiting: a request waiting for a response notices the
// server going away.
func TestHangUpWhileWaiting(t *testing.T) {
	forTransports(t, func(t *testing.T, socket bool) {
		s := qbipctest.Start(t, qbipctest.Options{Socket: socket})
		c, sc := mustDial(t, s)
		hung := make(chan struct{})
		go func() {
			defer close(hung)
			_, _ = sc.ReadRequest(time.Second)
			sc.HangUp()
		}()
		defer func() { <-hung }()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.Request(ctx, msg(0, 16, 0), any); codeOf(err) != cs.ErrLibrary {
			t.Fatalf("Request when the server hangs up: %v", err)
		}
	})
}

// TestCloseWhileWaiting: Close ends a request waiting on the caller's
// goroutine (a context without a Done channel) and one waiting on a
// goroutine of its own (a context that can end).
func TestCloseWhileWaiting(t *testing.T) {
	forTransports(t, func(t *testing.T, socket bool) {
		t.Run("background", func(t *testing.T) { closeWhileWaiting(t, socket, context.Background()) })
		t.Run("deadline", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			closeWhileWaiting(t, socket, ctx)
		})
	})
}

func closeWhileWaiting(t *testing.T, socket bool, ctx context.Context) {
	s := qbipctest.Start(t, qbipctest.Options{Socket: socket})
	c, _ := mustDial(t, s)
	sent := make(chan struct{})
	c.hooks.sent = func() { close(sent) }
	done := make(chan error, 1)
	go func() {
		_, err := c.Request(ctx, msg(0, 16, 0), any)
		done <- err
	}()
	<-sent // the request waits for its response
	start := time.Now()
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("waiting request after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not end the waiting request")
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Close took %v", el)
	}
}

func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		errno unix.Errno
		code  cs.Code
	}{{unix.EAGAIN, cs.ErrTryAgain}, {unix.EACCES, cs.ErrAccess}, {unix.ENOMEM, cs.ErrNoMemory}} {
		s := qbipctest.Start(t, qbipctest.Options{Refuse: -int32(tc.errno)})
		_, err := dialFake(t, s)
		if codeOf(err) != tc.code || !errors.Is(err, tc.errno) {
			t.Errorf("refused with %v: %v, want %v", tc.errno, err, tc.code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Dial(ctx, Config{Service: "qbipctest-nobody-listens-here"})
	if codeOf(err) != cs.ErrLibrary || !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("no server: %v", err)
	}
}

func TestUntrustedPeer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("claiming another uid in SCM_CREDENTIALS needs root")
	}
	uid := uint32(4242)
	s := qbipctest.Start(t, qbipctest.Options{PeerUID: &uid})
	_, err := dialFake(t, s)
	if codeOf(err) != cs.ErrSecurity || !strings.Contains(err.Error(), "uid 4242") ||
		!strings.Contains(err.Error(), "WithTrustedUIDs") {
		t.Fatalf("untrusted server: %v", err)
	}
	c, err := dialFake(t, s, 4242)
	if err != nil {
		t.Fatalf("trusted uid: %v", err)
	}
	c.Close()
}

// TestOrphanedFiles: when the server died without removing its files, Close
// removes them (as libqb's client does); while it lives, Close leaves them.
func TestOrphanedFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("claiming another pid in SCM_CREDENTIALS needs root")
	}
	forTransports(t, func(t *testing.T, socket bool) {
		for _, flat := range []bool{false, true} {
			// A child stands in for the server process, so that it can die.
			child := exec.Command("sleep", "30")
			if err := child.Start(); err != nil {
				t.Skip(err)
			}
			defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
			s := qbipctest.Start(t, qbipctest.Options{Socket: socket, PeerPID: int32(child.Process.Pid), FlatNames: flat})
			c, sc := mustDial(t, s)
			if pid, _, _ := c.Peer(); pid != int32(child.Process.Pid) {
				t.Fatalf("peer pid %d", pid)
			}
			files := c.ServerFiles()
			sc.HangUp()
			_ = child.Process.Kill()
			_ = child.Wait()
			c.Close()
			ents, _ := os.ReadDir(sc.Dir)
			if flat {
				// The files lay in the shared directory, which stays.
				for _, f := range files {
					if _, err := os.Stat(f); !os.IsNotExist(err) {
						t.Errorf("flat: %s after Close: %v", f, err)
					}
				}
				if len(ents) != 0 {
					t.Errorf("flat: %d entries left in %s", len(ents), sc.Dir)
				}
			} else if _, err := os.Stat(sc.Dir); !os.IsNotExist(err) {
				t.Fatalf("%s after Close: %v, %d entries left", sc.Dir, err, len(ents))
			}
		}
	})
	// A live server keeps its files.
	s := qbipctest.Start(t, qbipctest.Options{})
	c, sc := mustDial(t, s)
	sc.HangUp()
	c.Close()
	if _, err := os.Stat(sc.Request.Base + "-header"); err != nil {
		t.Fatalf("Close removed a live server's files: %v", err)
	}
}

func TestSemaphoreLayoutRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    uint64
		private int32
	}{{"private", 0, 0}, {"value", 1 << 30, 128}, {"waiters", 1 << 60, 128}} {
		s := qbipctest.Start(t, qbipctest.Options{BeforeRespond: func(c *qbipctest.Conn) {
			c.Response.SetSemRaw(tc.data, tc.private)
		}})
		_, err := dialFake(t, s)
		if codeOf(err) != cs.ErrNotSupported || !errors.Is(err, ErrSemaphoreLayout) ||
			!strings.Contains(err.Error(), "-tags libquorum") {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestBadHandshake(t *testing.T) {
	typ := int32(7)
	for _, tc := range []struct {
		name string
		opts qbipctest.Options
		code cs.Code
	}{
		// A server that breaks the handshake's rules will break them
		// again: not worth a retry, unlike a missing file.
		{"unknown transport", qbipctest.Options{ConnectionType: &typ}, cs.ErrNotSupported},
		{"huge max size", qbipctest.Options{MaxMsgSize: 1 << 30}, cs.ErrNotSupported},
		{"name outside dir", qbipctest.Options{MangleResponse: func(b []byte) {
			copy(b[40:], "/etc/passwd\x00")
		}}, cs.ErrNotSupported},
		{"dotdot name", qbipctest.Options{MangleResponse: func(b []byte) {
			off := 40 + 4096
			n := bytes.IndexByte(b[off:], 0)
			copy(b[off+n:], "/../../x\x00")
		}}, cs.ErrNotSupported},
		{"unterminated name", qbipctest.Options{MangleResponse: func(b []byte) {
			for i := 40 + 2*4096; i < 40+3*4096; i++ {
				b[i] = 'a'
			}
		}}, cs.ErrNotSupported},
		{"bad id", qbipctest.Options{MangleResponse: func(b []byte) { b[0] = 5 }}, cs.ErrNotSupported},
		{"bad size", qbipctest.Options{MangleResponse: func(b []byte) { b[8] = 5 }}, cs.ErrNotSupported},
		{"missing ring", qbipctest.Options{BeforeRespond: func(c *qbipctest.Conn) {
			os.Remove(c.Event.Base + "-data")
		}}, cs.ErrLibrary},
	} {
		s := qbipctest.Start(t, tc.opts)
		c, err := dialFake(t, s)
		if err == nil {
			c.Close()
		}
		if codeOf(err) != tc.code {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.code)
		}
	}
}

func TestCorruptEvents(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(sc *qbipctest.Conn) error
	}{
		{"bad magic", func(sc *qbipctest.Conn) error {
			return sc.Event.WriteRaw(resp(6, 56, 0), 56, 0x12345678)
		}},
		{"huge length", func(sc *qbipctest.Conn) error {
			return sc.Event.WriteRaw(resp(6, 56, 0), 0xFFFFFFF0, qbipctest.MagicCommitted)
		}},
		{"longer than the ring", func(sc *qbipctest.Conn) error {
			return sc.Event.WriteRaw(resp(6, 56, 0), 4*sc.Event.Words(), qbipctest.MagicCommitted)
		}},
		{"header size disagrees", func(sc *qbipctest.Conn) error {
			m := resp(6, 56, 0)
			binary.NativeEndian.PutUint32(m[8:], 1000)
			return sc.Event.Write(m)
		}},
		{"shorter than a header", func(sc *qbipctest.Conn) error {
			return sc.Event.Write([]byte{1, 2, 3})
		}},
		{"read pointer out of range", func(sc *qbipctest.Conn) error {
			if err := sc.Event.Write(resp(6, 56, 0)); err != nil {
				return err
			}
			sc.Event.SetPointers(sc.Event.Words()+5, 0)
			return nil
		}},
		{"semaphore without chunk", func(sc *qbipctest.Conn) error {
			// A post with nothing committed: the magic at the read
			// pointer is zero.
			sc.Event.SetSemRaw(1, 128)
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := qbipctest.Start(t, qbipctest.Options{})
			c, sc := mustDial(t, s)
			if err := tc.write(sc); err != nil {
				t.Fatal(err)
			}
			_, ok, err := c.ReadEvent()
			if ok || codeOf(err) != cs.ErrLibrary {
				t.Fatalf("ReadEvent: ok %v err %v", ok, err)
			}
		})
	}
}

func TestCorruptResponse(t *testing.T) {
	s := qbipctest.Start(t, qbipctest.Options{})
	c, sc := mustDial(t, s)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if _, err := sc.ReadRequest(time.Second); err == nil {
			_ = sc.Response.WriteRaw(resp(0, 32, 0), 1<<31, qbipctest.MagicCommitted)
		}
	}()
	defer func() { <-served }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Request(ctx, msg(0, 16, 0), any); codeOf(err) != cs.ErrLibrary {
		t.Fatalf("corrupt response: %v", err)
	}
}

// TestTruncated: a data file that shrinks under the client gives an error
// instead of a SIGBUS that would kill the process.
func TestTruncated(t *testing.T) {
	s := qbipctest.Start(t, qbipctest.Options{})
	c, sc := mustDial(t, s)
	if err := sc.SendEvent(resp(6, 56, 0)); err != nil {
		t.Fatal(err)
	}
	if err := sc.Event.Truncate(0); err != nil {
		t.Fatal(err)
	}
	_, ok, err := c.ReadEvent()
	if ok || codeOf(err) != cs.ErrLibrary || !errors.Is(err, errFault) {
		t.Fatalf("ReadEvent on a truncated ring: ok %v err %v", ok, err)
	}
	if err := sc.Request.Truncate(0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Request(ctx, msg(0, 16, 0), any); !errors.Is(err, errFault) {
		t.Fatalf("Request on a truncated ring: %v", err)
	}
}

func TestRefCountLost(t *testing.T) {
	s := qbipctest.Start(t, qbipctest.Options{})
	c, sc := mustDial(t, s)
	sc.Request.SetRefCount(1)
	if _, err := c.Request(context.Background(), msg(0, 16, 0), any); codeOf(err) != cs.ErrLibrary {
		t.Fatalf("Request after the server dropped its reference: %v", err)
	}
	sc.Request.SetRefCount(2)
}

func TestCorruptDatagram(t *testing.T) {
	s := qbipctest.Start(t, qbipctest.Options{Socket: true, MaxMsgSize: 4096})
	c, sc := mustDial(t, s)
	for _, m := range [][]byte{
		{1, 2, 3},
		func() []byte { b := resp(6, 56, 0); b[8] = 99; return b }(),
		resp(6, 8000, 0),
	} {
		if err := sc.SendEvent(m); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := c.ReadEvent(); ok || codeOf(err) != cs.ErrLibrary {
			t.Fatalf("datagram of %d bytes: ok %v err %v", len(m), ok, err)
		}
	}
}

func TestRequestTooBig(t *testing.T) {
	s := qbipctest.Start(t, qbipctest.Options{MaxMsgSize: 1000})
	c, _ := mustDial(t, s)
	if _, err := c.Request(context.Background(), make([]byte, 1001), any); codeOf(err) != cs.ErrInvalidParam {
		t.Fatalf("oversized request: %v", err)
	}
	if _, err := c.Request(context.Background(), make([]byte, 8), any); codeOf(err) != cs.ErrInvalidParam {
		t.Fatalf("undersized request: %v", err)
	}
}

func TestDialDeadline(t *testing.T) {
	s := qbipctest.Start(t, qbipctest.Options{Silent: true})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, Config{Service: s.Service, ShmDir: s.Dir})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a silent server: %v", err)
	}
	if el := time.Since(start); el > 150*time.Millisecond+time.Second {
		t.Fatalf("Dial returned %v after its start, with a 150 ms deadline", el)
	}
}

// TestTruncatedResponse: the response ring's header (with the semaphore the
// waiter sleeps on) shrinking under a waiting request gives an error, not a
// crash.
func TestTruncatedResponse(t *testing.T) {
	s := qbipctest.Start(t, qbipctest.Options{})
	c, sc := mustDial(t, s)
	truncated := make(chan struct{})
	c.hooks.sent = func() {
		// The waiter is at most in its spin; it then sleeps on the
		// semaphore in the header truncated here.
		_ = sc.Response.TruncateHeader(0)
		close(truncated)
	}
	defer func() { <-truncated }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Request(ctx, msg(0, 16, 0), any); !errors.Is(err, errFault) || codeOf(err) != cs.ErrLibrary {
		t.Fatalf("request on a truncated response ring: %v", err)
	}
}

// TestDispatchDuringRequests runs events and requests at once, as the engine
// may (one request concurrently with Dispatch).
func TestDispatchDuringRequests(t *testing.T) {
	forTransports(t, func(t *testing.T, socket bool) {
		s := qbipctest.Start(t, qbipctest.Options{Socket: socket})
		c, sc := mustDial(t, s)
		const events = 300
		serve(t, sc, func(req []byte) []byte {
			// Every request also produces an event, so both paths are
			// busy together.
			if err := sc.SendEvent(resp(6, 56, req[0])); err != nil {
				t.Error(err)
			}
			return resp(0, 32, req[0])
		})
		got := make(chan int, 1)
		go func() {
			n := 0
			deadline := time.Now().Add(10 * time.Second)
			for n < events && time.Now().Before(deadline) {
				_ = qbipctest.WaitReadable(c.Fd(), 50*time.Millisecond)
				for {
					m, ok, err := c.ReadEvent()
					if err != nil {
						t.Error(err)
						got <- n
						return
					}
					if !ok {
						break
					}
					if m[24] != byte(n)+24 {
						t.Errorf("event %d out of order: %x", n, m[:28])
					}
					n++
				}
			}
			got <- n
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := 0; i < events; i++ {
			r, err := c.Request(ctx, msg(int32(i), 16, 0), any)
			if err != nil {
				t.Fatal(err)
			}
			if r[24] != byte(i)+24 {
				t.Fatalf("response %d: %x", i, r)
			}
		}
		if n := <-got; n != events {
			t.Fatalf("dispatched %d of %d events", n, events)
		}
	})
}

// TestCancelledContext: a request whose context has already ended sends
// nothing, so the server sees no request and the connection has nothing
// pending.
func TestCancelledContext(t *testing.T) {
	s := qbipctest.Start(t, qbipctest.Options{})
	c, sc := mustDial(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 20; i++ {
		if _, err := c.Request(ctx, msg(0, 16, 0), any); !errors.Is(err, context.Canceled) {
			t.Fatalf("request with a cancelled context: %v", err)
		}
	}
	if req, err := sc.ReadRequest(50 * time.Millisecond); err == nil {
		t.Fatalf("server received %x", req)
	}
}

// TestDoorbellBackpressure: a server that reads its ring but not its
// doorbells fills the setup socket; the client owes doorbells, holds later
// requests until the server reads, and in the end rings once per request.
func TestDoorbellBackpressure(t *testing.T) {
	s := qbipctest.Start(t, qbipctest.Options{})
	c, sc := mustDial(t, s)
	// The smallest send buffer holds only a few one-byte messages.
	if err := unix.SetsockoptInt(c.setup, unix.SOL_SOCKET, unix.SO_SNDBUF, 1); err != nil {
		t.Fatal(err)
	}
	const n = 40
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		deadline := time.Now().Add(10 * time.Second)
		for got := 0; got < n && time.Now().Before(deadline); {
			// Read the ring directly, ignoring the doorbells.
			req, ok, err := sc.Request.Read()
			if err != nil {
				t.Error(err)
				return
			}
			if !ok {
				time.Sleep(time.Millisecond)
				continue
			}
			if err := sc.Respond(resp(0, 32, req[0])); err != nil {
				t.Error(err)
				return
			}
			got++
		}
	}()
	rang := 0
	stalled := make(chan struct{}, 1)
	c.hooks.stalled = func() {
		select {
		case stalled <- struct{}{}:
		default:
		}
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := 0; i < n; i++ {
			r, err := c.Request(ctx, msg(int32(i), 16, 0), any)
			if err != nil {
				done <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			if r[24] != byte(i)+24 {
				done <- fmt.Errorf("request %d: response %x", i, r)
				return
			}
		}
		done <- nil
	}()
	// Once the socket is full and the client stalls, read doorbells.
	<-stalled
	var b [64]byte
	for {
		select {
		case err := <-done:
			<-answered
			if err != nil {
				t.Fatal(err)
			}
			// Doorbells still in flight after the last response.
			for rang < n {
				if err := qbipctest.WaitReadable(sc.Setup, time.Second); err != nil {
					t.Fatalf("%d doorbells for %d requests", rang, n)
				}
				k, _ := unix.Read(sc.Setup, b[:])
				rang += k
			}
			if rang != n {
				t.Fatalf("%d doorbells for %d requests", rang, n)
			}
			return
		default:
		}
		if qbipctest.WaitReadable(sc.Setup, 20*time.Millisecond) == nil {
			k, _ := unix.Read(sc.Setup, b[:])
			rang += k
		}
	}
}

// TestFlatNames: libqb up to 1.0.3 names bare bases in the handshake, whose
// files lie directly in /dev/shm; the client must find them there, work as
// usual, and never treat /dev/shm as the connection's to remove.
func TestFlatNames(t *testing.T) {
	forTransports(t, func(t *testing.T, socket bool) {
		s := qbipctest.Start(t, qbipctest.Options{Socket: socket, FlatNames: true})
		c, sc := mustDial(t, s)
		for _, f := range c.ServerFiles() {
			if filepath.Dir(f) != s.Dir || !strings.HasPrefix(filepath.Base(f), "qb-"+s.Service+"-") {
				t.Fatalf("server file %s, want qb-%s-* directly in %s", f, s.Service, s.Dir)
			}
			if _, err := os.Stat(f); err != nil {
				t.Fatal(err)
			}
		}
		serve(t, sc, func(req []byte) []byte { return resp(7, 40, req[16]) })
		got, err := c.Request(context.Background(), msg(3, 24, 9), any)
		if err != nil || len(got) != 40 || got[16] != 1 || got[24] != 9+16+24 {
			t.Fatalf("Request: %x, %v", got, err)
		}
		if err := sc.SendEvent(resp(5, 32, 1)); err != nil {
			t.Fatal(err)
		}
		if err := qbipctest.WaitReadable(c.Fd(), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if ev, ok, err := c.ReadEvent(); err != nil || !ok || len(ev) != 32 {
			t.Fatalf("ReadEvent: %x %v %v", ev, ok, err)
		}
	})
}

// TestLastReference: when the server has dropped its reference to the rings
// first, removing their files falls to the client, as in libqb; the
// connection's own directory goes with them, the shared one never.
func TestLastReference(t *testing.T) {
	for _, flat := range []bool{false, true} {
		t.Run(fmt.Sprintf("flat=%v", flat), func(t *testing.T) {
			s := qbipctest.Start(t, qbipctest.Options{FlatNames: flat})
			c, sc := mustDial(t, s)
			files := c.ServerFiles()
			for _, r := range []*qbipctest.Ring{sc.Request, sc.Response, sc.Event} {
				r.SetRefCount(r.RefCount() - 1)
			}
			c.Close()
			for _, f := range files {
				if _, err := os.Stat(f); !os.IsNotExist(err) {
					t.Errorf("%s after the last reference was dropped: %v", f, err)
				}
			}
			_, err := os.Stat(sc.Dir)
			if flat && err != nil {
				t.Errorf("the shared directory %s went: %v", sc.Dir, err)
			}
			if !flat && !os.IsNotExist(err) {
				t.Errorf("the connection's directory %s is still there: %v", sc.Dir, err)
			}
		})
	}
}

func TestShmPath(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"/dev/shm/qb-1-2-3-abc/qb-request-quorum", "/dev/shm/qb-1-2-3-abc/qb-request-quorum"},
		{"quorum-request-10-20-30", "/dev/shm/qb-quorum-request-10-20-30"},
		{"/dev/shm/qb-quorum-control-10-20-30", "/dev/shm/qb-quorum-control-10-20-30"},
		{"", ""},
		{"..", ""},
		{".", ""},
		{"/tmp/x", ""},
		{"/dev/shm", ""},
		{"/dev/shm/../etc/passwd", ""},
		{"/dev/shm//x", ""},
		{"dir/x", ""},
		{strings.Repeat("x", pathMax), ""},
	} {
		got, err := shmPath(tc.name, "/dev/shm")
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("shmPath(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
