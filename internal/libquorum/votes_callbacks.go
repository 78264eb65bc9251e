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

// voteCollector returns the VoteConn behind a callback's context, or nil if
// the context is not one of ours.
func voteCollector(ctx C.uintptr_t) *VoteConn {
	if ctx == 0 {
		return nil
	}
	vc, _ := cgo.Handle(ctx).Value().(*VoteConn)
	return vc
}

// The callbacks run inside votequorum_dispatch and cmap_dispatch, on the
// goroutine that called VoteConn.Dispatch. Like the quorum ones they only
// copy what they are given (it points into the library's receive buffer,
// reused once they return) and append it to that goroutine's batch.

//export goVoteQuorumNotify
func goVoteQuorumNotify(ctx C.uintptr_t, quorate C.uint32_t, n C.uint32_t, pairs *C.uint32_t) {
	vc := voteCollector(ctx)
	if vc == nil {
		return
	}
	// Each entry is two uint32: half as many fit in the receive buffer.
	if n > maxEntries/2 {
		vc.badCount = uint64(n)
		return
	}
	nodes := make([]model.VoteNode, int(n))
	if n > 0 && pairs != nil {
		src := unsafe.Slice((*uint32)(unsafe.Pointer(pairs)), 2*int(n))
		for i := range nodes {
			nodes[i] = model.VoteNode{ID: src[2*i], State: src[2*i+1]}
		}
	}
	vc.batch = append(vc.batch, model.VoteEvent{Kind: model.VoteQuorum, Quorate: quorate != 0, Nodes: nodes})
}

//export goVoteExpectedNotify
func goVoteExpectedNotify(ctx C.uintptr_t, expected C.uint32_t) {
	if vc := voteCollector(ctx); vc != nil {
		vc.batch = append(vc.batch, model.VoteEvent{Kind: model.VoteExpected, Expected: uint32(expected)})
	}
}

//export goVoteNodelistNotify
func goVoteNodelistNotify(ctx C.uintptr_t, ringNode C.uint32_t, ringSeq C.uint64_t, n C.uint32_t, nodes *C.uint32_t) {
	vc := voteCollector(ctx)
	if vc == nil {
		return
	}
	if n > maxEntries {
		vc.badCount = uint64(n)
		return
	}
	vc.batch = append(vc.batch, model.VoteEvent{
		Kind:    model.VoteNodeList,
		Ring:    model.RingID{NodeID: uint32(ringNode), Seq: uint64(ringSeq)},
		Members: copyList(n, nodes),
	})
}

//export goCmapNotify
func goCmapNotify(ctx C.uintptr_t) {
	if vc := voteCollector(ctx); vc != nil {
		vc.configChanged = true
	}
}
