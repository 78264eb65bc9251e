//go:build linux

package qbipc

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Layout of struct qb_ringbuffer_shared_s on 64-bit Linux.
const (
	rbWritePt  = 0
	rbReadPt   = 4
	rbWordSize = 8
	rbRefCount = 8204
	rbSem      = 8208
	rbUserData = 8240
	rbHdrSize  = 8248

	chunkMagic     = 0xA1A1A1A1
	chunkMagicAllo = 0xA110CED0
	chunkMagicDead = 0xD0D0D0D0

	// chunkHeaderWords: the size word and the magic word.
	chunkHeaderWords = 2
	// chunkMargin is what libqb demands beyond the payload to accept a write.
	chunkMargin = 12

	// Bounds on a ring's size as the server declares it.
	minRingWords = 16
	maxRingBytes = 256 << 20
)

// errFault is the cause when a mapping faulted (the file shrank under us).
var errFault = errors.New("shared memory fault: a ring file was truncated or removed")

// faultGuard and unguard turn a memory fault in the calling function into
// an error. Use them as: defer unguard(&err, faultGuard()) at the top of
// every function that touches a mapping, so that a server truncating a file
// cannot kill the process. (A deferred call with arguments, not a returned
// closure: this runs several times per request, and a closure allocates.)
func faultGuard() bool { return debug.SetPanicOnFault(true) }

// unguard must be the deferred function itself, for recover to work.
func unguard(err *error, old bool) {
	r := recover()
	debug.SetPanicOnFault(old)
	if r == nil {
		return
	}
	if f, ok := r.(interface{ Addr() uintptr }); ok {
		*err = fmt.Errorf("%w (address %#x)", errFault, f.Addr())
		return
	}
	panic(r)
}

// ring is the client's view of one libqb ring buffer: a header file with
// the pointers, reference count, semaphore and user data, and a data file
// of wordSize 32-bit words holding chunks.
type ring struct {
	name   string
	hdr    []byte
	data   []byte
	words  uint32 // wordSize as read once at open; never re-read
	sem    sem
	maxMsg uint32
	ref    bool // whether we hold a reference to release
}

// openRing maps an existing ring created by the server at base, takes a
// reference, and checks its semaphore. maxMsg bounds chunk payloads.
func openRing(base string, maxMsg uint32) (r *ring, err error) {
	r = &ring{name: base, maxMsg: maxMsg}
	defer func() {
		if err != nil {
			r.close()
			r = nil
		}
	}()
	defer unguard(&err, faultGuard())
	if r.hdr, err = mapFile(base+"-header", rbHdrSize, 0); err != nil {
		return r, err
	}
	r.words = atomic.LoadUint32(r.word32(r.hdr, rbWordSize))
	if r.words < minRingWords || uint64(r.words)*4 > maxRingBytes {
		return r, fmt.Errorf("%w: ring %s declares %d words", errMalformed, base, r.words)
	}
	// libqb's client takes the data path from the header; it is always
	// "<base>-data", and deriving it keeps a server from pointing us at an
	// unrelated file.
	if r.data, err = mapFile(base+"-data", int(r.words)*4, int(r.words)*4); err != nil {
		return r, err
	}
	r.sem = sem{p: unsafe.Pointer(&r.hdr[rbSem])}
	if err = r.sem.check(); err != nil {
		return r, err
	}
	atomic.AddInt32(r.refCount(), 1)
	r.ref = true
	return r, nil
}

// mapFile maps path shared and read-write. The file must be a regular file
// of at least min bytes; size, if not 0, is the length to map (else the
// whole file).
func mapFile(path string, min, size int) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%w: %s is not a regular file", errMalformed, path)
	}
	if st.Size < int64(min) || st.Size > maxRingBytes+1<<20 {
		return nil, fmt.Errorf("%w: %s has %d bytes, want at least %d", errMalformed, path, st.Size, min)
	}
	if size == 0 {
		size = int(st.Size)
	}
	b, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: path, Err: err}
	}
	return b, nil
}

func (r *ring) word32(b []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }
func (r *ring) refCount() *int32                 { return (*int32)(unsafe.Pointer(&r.hdr[rbRefCount])) }

// admit is libqb's qb_ipc_shm_fc_get for the request ring: the server must
// still hold its reference (a count other than ours plus its own means it
// let go: ENOTCONN), and flow control must be off (errAgain).
func (r *ring) admit() (err error) {
	defer unguard(&err, faultGuard())
	if refs := atomic.LoadInt32(r.refCount()); refs != 2 {
		return fmt.Errorf("request ring has %d references, want 2: %w", refs, unix.ENOTCONN)
	}
	if len(r.hdr) >= rbUserData+4 {
		if fc := atomic.LoadInt32((*int32)(unsafe.Pointer(&r.hdr[rbUserData]))); fc > 0 && fc <= fcEnableMax {
			return errAgain
		}
	}
	return nil
}

// dataWord returns the i-th word of the data file; i < r.words.
func (r *ring) dataWord(i uint32) *uint32 { return (*uint32)(unsafe.Pointer(&r.data[4*uint64(i)])) }

// pointers loads and checks the read and write pointers.
func (r *ring) pointers() (rp, wp uint32, err error) {
	rp = atomic.LoadUint32(r.word32(r.hdr, rbReadPt))
	wp = atomic.LoadUint32(r.word32(r.hdr, rbWritePt))
	if rp >= r.words || wp >= r.words {
		return 0, 0, fmt.Errorf("%w: ring %s pointers read %d write %d beyond %d words", errMalformed, r.name, rp, wp, r.words)
	}
	return rp, wp, nil
}

// payloadWords is the number of words a chunk of n bytes occupies.
func payloadWords(n uint32) uint32 { return (n + 3) / 4 }

// copyOut copies n bytes starting at word w, wrapping at the end of the ring.
func (r *ring) copyOut(dst []byte, w uint32) {
	start := 4 * uint64(w)
	k := copy(dst, r.data[start:])
	copy(dst[k:], r.data)
}

// copyIn is copyOut's mirror.
func (r *ring) copyIn(w uint32, src []byte) {
	start := 4 * uint64(w)
	k := copy(r.data[start:], src)
	copy(r.data, src[k:])
}

// read takes the oldest chunk if the semaphore says there is one. It never
// waits. A chunk that is not committed, or whose length is impossible, is an
// error: libqb posts the semaphore back and reports EBADMSG, and a client can
// do nothing better than give up on the connection.
func (r *ring) read() (msg []byte, ok bool, err error) {
	defer unguard(&err, faultGuard())
	if !r.sem.tryWait() {
		return nil, false, nil
	}
	return r.take()
}

// waitRead is read, but sleeps up to d on the semaphore for a chunk.
func (r *ring) waitRead(d time.Duration) (msg []byte, ok bool, err error) {
	defer unguard(&err, faultGuard())
	got, err := r.sem.timedWait(d)
	if err != nil || !got {
		return nil, false, err
	}
	return r.take()
}

// spinRead is read, but keeps looking until deadline. The clock is read
// only every few dozen looks: it costs more than a look.
func (r *ring) spinRead(deadline time.Time) (msg []byte, ok bool, err error) {
	defer unguard(&err, faultGuard())
	for i := 1; ; i++ {
		if r.sem.tryWait() {
			return r.take()
		}
		if i%64 == 0 && !time.Now().Before(deadline) {
			return nil, false, nil
		}
	}
}

// take reads the chunk at the read pointer, for which the caller has taken
// a semaphore unit.
func (r *ring) take() (msg []byte, ok bool, err error) {
	rp, _, err := r.pointers()
	if err != nil {
		return nil, false, err
	}
	magic := atomic.LoadUint32(r.dataWord((rp + 1) % r.words))
	if magic != chunkMagic {
		_ = r.sem.post()
		return nil, false, fmt.Errorf("%w: ring %s chunk at word %d has magic %#x", errMalformed, r.name, rp, magic)
	}
	n := atomic.LoadUint32(r.dataWord(rp))
	if n > r.maxMsg || payloadWords(n)+chunkHeaderWords >= r.words {
		return nil, false, fmt.Errorf("%w: ring %s chunk at word %d claims %d bytes", errMalformed, r.name, rp, n)
	}
	msg = make([]byte, n)
	r.copyOut(msg, (rp+chunkHeaderWords)%r.words)
	// Reclaim, in libqb's order: size, magic, then publish the read pointer.
	atomic.StoreUint32(r.dataWord(rp), 0)
	atomic.StoreUint32(r.dataWord((rp+1)%r.words), chunkMagicDead)
	atomic.StoreUint32(r.word32(r.hdr, rbReadPt), (rp+chunkHeaderWords+payloadWords(n))%r.words)
	return msg, true, nil
}

// write appends msg as one committed chunk and posts the semaphore. It
// returns errAgain when the ring has no room yet.
func (r *ring) write(msg []byte) (err error) {
	defer unguard(&err, faultGuard())
	n := uint64(len(msg))
	if n > uint64(r.maxMsg) || n+chunkMargin > 4*uint64(r.words-1) {
		return fmt.Errorf("message of %d bytes does not fit the ring: %w", n, unix.EMSGSIZE)
	}
	rp, wp, err := r.pointers()
	if err != nil {
		return err
	}
	var free uint32
	switch {
	case wp > rp:
		free = rp + r.words - wp - 1
	case wp < rp:
		free = rp - wp - 1
	default:
		// Equal pointers mean empty or full; the semaphore, which counts
		// queued chunks, tells which.
		if r.sem.value() > 0 {
			free = 0
		} else {
			free = r.words
		}
	}
	if uint64(free)*4 < n+chunkMargin {
		return errAgain
	}
	atomic.StoreUint32(r.dataWord(wp), 0)
	atomic.StoreUint32(r.dataWord((wp+1)%r.words), chunkMagicAllo)
	r.copyIn((wp+chunkHeaderWords)%r.words, msg)
	atomic.StoreUint32(r.dataWord(wp), uint32(n))
	atomic.StoreUint32(r.word32(r.hdr, rbWritePt), (wp+chunkHeaderWords+payloadWords(uint32(n)))%r.words)
	atomic.StoreUint32(r.dataWord((wp+1)%r.words), chunkMagic)
	return r.sem.post()
}

// close drops our reference and unmaps. The server deletes the files once
// the connection ends.
// close drops the client's reference and the mappings. It reports whether
// that reference was the last one, in which case, as in libqb, removing the
// ring's files falls to this side: the server closed its end first.
func (r *ring) close() (last bool) {
	if r == nil {
		return false
	}
	func() {
		var err error
		defer unguard(&err, faultGuard())
		if r.ref {
			last = atomic.AddInt32(r.refCount(), -1) == 0
			r.ref = false
		}
	}()
	if r.data != nil {
		_ = unix.Munmap(r.data)
		r.data = nil
	}
	if r.hdr != nil {
		_ = unix.Munmap(r.hdr)
		r.hdr = nil
	}
	return last
}
