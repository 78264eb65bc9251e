//go:build linux

package qbipc

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Seeds live in testdata/fuzz: real corosync 3.1.7 messages recorded with
// capture_test.go.

// FuzzConnResponse's inputs are 12 KB, which makes the fuzzer's input
// minimisation crawl; run it with -fuzzminimizetime=0.
func FuzzConnResponse(f *testing.F) {
	f.Add(make([]byte, connResponseSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseConnResponse(b)
		if err != nil || r.Error != 0 {
			return
		}
		for _, s := range []string{r.Request, r.Response, r.Event} {
			if len(s) >= pathMax || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("bad name %q", s)
			}
		}
		// Whatever the names, absolute or libqb 1.0.3's bare bases, only
		// clean paths inside the directory come out.
		for _, s := range []string{r.Request, r.Response, r.Event} {
			p, err := shmPath(s, "/dev/shm")
			if err == nil && (filepath.Clean(p) != p || !strings.HasPrefix(p, "/dev/shm/") || strings.Contains(p, "/../")) {
				t.Fatalf("%q resolved to %q", s, p)
			}
		}
	})
}

func FuzzResponseHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseResponseHeader(b)
		if err == nil && int(h.Size) != len(b) {
			t.Fatalf("size %d for %d bytes", h.Size, len(b))
		}
	})
}

// memRing builds a ring over heap memory whose data words are data
// (padded), with the read pointer at rp and one unit in the semaphore.
func memRing(data []byte, rp uint32) *ring {
	words := uint32(len(data)+3) / 4
	if words < minRingWords {
		words = minRingWords
	}
	// A []uint64 guarantees the 8-byte alignment the semaphore needs.
	hdr := unsafe.Slice((*byte)(unsafe.Pointer(&make([]uint64, (rbHdrSize+8)/8)[0])), rbHdrSize+8)
	r := &ring{name: "mem", hdr: hdr, data: make([]byte, 4*words), words: words, maxMsg: 1 << 20}
	for i := uint32(0); i < words; i++ {
		var w [4]byte
		copy(w[:], data[min(len(data), int(4*i)):])
		binary.NativeEndian.PutUint32(r.data[4*((i+rp)%words):], binary.NativeEndian.Uint32(w[:]))
	}
	atomic.StoreUint32(r.word32(hdr, rbWordSize), words)
	atomic.StoreUint32(r.word32(hdr, rbReadPt), rp%words)
	r.sem = sem{p: unsafe.Pointer(&hdr[rbSem])}
	atomic.StoreInt32((*int32)(unsafe.Pointer(&hdr[rbSem+semPrivateOff])), semSharedPrivate)
	atomic.StoreUint64(r.sem.data(), 1)
	return r
}

// FuzzChunk feeds arbitrary ring contents to the chunk reader, once at the
// start of the ring and once placed so that it wraps around the end.
func FuzzChunk(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		for _, rot := range []uint32{0, 1, 3} {
			r := memRing(data, 0)
			rp := (r.words - rot) % r.words
			r = memRing(data, rp)
			msg, ok, err := r.read()
			if err != nil {
				if ok || msg != nil {
					t.Fatal("error with a message")
				}
				continue
			}
			if !ok {
				t.Fatal("no chunk although the semaphore had one")
			}
			n := binary.NativeEndian.Uint32(append(data[:len(data):len(data)], 0, 0, 0, 0))
			if uint32(len(msg)) != n {
				t.Fatalf("read %d bytes, size word says %d", len(msg), n)
			}
			if len(data) >= 8+len(msg) && !bytes.Equal(msg, data[8:8+len(msg)]) {
				t.Fatal("payload differs from the ring contents")
			}
			next := atomic.LoadUint32(r.word32(r.hdr, rbReadPt))
			if next != (rp+2+payloadWords(n))%r.words {
				t.Fatalf("read pointer %d after a %d-byte chunk at %d", next, n, rp)
			}
		}
	})
}

// FuzzDatagram feeds one arbitrary datagram to the SOCKET transport's
// receive path over a socketpair.
func FuzzDatagram(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 8192 {
			return
		}
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Skip(err)
		}
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		if err := unix.Sendto(fds[1], data, 0, nil); err != nil {
			t.Skip(err)
		}
		ctl := unsafe.Slice((*byte)(unsafe.Pointer(&make([]uint64, 3)[0])), ctlSize)
		tr := &sockTransport{ctl: ctl, maxMsg: 4096}
		msg, ok, err := tr.recv(fds[0], ctlEvent)
		if err != nil {
			if ok || msg != nil {
				t.Fatal("message with an error")
			}
		} else if !ok || !bytes.Equal(msg, data) {
			t.Fatalf("got %x (ok %v), sent %x", msg, ok, data)
		}
		// Either way the datagram is gone.
		if _, ok, err := tr.recv(fds[0], ctlEvent); ok || err != nil {
			t.Fatalf("second recv: %v %v", ok, err)
		}
	})
}
