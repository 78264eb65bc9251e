/*
 * A stand-in for corosync's cmap and votequorum services, for the peer-check
 * test of DialVotes: two libqb IPC services, bound to the abstract names
 * "cmap" and "votequorum", in one process meant to run as an unprivileged
 * user where corosync is not running. It prints "ready" once both listen and
 * runs until killed; the argument "socket" selects libqb's socket transport.
 *
 * cmap answers GET of quorum.provider with "corosync_votequorum", any other
 * GET with CS_ERR_NOT_EXIST (so the client takes it for corosync 3), and
 * TRACK_ADD with a track handle. votequorum answers TRACKSTART by queueing a
 * quorum notification whose entry count is far larger than its list, then
 * CS_OK; any other request gets CS_ERR_NOT_SUPPORTED.
 *
 * Layouts and ids are those of corosync's ipc_cmap.h and ipc_votequorum.h,
 * the same from 2.4 to 3.1.
 */
#include <qb/qbdefs.h>
#include <qb/qbipcs.h>
#include <qb/qbloop.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { CS_OK = 1, CS_ERR_NOT_EXIST = 12, CS_ERR_NOT_SUPPORTED = 19 };
enum { CMAP_GET = 2, CMAP_TRACK_ADD = 7 };
enum { CMAP_TYPE_STRING = 11 };
enum { VQ_TRACKSTART = 3 };
enum { VQ_RES_STATUS = 0, VQ_EV_QUORUM = 3 };

static qb_loop_t *loop;
static qb_ipcs_service_t *cmap_svc, *vq_svc;

static const char provider[] = "corosync_votequorum";

struct cmap_get_req {
	struct qb_ipc_request_header hdr;
	uint16_t key_len __attribute__((aligned(8)));
	char key[256] __attribute__((aligned(8)));
	uint64_t value_len __attribute__((aligned(8)));
};

struct cmap_get_res {
	struct qb_ipc_response_header hdr;
	uint64_t value_len __attribute__((aligned(8)));
	uint8_t type __attribute__((aligned(8)));
	char value[sizeof(provider)] __attribute__((aligned(8)));
};

struct cmap_track_res {
	struct qb_ipc_response_header hdr;
	uint64_t track_handle __attribute__((aligned(8)));
};

struct vq_quorum_event {
	struct qb_ipc_response_header hdr;
	uint32_t quorate __attribute__((aligned(8)));
	uint64_t context __attribute__((aligned(8)));
	uint32_t entries __attribute__((aligned(8)));
	uint32_t nodes[2] __attribute__((aligned(8)));
};

static int32_t on_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid)
{
	(void)uid;
	(void)gid;
	/* Unprivileged, this process may not give the connection's files to
	 * the client: it keeps them and lets everyone use them. */
	qb_ipcs_connection_auth_set(c, getuid(), getgid(), 0666);
	return 0;
}

static void cmap_get(qb_ipcs_connection_t *c, const struct cmap_get_req *req)
{
	struct cmap_get_res r;
	size_t size = offsetof(struct cmap_get_res, value);

	memset(&r, 0, sizeof(r));
	r.hdr.id = CMAP_GET;
	r.hdr.error = CS_OK;
	if (req->key_len == strlen("quorum.provider") &&
	    memcmp(req->key, "quorum.provider", req->key_len) == 0) {
		r.type = CMAP_TYPE_STRING;
		r.value_len = sizeof(provider);
		if (req->value_len >= sizeof(provider)) {
			memcpy(r.value, provider, sizeof(provider));
			/* libcmap waits for the header plus the length it asked. */
			size += req->value_len <= sizeof(provider) ? req->value_len : sizeof(provider);
		}
	} else {
		r.hdr.error = CS_ERR_NOT_EXIST;
	}
	r.hdr.size = size;
	qb_ipcs_response_send(c, &r, size);
}

static int32_t on_cmap(qb_ipcs_connection_t *c, void *data, size_t size)
{
	struct qb_ipc_request_header *req = data;
	struct cmap_track_res r;

	if (size < sizeof(*req)) {
		return 0;
	}
	if (req->id == CMAP_GET && size >= sizeof(struct cmap_get_req)) {
		cmap_get(c, data);
		return 0;
	}
	memset(&r, 0, sizeof(r));
	r.hdr.id = req->id;
	r.hdr.size = sizeof(r.hdr);
	r.hdr.error = CS_ERR_NOT_SUPPORTED;
	if (req->id == CMAP_TRACK_ADD) {
		r.hdr.size = sizeof(r);
		r.hdr.error = CS_OK;
		r.track_handle = 1;
	}
	qb_ipcs_response_send(c, &r, r.hdr.size);
	return 0;
}

static int32_t on_vq(qb_ipcs_connection_t *c, void *data, size_t size)
{
	struct qb_ipc_request_header *req = data;
	struct qb_ipc_response_header r;

	if (size < sizeof(*req)) {
		return 0;
	}
	memset(&r, 0, sizeof(r));
	r.id = VQ_RES_STATUS;
	r.size = sizeof(r);
	r.error = CS_ERR_NOT_SUPPORTED;
	if (req->id == VQ_TRACKSTART) {
		struct vq_quorum_event ev;

		memset(&ev, 0, sizeof(ev));
		ev.hdr.id = VQ_EV_QUORUM;
		ev.hdr.size = sizeof(ev);
		ev.hdr.error = CS_OK;
		ev.quorate = 1;
		ev.entries = 0x7fffffff;
		ev.nodes[0] = 1;
		ev.nodes[1] = 1;
		qb_ipcs_event_send(c, &ev, sizeof(ev));
		r.error = CS_OK;
	}
	qb_ipcs_response_send(c, &r, r.size);
	return 0;
}

static int32_t job_add(enum qb_loop_priority p, void *data, qb_loop_job_dispatch_fn fn)
{
	return qb_loop_job_add(loop, p, data, fn);
}

static int32_t poll_add(enum qb_loop_priority p, int32_t fd, int32_t events,
			void *data, qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_add(loop, p, fd, events, data, fn);
}

static int32_t poll_mod(enum qb_loop_priority p, int32_t fd, int32_t events,
			void *data, qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_mod(loop, p, fd, events, data, fn);
}

static int32_t poll_del(int32_t fd)
{
	return qb_loop_poll_del(loop, fd);
}

static qb_ipcs_service_t *listen_on(const char *name, enum qb_ipc_type type,
				    qb_ipcs_msg_process_fn fn)
{
	struct qb_ipcs_service_handlers sh = {
		.connection_accept = on_accept,
		.msg_process = fn,
	};
	struct qb_ipcs_poll_handlers ph = {
		.job_add = job_add,
		.dispatch_add = poll_add,
		.dispatch_mod = poll_mod,
		.dispatch_del = poll_del,
	};
	qb_ipcs_service_t *s = qb_ipcs_create(name, 0, type, &sh);

	if (s == NULL) {
		return NULL;
	}
	qb_ipcs_poll_handlers_set(s, &ph);
	if (qb_ipcs_run(s) != 0) {
		return NULL;
	}
	return s;
}

int main(int argc, char **argv)
{
	enum qb_ipc_type type = QB_IPC_SHM;

	if (argc > 1 && strcmp(argv[1], "socket") == 0) {
		type = QB_IPC_SOCKET;
	}
	loop = qb_loop_create();
	if (loop == NULL) {
		fprintf(stderr, "fakevotes: no loop\n");
		return 1;
	}
	cmap_svc = listen_on("cmap", type, on_cmap);
	vq_svc = listen_on("votequorum", type, on_vq);
	if (cmap_svc == NULL || vq_svc == NULL) {
		fprintf(stderr, "fakevotes: cannot listen\n");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	qb_loop_run(loop);
	return 0;
}
