//go:build libquorum && cgo && linux

package libquorum

/*
#cgo pkg-config: libquorum
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <corosync/corotypes.h>
#include <corosync/quorum.h>

// Model V1 came with corosync 3.1. The 2.4 and 3.0 headers have none of it,
// so what this file needs of it is declared here, under names of its own
// that cannot clash with the 3.1 header's: the layouts below are those of
// corosync 3.1's quorum.h (checked against it at the end of this preamble).
#define LQ_QUORUM_MODEL_V1 1

struct lq_ring_id {
	uint32_t nodeid;
	uint64_t seq;
};

// The function types are written once, with the ring id's type (and the
// model's and model data's types) as parameters, so that the very same
// parameter lists are checked against the header's below.
#define LQ_V1_QUORUM_FN(ring) void (*)(quorum_handle_t handle, uint32_t quorate, \
	ring ring_id, uint32_t member_list_entries, const uint32_t *member_list)
#define LQ_V1_NODELIST_FN(ring) void (*)(quorum_handle_t handle, ring ring_id, \
	uint32_t member_list_entries, const uint32_t *member_list, \
	uint32_t joined_list_entries, const uint32_t *joined_list, \
	uint32_t left_list_entries, const uint32_t *left_list)
#define LQ_MODEL_INITIALIZE_FN(model_t, data_t) cs_error_t (*)(quorum_handle_t *handle, \
	model_t model, data_t *model_data, uint32_t *quorum_type, void *context)

typedef __typeof__(LQ_V1_QUORUM_FN(struct lq_ring_id)) lq_v1_quorum_fn;
typedef __typeof__(LQ_V1_NODELIST_FN(struct lq_ring_id)) lq_v1_nodelist_fn;

// quorum_model_v1_data_t; its model is the enum quorum_model_t, an int.
struct lq_model_v1_data {
	int model;
	lq_v1_quorum_fn quorum_notify_fn;
	lq_v1_nodelist_fn nodelist_notify_fn;
};

// quorum_model_initialize's prototype, with the enum as an int and the
// model data as the pointer it is.
typedef __typeof__(LQ_MODEL_INITIALIZE_FN(int, void)) lq_model_initialize_fn;

// CS_PRI_NODE_ID_PADDED appeared in corotypes.h in corosync 3.1.5, and no
// macro marks quorum.h's model V1 (its names are an enum, typedefs and a
// function). So with a 3.1.5 or later header, the declarations above are
// checked against the header's own; a 3.1.0 to 3.1.4 header is not checked,
// and a 2.4 or 3.0 header has nothing to check against.
#ifdef CS_PRI_NODE_ID_PADDED
#define LQ_LAYOUT_CHECKED 1
_Static_assert(LQ_QUORUM_MODEL_V1 == QUORUM_MODEL_V1, "QUORUM_MODEL_V1");
_Static_assert(sizeof(quorum_model_t) == sizeof(int), "quorum_model_t");
_Static_assert(sizeof(struct lq_ring_id) == sizeof(struct quorum_ring_id) &&
	offsetof(struct lq_ring_id, nodeid) == offsetof(struct quorum_ring_id, nodeid) &&
	offsetof(struct lq_ring_id, seq) == offsetof(struct quorum_ring_id, seq) &&
	_Alignof(struct lq_ring_id) == _Alignof(struct quorum_ring_id),
	"struct quorum_ring_id");
_Static_assert(sizeof(struct lq_model_v1_data) == sizeof(quorum_model_v1_data_t) &&
	offsetof(struct lq_model_v1_data, model) == offsetof(quorum_model_v1_data_t, model) &&
	offsetof(struct lq_model_v1_data, quorum_notify_fn) == offsetof(quorum_model_v1_data_t, quorum_notify_fn) &&
	offsetof(struct lq_model_v1_data, nodelist_notify_fn) == offsetof(quorum_model_v1_data_t, nodelist_notify_fn),
	"quorum_model_v1_data_t");
// Our function types with the header's types put in: the header's.
_Static_assert(__builtin_types_compatible_p(quorum_v1_quorum_notification_fn_t,
	LQ_V1_QUORUM_FN(struct quorum_ring_id)), "quorum_v1_quorum_notification_fn_t");
_Static_assert(__builtin_types_compatible_p(quorum_v1_nodelist_notification_fn_t,
	LQ_V1_NODELIST_FN(struct quorum_ring_id)), "quorum_v1_nodelist_notification_fn_t");
_Static_assert(__builtin_types_compatible_p(__typeof__(&quorum_model_initialize),
	LQ_MODEL_INITIALIZE_FN(quorum_model_t, quorum_model_data_t)), "quorum_model_initialize");
_Static_assert(__builtin_types_compatible_p(__typeof__(((quorum_model_v1_data_t *)0)->quorum_notify_fn),
	quorum_v1_quorum_notification_fn_t) &&
	__builtin_types_compatible_p(__typeof__(((quorum_model_v1_data_t *)0)->nodelist_notify_fn),
	quorum_v1_nodelist_notification_fn_t), "quorum_model_v1_data_t's callbacks");
#else
#define LQ_LAYOUT_CHECKED 0
#endif

// lq_model_initialize returns libquorum's quorum_model_initialize, or NULL
// when the libquorum loaded at run time has none (corosync 2.4 and 3.0).
// It is looked up at run time, so that a program built against 3.1 still
// starts with an older library, and one built against an older one uses
// model V1 where the library has it. The symbol is unversioned in 3.1's
// libquorum.so.5 (only the 2.x functions carry COROSYNC_QUORUM_1.0), which
// dlsym finds with RTLD_DEFAULT.
static lq_model_initialize_fn lq_model_initialize(void) {
	return (lq_model_initialize_fn)dlsym(RTLD_DEFAULT, "quorum_model_initialize");
}

static int lq_has_model_v1(void) {
	return lq_model_initialize() != NULL;
}

// The Go side of the callbacks, defined in callbacks.go. The context is the
// cgo.Handle of the Conn, carried as an integer so that C never holds a Go
// pointer.
extern void goQuorumNotify(uintptr_t ctx, uint32_t quorate, uint32_t ringNode,
	uint64_t ringSeq, uint32_t n, uint32_t *members);
extern void goNodelistNotify(uintptr_t ctx, uint32_t ringNode, uint64_t ringSeq,
	uint32_t nm, uint32_t *members, uint32_t nj, uint32_t *joined,
	uint32_t nl, uint32_t *left);
extern void goV0Notify(uintptr_t ctx, uint32_t quorate, uint64_t ringSeq,
	uint32_t n, uint32_t *members);

static uintptr_t lq_context(quorum_handle_t h) {
	const void *ctx = NULL;
	if (quorum_context_get(h, &ctx) != CS_OK) {
		return 0;
	}
	return (uintptr_t)ctx;
}

static void lq_quorum_cb(quorum_handle_t h, uint32_t quorate,
	struct lq_ring_id ring, uint32_t n, const uint32_t *members) {
	uintptr_t ctx = lq_context(h);
	if (ctx == 0) {
		return;
	}
	goQuorumNotify(ctx, quorate, ring.nodeid, ring.seq, n, (uint32_t *)members);
}

static void lq_nodelist_cb(quorum_handle_t h, struct lq_ring_id ring,
	uint32_t nm, const uint32_t *members, uint32_t nj, const uint32_t *joined,
	uint32_t nl, const uint32_t *left) {
	uintptr_t ctx = lq_context(h);
	if (ctx == 0) {
		return;
	}
	goNodelistNotify(ctx, ring.nodeid, ring.seq, nm, (uint32_t *)members,
		nj, (uint32_t *)joined, nl, (uint32_t *)left);
}

// lq_v0_cb is a quorum_notification_fn_t, the model V0 callback of every
// corosync version.
static void lq_v0_cb(quorum_handle_t h, uint32_t quorate, uint64_t ring_seq,
	uint32_t n, uint32_t *members) {
	uintptr_t ctx = lq_context(h);
	if (ctx == 0) {
		return;
	}
	goV0Notify(ctx, quorate, ring_seq, n, members);
}

// lq_init connects and fetches the fd in one C call, so that the Go side
// makes a single blocking call per Dial. It uses model V1 when libquorum has
// it and allow_v1 is set, otherwise quorum_initialize (model V0), whose
// context is then set with quorum_context_set. *model says which.
static cs_error_t lq_init(quorum_handle_t *h, uint32_t *qtype, uintptr_t ctx,
	int *fd, int allow_v1, int *model) {
	lq_model_initialize_fn init = allow_v1 ? lq_model_initialize() : NULL;
	cs_error_t rc;

	if (init != NULL) {
		struct lq_model_v1_data data;

		data.model = LQ_QUORUM_MODEL_V1;
		data.quorum_notify_fn = lq_quorum_cb;
		data.nodelist_notify_fn = lq_nodelist_cb;
		*model = 1;
		rc = init(h, LQ_QUORUM_MODEL_V1, &data, qtype, (void *)ctx);
		if (rc != CS_OK) {
			return rc;
		}
	} else {
		quorum_callbacks_t cb;

		cb.quorum_notify_fn = lq_v0_cb;
		*model = 0;
		rc = quorum_initialize(h, &cb, qtype);
		if (rc != CS_OK) {
			return rc;
		}
		rc = quorum_context_set(*h, (const void *)ctx);
		if (rc != CS_OK) {
			quorum_finalize(*h);
			return rc;
		}
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

// layoutChecked reports whether this build checked its model V1
// declarations against the header's (a corosync 3.1.5 or later header).
const layoutChecked = C.LQ_LAYOUT_CHECKED != 0

type cHandle = C.quorum_handle_t

// cHasModelV1 reports whether the libquorum loaded in this process has
// quorum_model_initialize (corosync 3.1 or later).
func cHasModelV1() bool { return C.lq_has_model_v1() != 0 }

// cInit connects with quorum_model_initialize (model V1) when libquorum has
// it and allowV1 is set, else with quorum_initialize (model V0), then runs
// quorum_fd_get. model is the model used.
func cInit(ctx uintptr, allowV1 bool) (h cHandle, quorumType uint32, fd int, model int, code int32) {
	var qt C.uint32_t
	var cfd, cmodel, allow C.int
	if allowV1 {
		allow = 1
	}
	rc := C.lq_init(&h, &qt, C.uintptr_t(ctx), &cfd, allow, &cmodel)
	return h, uint32(qt), int(cfd), int(cmodel), int32(rc)
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
