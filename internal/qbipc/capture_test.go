//go:build linux && capture

package qbipc

// This file records real corosync messages as seed corpora for the fuzz
// tests here and in internal/native. It needs a running corosync in the
// network namespace named by QBIPC_CAPTURE_NS (SHM mode) and, optionally,
// one in QBIPC_CAPTURE_SOCKET_NS (qb_ipc_type: socket). Run:
//
//	QBIPC_CAPTURE_NS=h3-n1 QBIPC_CAPTURE_SOCKET_NS=h3-n2 go test -tags capture -run TestCapture ./internal/qbipc

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func writeSeed(t *testing.T, dir, target, name string, b []byte) {
	t.Helper()
	d := filepath.Join(dir, "testdata", "fuzz", target)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
	if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func rawHandshake(t *testing.T, ns string) []byte {
	var raw []byte
	var err error
	inNetns(t, ns, func() {
		var fd int
		fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		raw, _, err = handshake(ctx, fd, "quorum", DefaultMaxMsgSize)
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func req(id int32, extra ...uint32) []byte {
	b := make([]byte, 16+4*len(extra))
	PutRequestHeader(b, RequestHeader{ID: id, Size: int32(len(b))})
	for i, v := range extra {
		binary.NativeEndian.PutUint32(b[16+4*i:], v)
	}
	return b
}

func TestCapture(t *testing.T) {
	ns := os.Getenv("QBIPC_CAPTURE_NS")
	if ns == "" {
		t.Skip("QBIPC_CAPTURE_NS not set")
	}
	native := filepath.Join("..", "native")
	writeSeed(t, ".", "FuzzConnResponse", "corosync-3.1.7-shm", rawHandshake(t, ns))
	if sns := os.Getenv("QBIPC_CAPTURE_SOCKET_NS"); sns != "" {
		writeSeed(t, ".", "FuzzConnResponse", "corosync-3.1.7-socket", rawHandshake(t, sns))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func() *Conn {
		var c *Conn
		var err error
		inNetns(t, ns, func() { c, err = Dial(ctx, Config{Service: "quorum"}) })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	call := func(c *Conn, r []byte) []byte {
		b, err := c.Request(ctx, r, func(ResponseHeader) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Model V1 session.
	c := dial()
	mg := call(c, req(4, 1))
	writeSeed(t, native, "FuzzUint32Response", "model-gettype", mg)
	writeSeed(t, ".", "FuzzResponseHeader", "model-gettype", mg)
	writeSeed(t, native, "FuzzUint32Response", "getquorate", call(c, req(0)))
	ts := call(c, req(1, 3))
	writeSeed(t, native, "FuzzBareResponse", "trackstart", ts)
	writeSeed(t, ".", "FuzzResponseHeader", "trackstart", ts)
	time.Sleep(100 * time.Millisecond)
	// Copy the first queued chunk raw from the event ring before reading.
	ev := c.tr.(*shmTransport).ev
	rp := atomic.LoadUint32(ev.word32(ev.hdr, rbReadPt))
	n := atomic.LoadUint32(ev.dataWord(rp))
	words := 2 + payloadWords(n)
	chunk := make([]byte, 4*words)
	for i := uint32(0); i < words; i++ {
		binary.NativeEndian.PutUint32(chunk[4*i:], atomic.LoadUint32(ev.dataWord((rp+i)%ev.words)))
	}
	writeSeed(t, ".", "FuzzChunk", "nodelist-chunk", chunk)
	for i := 0; i < 2; i++ {
		m, ok, err := c.ReadEvent()
		if !ok || err != nil {
			t.Fatalf("event %d: %v %v", i, ok, err)
		}
		id := binary.NativeEndian.Uint32(m)
		writeSeed(t, native, "FuzzNotification", "v1-id"+strconv.Itoa(int(id)), m)
	}
	writeSeed(t, native, "FuzzBareResponse", "trackstart-exist", call(c, req(1, 3)))
	writeSeed(t, native, "FuzzBareResponse", "trackstop", call(c, req(2)))
	writeSeed(t, native, "FuzzBareResponse", "unknown-request", call(c, req(99)))
	c.Close()
	// Model V0 session: GETTYPE, then a V0 notification.
	c = dial()
	writeSeed(t, native, "FuzzUint32Response", "gettype", call(c, req(3)))
	call(c, req(1, 1))
	time.Sleep(100 * time.Millisecond)
	m, ok, err := c.ReadEvent()
	if !ok || err != nil {
		t.Fatalf("v0 event: %v %v", ok, err)
	}
	writeSeed(t, native, "FuzzNotification", "v0-id3", m)
	c.Close()
}

// inNetns runs fn on a thread of its own that joins the named network
// namespace (/run/netns/name), so that sockets fn creates live there. The
// goroutine never unlocks its thread, so the runtime discards the thread
// when it exits instead of handing a thread in another namespace (possibly
// the main one) to other goroutines.
func inNetns(t testing.TB, name string, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		target, err := os.Open("/run/netns/" + name)
		if err != nil {
			errc <- fmt.Errorf("no network namespace %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
