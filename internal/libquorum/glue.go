//go:build libquorum && cgo && linux

package libquorum

/*
#cgo pkg-config: libquorum
#include <stdint.h>
#include <stdlib.h>
#include <corosync/corotypes.h>
#include <corosync/quorum.h>

// The Go side of the callbacks, defined in callbacks.go. The context is the
// cgo.Handle of the Conn, carried as an integer so that C never holds a Go
// pointer.
extern void goQuorumNotify(uintptr_t ctx, uint32_t quorate, uint32_t ringNode,
	uint64_t ringSeq, uint32_t n, uint32_t *members);
extern void goNodelistNotify(uintptr_t ctx, uint32_t ringNode, uint64_t ringSeq,
	uint32_t nm, uint32_t *members, uint32_t nj, uint32_t *joined,
	uint32_t nl, uint32_t *left);

static uintptr_t lq_context(quorum_handle_t h) {
	const void *ctx = NULL;
	if (quorum_context_get(h, &ctx) != CS_OK) {
		return 0;
	}
	return (uintptr_t)ctx;
}

static void lq_quorum_cb(quorum_handle_t h, uint32_t quorate,
	struct quorum_ring_id ring, uint32_t n, const uint32_t *members) {
	uintptr_t ctx = lq_context(h);
	if (ctx == 0) {
		return;
	}
	goQuorumNotify(ctx, quorate, ring.nodeid, ring.seq, n, (uint32_t *)members);
}

static void lq_nodelist_cb(quorum_handle_t h, struct quorum_ring_id ring,
	uint32_t nm, const uint32_t *members, uint32_t nj, const uint32_t *joined,
	uint32_t nl, const uint32_t *left) {
	uintptr_t ctx = lq_context(h);
	if (ctx == 0) {
		return;
	}
	goNodelistNotify(ctx, ring.nodeid, ring.seq, nm, (uint32_t *)members,
		nj, (uint32_t *)joined, nl, (uint32_t *)left);
}

// lq_init connects with model V1 and fetches the fd in one C call, so that
// the Go side makes a single blocking call per Dial.
static cs_error_t lq_init(quorum_handle_t *h, uint32_t *qtype, uintptr_t ctx, int *fd) {
	quorum_model_v1_data_t data;
	cs_error_t rc;

	data.model = QUORUM_MODEL_V1;
	data.quorum_notify_fn = lq_quorum_cb;
	data.nodelist_notify_fn = lq_nodelist_cb;
	rc = quorum_model_initialize(h, QUORUM_MODEL_V1, (quorum_model_data_t *)&data,
		qtype, (void *)ctx);
	if (rc != CS_OK) {
		return rc;
	}
	rc = quorum_fd_get(*h, fd);
	if (rc != CS_OK) {
		quorum_finalize(*h);
	}
	return rc;
}

static cs_error_t lq_getquorate(quorum_handle_t h, int *quorate) {
	return quorum_getquorate(h, quorate);
}

static cs_error_t lq_dispatch_all(quorum_handle_t h) {
	return quorum_dispatch(h, CS_DISPATCH_ALL);
}
*/
import "C"

// Values of corosync's headers that the rest of the package uses without cgo.
const (
	quorumSet = 1 // QUORUM_SET: a quorum provider is configured
)

type cHandle = C.quorum_handle_t

// cInit runs quorum_model_initialize (model V1) and quorum_fd_get.
func cInit(ctx uintptr) (h cHandle, quorumType uint32, fd int, code int32) {
	var qt C.uint32_t
	var cfd C.int
	rc := C.lq_init(&h, &qt, C.uintptr_t(ctx), &cfd)
	return h, uint32(qt), int(cfd), int32(rc)
}

func cGetQuorate(h cHandle) (bool, int32) {
	var q C.int
	rc := C.lq_getquorate(h, &q)
	return q != 0, int32(rc)
}

func cTrackStart(h cHandle, flags uint32) int32 {
	return int32(C.quorum_trackstart(h, C.uint(flags)))
}

func cTrackStop(h cHandle) int32 { return int32(C.quorum_trackstop(h)) }

func cDispatchAll(h cHandle) int32 { return int32(C.lq_dispatch_all(h)) }

func cFinalize(h cHandle) int32 { return int32(C.quorum_finalize(h)) }
