//go:build libquorum && cgo && linux

package libquorum

/*
#include <stdint.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"

	"github.com/corosync-go/quorum/internal/model"
)

// maxEntries bounds the lists of one notification: they must fit in
// libquorum's 1 MiB receive buffer (IPC_DISPATCH_SIZE) with their header.
// libquorum passes corosync's counts on unchecked, and a larger one would make
// copyList read past that buffer.
const maxEntries = (1 << 20) / 4

// copyList copies a list that points into libquorum's receive buffer, which
// is reused as soon as the callback returns. The result is never nil.
func copyList(n C.uint32_t, p *C.uint32_t) []uint32 {
	if n == 0 || p == nil {
		return []uint32{}
	}
	src := unsafe.Slice((*uint32)(unsafe.Pointer(p)), int(n))
	out := make([]uint32, len(src))
	copy(out, src)
	return out
}

// collector returns the Conn behind a callback's context, or nil if the
// handle is not one of ours (it always is; this guards against a stale one).
func collector(ctx C.uintptr_t) *Conn {
	if ctx == 0 {
		return nil
	}
	c, _ := cgo.Handle(ctx).Value().(*Conn)
	return c
}

// The callbacks run inside quorum_dispatch, on the goroutine that called
// Dispatch; they only append to that goroutine's batch, so they never block.

//export goQuorumNotify
func goQuorumNotify(ctx C.uintptr_t, quorate C.uint32_t, ringNode C.uint32_t,
	ringSeq C.uint64_t, n C.uint32_t, members *C.uint32_t) {
	c := collector(ctx)
	if c == nil {
		return
	}
	if n > maxEntries {
		c.badCount = uint64(n)
		return
	}
	c.batch = append(c.batch, Notification{
		Kind:    KindQuorum,
		Quorate: quorate != 0,
		Ring:    model.RingID{NodeID: uint32(ringNode), Seq: uint64(ringSeq)},
		Members: copyList(n, members),
	})
}

//export goNodelistNotify
func goNodelistNotify(ctx C.uintptr_t, ringNode C.uint32_t, ringSeq C.uint64_t,
	nm C.uint32_t, members *C.uint32_t, nj C.uint32_t, joined *C.uint32_t,
	nl C.uint32_t, left *C.uint32_t) {
	c := collector(ctx)
	if c == nil {
		return
	}
	if total := uint64(nm) + uint64(nj) + uint64(nl); total > maxEntries {
		c.badCount = total
		return
	}
	c.batch = append(c.batch, Notification{
		Kind:    KindNodeList,
		Ring:    model.RingID{NodeID: uint32(ringNode), Seq: uint64(ringSeq)},
		Members: copyList(nm, members),
		Joined:  copyList(nj, joined),
		Left:    copyList(nl, left),
	})
}

//export goV0Notify
func goV0Notify(ctx C.uintptr_t, quorate C.uint32_t, ringSeq C.uint64_t,
	n C.uint32_t, members *C.uint32_t) {
	c := collector(ctx)
	if c == nil {
		return
	}
	if n > maxEntries {
		c.badCount = uint64(n)
		return
	}
	c.batch = c.v0.Translate(c.batch, quorate != 0, uint64(ringSeq), copyList(n, members))
}
