//go:build libquorum && cgo && linux

package libquorum

/*
#cgo pkg-config: libvotequorum libcmap
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <corosync/corotypes.h>
#include <corosync/votequorum.h>
#include <corosync/cmap.h>

// votequorum.h is the same file in corosync 2.4.0 to 3.1.10; its nodelist
// callback and the callbacks struct's third field came with 2.4.0. So the
// header's own types are used, and the assertions below check that the
// callbacks defined here are exactly of the types the header names, and
// that a node list entry is the pair of uint32 the Go side reads.
_Static_assert(sizeof(votequorum_node_t) == 8 &&
	offsetof(votequorum_node_t, nodeid) == 0 &&
	offsetof(votequorum_node_t, state) == 4, "votequorum_node_t");
_Static_assert(sizeof(((votequorum_ring_id_t *)0)->nodeid) == 4 &&
	sizeof(((votequorum_ring_id_t *)0)->seq) == 8, "votequorum_ring_id_t");
_Static_assert(sizeof(((struct votequorum_info *)0)->qdevice_name) == VOTEQUORUM_QDEVICE_MAX_NAME_LEN,
	"struct votequorum_info's qdevice_name");

// The Go side, in votes_callbacks.go. ctx is the cgo.Handle of the handle's
// owner, carried as an integer so that C never holds a Go pointer.
extern void goVoteQuorumNotify(uintptr_t ctx, uint32_t quorate, uint32_t n, uint32_t *pairs);
extern void goVoteExpectedNotify(uintptr_t ctx, uint32_t expected);
extern void goVoteNodelistNotify(uintptr_t ctx, uint32_t ringNode, uint64_t ringSeq,
	uint32_t n, uint32_t *nodes);
extern void goCmapNotify(uintptr_t ctx);

// The context comes from the library's own record of the handle, never from
// the wire: the context field of a notification is whatever the server
// sends.
static uintptr_t lvq_context(votequorum_handle_t h) {
	void *ctx = NULL;
	if (votequorum_context_get(h, &ctx) != CS_OK) {
		return 0;
	}
	return (uintptr_t)ctx;
}

static void lvq_quorum_cb(votequorum_handle_t h, uint64_t context, uint32_t quorate,
	uint32_t n, votequorum_node_t nodes[]) {
	uintptr_t ctx = lvq_context(h);
	(void)context;
	if (ctx != 0) {
		goVoteQuorumNotify(ctx, quorate, n, (uint32_t *)nodes);
	}
}

static void lvq_expected_cb(votequorum_handle_t h, uint64_t context, uint32_t expected) {
	uintptr_t ctx = lvq_context(h);
	(void)context;
	if (ctx != 0) {
		goVoteExpectedNotify(ctx, expected);
	}
}

static void lvq_nodelist_cb(votequorum_handle_t h, uint64_t context, votequorum_ring_id_t ring,
	uint32_t n, uint32_t nodes[]) {
	uintptr_t ctx = lvq_context(h);
	(void)context;
	if (ctx != 0) {
		goVoteNodelistNotify(ctx, ring.nodeid, ring.seq, n, nodes);
	}
}

_Static_assert(__builtin_types_compatible_p(__typeof__(&lvq_quorum_cb),
	votequorum_quorum_notification_fn_t), "votequorum_quorum_notification_fn_t");
_Static_assert(__builtin_types_compatible_p(__typeof__(&lvq_expected_cb),
	votequorum_expectedvotes_notification_fn_t), "votequorum_expectedvotes_notification_fn_t");
_Static_assert(__builtin_types_compatible_p(__typeof__(&lvq_nodelist_cb),
	votequorum_nodelist_notification_fn_t), "votequorum_nodelist_notification_fn_t");

// lvq_init connects, sets the context and fetches the fd in one C call. The
// callbacks struct is zeroed first, so that a field a later header might add
// stays NULL, which libvotequorum takes as "no callback".
static cs_error_t lvq_init(votequorum_handle_t *h, uintptr_t ctx, int *fd) {
	votequorum_callbacks_t cb;
	cs_error_t rc;

	memset(&cb, 0, sizeof(cb));
	cb.votequorum_quorum_notify_fn = lvq_quorum_cb;
	cb.votequorum_expectedvotes_notify_fn = lvq_expected_cb;
	cb.votequorum_nodelist_notify_fn = lvq_nodelist_cb;
	rc = votequorum_initialize(h, &cb);
	if (rc != CS_OK) {
		return rc;
	}
	rc = votequorum_context_set(*h, (void *)ctx);
	if (rc == CS_OK) {
		rc = votequorum_fd_get(*h, fd);
	}
	if (rc != CS_OK) {
		votequorum_finalize(*h);
	}
	return rc;
}

static cs_error_t lvq_dispatch_all(votequorum_handle_t h) {
	return votequorum_dispatch(h, CS_DISPATCH_ALL);
}

// Both cmap trackers of a VoteConn report the same thing to Go: the
// configured nodes should be read again. For the reload marker that is only
// so once it is back to 0 (or gone): while it is 1 nothing has changed yet.
static void lcm_nodelist_cb(cmap_handle_t h, cmap_track_handle_t th, int32_t event,
	const char *key, struct cmap_notify_value new_value, struct cmap_notify_value old_value,
	void *user_data) {
	(void)h; (void)th; (void)event; (void)key; (void)new_value; (void)old_value;
	goCmapNotify((uintptr_t)user_data);
}

static void lcm_reload_cb(cmap_handle_t h, cmap_track_handle_t th, int32_t event,
	const char *key, struct cmap_notify_value new_value, struct cmap_notify_value old_value,
	void *user_data) {
	(void)h; (void)th; (void)key; (void)old_value;
	if (event == CMAP_TRACK_DELETE ||
	    (new_value.type == CMAP_VALUETYPE_UINT8 && new_value.len == 1 &&
	     new_value.data != NULL && *(const uint8_t *)new_value.data == 0)) {
		goCmapNotify((uintptr_t)user_data);
	}
}

_Static_assert(__builtin_types_compatible_p(__typeof__(&lcm_nodelist_cb), cmap_notify_fn_t) &&
	__builtin_types_compatible_p(__typeof__(&lcm_reload_cb), cmap_notify_fn_t), "cmap_notify_fn_t");

static cs_error_t lcm_init(cmap_handle_t *h, int *fd) {
	cs_error_t rc = cmap_initialize(h);
	if (rc != CS_OK) {
		return rc;
	}
	rc = cmap_fd_get(*h, fd);
	if (rc != CS_OK) {
		cmap_finalize(*h);
	}
	return rc;
}

// lcm_track adds one tracker on key; reload selects the marker's callback.
static cs_error_t lcm_track(cmap_handle_t h, const char *key, int32_t type, int reload, uintptr_t ctx) {
	cmap_track_handle_t th;
	return cmap_track_add(h, key, type, reload ? lcm_reload_cb : lcm_nodelist_cb, (void *)ctx, &th);
}

static cs_error_t lcm_dispatch_all(cmap_handle_t h) {
	return cmap_dispatch(h, CS_DISPATCH_ALL);
}
*/
import "C"

import (
	"unsafe"

	"github.com/corosync-go/quorum/internal/model"
)

// The header's values that the Go side uses, checked at compile time against
// internal/model's: each index below is out of range, and the build fails,
// unless the two are equal.
var (
	_ = [1]int{}[C.VOTEQUORUM_INFO_TWONODE-model.FlagTwoNode]
	_ = [1]int{}[C.VOTEQUORUM_INFO_QUORATE-model.FlagQuorate]
	_ = [1]int{}[C.VOTEQUORUM_INFO_WAIT_FOR_ALL-model.FlagWaitForAll]
	_ = [1]int{}[C.VOTEQUORUM_INFO_LAST_MAN_STANDING-model.FlagLastManStanding]
	_ = [1]int{}[C.VOTEQUORUM_INFO_AUTO_TIE_BREAKER-model.FlagAutoTieBreaker]
	_ = [1]int{}[C.VOTEQUORUM_INFO_ALLOW_DOWNSCALE-model.FlagAllowDownscale]
	_ = [1]int{}[C.VOTEQUORUM_INFO_QDEVICE_REGISTERED-model.FlagQdeviceRegistered]
	_ = [1]int{}[C.VOTEQUORUM_INFO_QDEVICE_ALIVE-model.FlagQdeviceAlive]
	_ = [1]int{}[C.VOTEQUORUM_INFO_QDEVICE_CAST_VOTE-model.FlagQdeviceCastVote]
	_ = [1]int{}[C.VOTEQUORUM_INFO_QDEVICE_MASTER_WINS-model.FlagQdeviceMasterWins]
	_ = [1]int{}[C.VOTEQUORUM_NODESTATE_MEMBER-model.NodeMember]
	_ = [1]int{}[C.VOTEQUORUM_NODESTATE_DEAD-model.NodeDead]
	_ = [1]int{}[C.VOTEQUORUM_NODESTATE_LEAVING-model.NodeLeaving]
)

// corosync's values the rest of the package uses without cgo.
const (
	cmapTrackAdd    = C.CMAP_TRACK_ADD
	cmapTrackDelete = C.CMAP_TRACK_DELETE
	cmapTrackModify = C.CMAP_TRACK_MODIFY
	cmapTrackPrefix = C.CMAP_TRACK_PREFIX
	cmapTypeUint32  = C.CMAP_VALUETYPE_UINT32
	cmapTypeString  = C.CMAP_VALUETYPE_STRING
	// cmapKeyBuf is what cmap_iter_next may write: it copies the key's
	// length, a uint16 of the reply, then a NUL, without checking them
	// against its caller's buffer (CMAP_KEYNAME_MAXLEN + 1 bytes in
	// corosync's own tools).
	cmapKeyBuf = 1<<16 + 1
)

func cVoteInit(ctx uintptr) (h uint64, fd int, rc int32) {
	var ch C.votequorum_handle_t
	var cfd C.int
	r := C.lvq_init(&ch, C.uintptr_t(ctx), &cfd)
	return uint64(ch), int(cfd), int32(r)
}

func cVoteFinalize(h uint64) int32 {
	return int32(C.votequorum_finalize(C.votequorum_handle_t(h)))
}

func cVoteDispatchAll(h uint64) int32 {
	return int32(C.lvq_dispatch_all(C.votequorum_handle_t(h)))
}

func cVoteGetInfo(h uint64, nodeID uint32) (model.VoteInfo, int32) {
	var info C.struct_votequorum_info
	rc := C.votequorum_getinfo(C.votequorum_handle_t(h), C.uint(nodeID), &info)
	if rc != C.CS_OK {
		return model.VoteInfo{}, int32(rc)
	}
	name := C.GoBytes(unsafe.Pointer(&info.qdevice_name[0]), C.int(len(info.qdevice_name)))
	for i, b := range name {
		if b == 0 {
			name = name[:i]
			break
		}
	}
	return model.VoteInfo{
		NodeID:          uint32(info.node_id),
		State:           uint32(info.node_state),
		Votes:           uint32(info.node_votes),
		Expected:        uint32(info.node_expected_votes),
		HighestExpected: uint32(info.highest_expected),
		TotalVotes:      uint32(info.total_votes),
		Quorum:          uint32(info.quorum),
		Flags:           uint32(info.flags),
		QdeviceVotes:    uint32(info.qdevice_votes),
		QdeviceName:     string(name),
	}, int32(rc)
}

func cVoteSetExpected(h uint64, expected uint32) int32 {
	return int32(C.votequorum_setexpected(C.votequorum_handle_t(h), C.uint(expected)))
}

func cVoteSetVotes(h uint64, nodeID, votes uint32) int32 {
	return int32(C.votequorum_setvotes(C.votequorum_handle_t(h), C.uint(nodeID), C.uint(votes)))
}

func cVoteTrackStart(h uint64, flags uint32) int32 {
	return int32(C.votequorum_trackstart(C.votequorum_handle_t(h), 0, C.uint(flags)))
}

func cCmapInit() (h uint64, fd int, rc int32) {
	var ch C.cmap_handle_t
	var cfd C.int
	r := C.lcm_init(&ch, &cfd)
	return uint64(ch), int(cfd), int32(r)
}

func cCmapFinalize(h uint64) int32 {
	return int32(C.cmap_finalize(C.cmap_handle_t(h)))
}

func cCmapDispatchAll(h uint64) int32 {
	return int32(C.lcm_dispatch_all(C.cmap_handle_t(h)))
}

// cCmapTrack adds a tracker whose notifications reach goCmapNotify with ctx;
// reload selects the callback that reports only the end of a reload.
func cCmapTrack(h uint64, key string, typ int32, reload bool, ctx uintptr) int32 {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var r C.int
	if reload {
		r = 1
	}
	return int32(C.lcm_track(C.cmap_handle_t(h), ck, C.int32_t(typ), r, C.uintptr_t(ctx)))
}

// cCmapGet is cmap_get into buf (nil: only the value's length and type).
// It returns the value's length and type.
func cCmapGet(h uint64, key string, buf []byte) (n int, typ int, rc int32) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p unsafe.Pointer
	l := C.size_t(len(buf))
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	var t C.cmap_value_types_t
	r := C.cmap_get(C.cmap_handle_t(h), ck, p, &l, &t)
	return int(l), int(t), int32(r)
}

func cCmapGetUint32(h uint64, key string) (uint32, int32) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var v C.uint32_t
	r := C.cmap_get_uint32(C.cmap_handle_t(h), ck, &v)
	return uint32(v), int32(r)
}

func cCmapIterInit(h uint64, prefix string) (uint64, int32) {
	cp := C.CString(prefix)
	defer C.free(unsafe.Pointer(cp))
	var it C.cmap_iter_handle_t
	r := C.cmap_iter_init(C.cmap_handle_t(h), cp, &it)
	return uint64(it), int32(r)
}

// cCmapIterNext writes the next key into buf, which must hold cmapKeyBuf
// bytes, and returns it.
func cCmapIterNext(h, it uint64, buf []byte) (string, int32) {
	var l C.size_t
	var t C.cmap_value_types_t
	r := C.cmap_iter_next(C.cmap_handle_t(h), C.cmap_iter_handle_t(it), (*C.char)(unsafe.Pointer(&buf[0])), &l, &t)
	if r != C.CS_OK {
		return "", int32(r)
	}
	n := 0
	for n < len(buf) && buf[n] != 0 {
		n++
	}
	return string(buf[:n]), int32(r)
}

func cCmapIterFinalize(h, it uint64) int32 {
	return int32(C.cmap_iter_finalize(C.cmap_handle_t(h), C.cmap_iter_handle_t(it)))
}
