//go:build linux

package qbipctest

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Offsets in struct qb_ringbuffer_shared_s (64-bit), written here from the
// server's side independently of the client's code so that each checks the
// other.
const (
	offWritePt  = 0
	offReadPt   = 4
	offWordSize = 8
	offHdrPath  = 12
	offDataPath = 4108
	offRefCount = 8204
	offSem      = 8208
	offUserData = 8240
	hdrSize     = 8248

	// Chunk magic values.
	MagicCommitted = 0xA1A1A1A1
	MagicAllocated = 0xA110CED0
	MagicDead      = 0xD0D0D0D0
)

// Ring is the server half of one libqb ring: it created the files and
// holds them mapped.
type Ring struct {
	Base  string
	hdr   []byte
	data  []byte
	words uint32
}

func createRing(base string, dataBytes int, userData int) (*Ring, error) {
	words := uint32(dataBytes / 4)
	r := &Ring{Base: base, words: words}
	var err error
	if r.hdr, err = createMapped(base+"-header", hdrSize+userData); err != nil {
		return nil, err
	}
	if r.data, err = createMapped(base+"-data", int(words)*4); err != nil {
		r.unmap()
		return nil, err
	}
	atomic.StoreUint32(r.u32(offWordSize), words)
	copy(r.hdr[offHdrPath:offHdrPath+4095], base+"-header")
	copy(r.hdr[offDataPath:offDataPath+4095], base+"-data")
	atomic.StoreInt32(r.i32(offRefCount), 1)
	// A process-shared glibc semaphore with value 0: private = 128.
	atomic.StoreInt32(r.i32(offSem+8), 128)
	return r, nil
}

func createMapped(path string, size int) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return nil, err
	}
	return unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

func (r *Ring) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&r.hdr[off])) }
func (r *Ring) i32(off int) *int32  { return (*int32)(unsafe.Pointer(&r.hdr[off])) }
func (r *Ring) semData() *uint64    { return (*uint64)(unsafe.Pointer(&r.hdr[offSem])) }
func (r *Ring) word(i uint32) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.data[4*uint64(i%r.words)]))
}

// Words is the ring's size in 32-bit words.
func (r *Ring) Words() uint32 { return r.words }

// RefCount is the header's reference count: 1 for the server, plus one per
// client that has the ring open.
func (r *Ring) RefCount() int32 { return atomic.LoadInt32(r.i32(offRefCount)) }

// SetRefCount overwrites the reference count.
func (r *Ring) SetRefCount(v int32) { atomic.StoreInt32(r.i32(offRefCount), v) }

// SetUserData sets the int32 after the header (the request ring's
// flow-control flag).
func (r *Ring) SetUserData(v int32) { atomic.StoreInt32(r.i32(offUserData), v) }

// Pointers returns the read and write pointers.
func (r *Ring) Pointers() (read, write uint32) {
	return atomic.LoadUint32(r.u32(offReadPt)), atomic.LoadUint32(r.u32(offWritePt))
}

// SetPointers moves both pointers, for wrap-around tests.
func (r *Ring) SetPointers(read, write uint32) {
	atomic.StoreUint32(r.u32(offReadPt), read)
	atomic.StoreUint32(r.u32(offWritePt), write)
}

// SemValue is the semaphore's value (queued chunks).
func (r *Ring) SemValue() uint32 { return uint32(atomic.LoadUint64(r.semData())) }

// SetSemRaw overwrites the semaphore's first 16 bytes, for layout tests.
func (r *Ring) SetSemRaw(data uint64, private int32) {
	atomic.StoreUint64(r.semData(), data)
	atomic.StoreInt32(r.i32(offSem+8), private)
}

// post is sem_post with the shared futex wake glibc uses.
func (r *Ring) post() {
	d := atomic.AddUint64(r.semData(), 1)
	if d>>32 > 0 {
		unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(r.semData())), 1, 1, 0, 0, 0)
	}
}

func (r *Ring) tryWait() bool {
	for {
		d := atomic.LoadUint64(r.semData())
		if uint32(d) == 0 {
			return false
		}
		if atomic.CompareAndSwapUint64(r.semData(), d, d-1) {
			return true
		}
	}
}

// ErrFull is returned when the ring has no room for a chunk.
var ErrFull = errors.New("qbipctest: ring full")

// Write commits msg as a chunk and posts the semaphore.
func (r *Ring) Write(msg []byte) error {
	return r.WriteRaw(msg, uint32(len(msg)), MagicCommitted)
}

// WriteRaw writes msg as a chunk whose size field is size and whose magic
// is magic, then posts the semaphore: a way to build corrupt chunks. The
// write pointer advances by len(msg).
func (r *Ring) WriteRaw(msg []byte, size, magic uint32) error {
	rp, wp := r.Pointers()
	var free uint32
	switch {
	case wp > rp:
		free = rp + r.words - wp - 1
	case wp < rp:
		free = rp - wp - 1
	default:
		free = r.words
		if r.SemValue() > 0 {
			free = 0
		}
	}
	if uint64(free)*4 < uint64(len(msg))+12 {
		return ErrFull
	}
	atomic.StoreUint32(r.word(wp), 0)
	atomic.StoreUint32(r.word(wp+1), MagicAllocated)
	start := 4 * uint64((wp+2)%r.words)
	k := copy(r.data[start:], msg)
	copy(r.data, msg[k:])
	atomic.StoreUint32(r.word(wp), size)
	atomic.StoreUint32(r.u32(offWritePt), (wp+2+uint32((len(msg)+3)/4))%r.words)
	atomic.StoreUint32(r.word(wp+1), magic)
	r.post()
	return nil
}

// Read takes the oldest chunk if the semaphore has one.
func (r *Ring) Read() ([]byte, bool, error) {
	if !r.tryWait() {
		return nil, false, nil
	}
	rp, _ := r.Pointers()
	if m := atomic.LoadUint32(r.word(rp + 1)); m != MagicCommitted {
		return nil, false, fmt.Errorf("qbipctest: chunk at %d has magic %#x", rp, m)
	}
	n := atomic.LoadUint32(r.word(rp))
	if uint64(n)+8 > uint64(r.words)*4 {
		return nil, false, fmt.Errorf("qbipctest: chunk at %d has size %d", rp, n)
	}
	msg := make([]byte, n)
	start := 4 * uint64((rp+2)%r.words)
	k := copy(msg, r.data[start:])
	copy(msg[k:], r.data)
	atomic.StoreUint32(r.word(rp), 0)
	atomic.StoreUint32(r.word(rp+1), MagicDead)
	atomic.StoreUint32(r.u32(offReadPt), (rp+2+(n+3)/4)%r.words)
	return msg, true, nil
}

// Truncate shrinks the ring's data file to size bytes under the client.
func (r *Ring) Truncate(size int64) error { return os.Truncate(r.Base+"-data", size) }

// TruncateHeader shrinks the ring's header file (which holds the
// semaphore) to size bytes under the client.
func (r *Ring) TruncateHeader(size int64) error { return os.Truncate(r.Base+"-header", size) }

func (r *Ring) unmap() {
	if r.hdr != nil {
		_ = unix.Munmap(r.hdr)
		r.hdr = nil
	}
	if r.data != nil {
		_ = unix.Munmap(r.data)
		r.data = nil
	}
}
