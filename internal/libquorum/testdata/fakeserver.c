/*
 * A stand-in for corosync's quorum service, for the peer-check test: a libqb
 * IPC server bound to the abstract name "quorum" that answers the few
 * requests libquorum makes. Run it as an unprivileged user in a network
 * namespace without corosync. It prints "ready" once it listens and runs
 * until killed. With the argument "socket" it uses libqb's socket transport
 * (corosync's qb_ipc_type: socket) instead of shared memory. A trackstart
 * gets a notification whose member count is far larger than its list: a
 * model V1 one for a client that connected with quorum_model_initialize
 * (which asks MODEL_GETTYPE), a model V0 one for a client that connected
 * with quorum_initialize (which asks GETTYPE).
 */
#include <qb/qbdefs.h>
#include <qb/qbipcs.h>
#include <qb/qbloop.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static qb_loop_t *loop;

/* Request ids and their answers, from corosync's ipc_quorum.h. */
enum { REQ_GETQUORATE = 0, REQ_TRACKSTART = 1, REQ_GETTYPE = 3, REQ_MODEL_GETTYPE = 4 };
enum { RES_GETQUORATE = 0, RES_TRACKSTART = 1, EV_V0_QUORUM = 3, RES_GETTYPE = 4,
       RES_MODEL_GETTYPE = 5, EV_V1_QUORUM = 6 };
enum { CS_OK = 1, CS_ERR_NOT_SUPPORTED = 19 };

struct reply {
	struct qb_ipc_response_header hdr;
	uint32_t value __attribute__((aligned(8)));
};

/* A model V1 quorum notification with one member but a member count far
 * larger than the message: libquorum passes the count on unchecked. */
struct bogus_quorum_event {
	struct qb_ipc_response_header hdr;
	int32_t quorate __attribute__((aligned(8)));
	uint32_t ring_node __attribute__((aligned(8)));
	uint64_t ring_seq __attribute__((aligned(8)));
	uint32_t entries __attribute__((aligned(8)));
	uint32_t members[1];
};

/* The same for model V0 (struct res_lib_quorum_notification). */
struct bogus_v0_event {
	struct qb_ipc_response_header hdr;
	int32_t quorate __attribute__((aligned(8)));
	uint64_t ring_seq __attribute__((aligned(8)));
	uint32_t entries __attribute__((aligned(8)));
	uint32_t members[1];
};

/* A connection's context is non-NULL once it asked MODEL_GETTYPE. */
static int model_v1_mark;

static int32_t on_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid)
{
	(void)uid;
	(void)gid;
	/* Unprivileged, this process may not give the connection's files to
	 * the client, so it keeps them and opens them to everyone. */
	qb_ipcs_connection_auth_set(c, getuid(), getgid(), 0666);
	return 0;
}

static int32_t on_msg(qb_ipcs_connection_t *c, void *data, size_t size)
{
	struct qb_ipc_request_header *req = data;
	struct reply r;

	if (size < sizeof(*req)) {
		return 0;
	}
	memset(&r, 0, sizeof(r));
	r.hdr.size = sizeof(r);
	r.hdr.error = CS_OK;
	r.value = 1; /* a provider is set; quorate */
	switch (req->id) {
	case REQ_GETQUORATE:
		r.hdr.id = RES_GETQUORATE;
		break;
	case REQ_GETTYPE:
		r.hdr.id = RES_GETTYPE;
		break;
	case REQ_MODEL_GETTYPE:
		qb_ipcs_context_set(c, &model_v1_mark);
		r.hdr.id = RES_MODEL_GETTYPE;
		break;
	case REQ_TRACKSTART: {
		struct bogus_quorum_event ev;
		struct bogus_v0_event ev0;

		if (qb_ipcs_context_get(c) == NULL) {
			memset(&ev0, 0, sizeof(ev0));
			ev0.hdr.id = EV_V0_QUORUM;
			ev0.hdr.size = sizeof(ev0);
			ev0.hdr.error = CS_OK;
			ev0.quorate = 1;
			ev0.ring_seq = 4;
			ev0.entries = 0x7fffffff;
			ev0.members[0] = 1;
			qb_ipcs_event_send(c, &ev0, sizeof(ev0));
			r.hdr.id = RES_TRACKSTART;
			r.hdr.size = sizeof(r.hdr);
			break;
		}
		memset(&ev, 0, sizeof(ev));
		ev.hdr.id = EV_V1_QUORUM;
		ev.hdr.size = sizeof(ev);
		ev.hdr.error = CS_OK;
		ev.quorate = 1;
		ev.ring_node = 1;
		ev.ring_seq = 4;
		ev.entries = 0x7fffffff;
		ev.members[0] = 1;
		qb_ipcs_event_send(c, &ev, sizeof(ev));
		r.hdr.id = RES_TRACKSTART;
		r.hdr.size = sizeof(r.hdr);
		break;
	}
	default:
		r.hdr.id = req->id;
		r.hdr.size = sizeof(r.hdr);
		r.hdr.error = CS_ERR_NOT_SUPPORTED;
	}
	qb_ipcs_response_send(c, &r, r.hdr.size);
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

int main(int argc, char **argv)
{
	struct qb_ipcs_service_handlers sh = {
		.connection_accept = on_accept,
		.msg_process = on_msg,
	};
	struct qb_ipcs_poll_handlers ph = {
		.job_add = job_add,
		.dispatch_add = poll_add,
		.dispatch_mod = poll_mod,
		.dispatch_del = poll_del,
	};
	qb_ipcs_service_t *s;
	enum qb_ipc_type type = QB_IPC_SHM;

	if (argc > 1 && strcmp(argv[1], "socket") == 0) {
		type = QB_IPC_SOCKET;
	}

	loop = qb_loop_create();
	s = qb_ipcs_create("quorum", 0, type, &sh);
	if (loop == NULL || s == NULL) {
		fprintf(stderr, "fakeserver: cannot create the service\n");
		return 1;
	}
	qb_ipcs_poll_handlers_set(s, &ph);
	if (qb_ipcs_run(s) != 0) {
		fprintf(stderr, "fakeserver: cannot listen\n");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	qb_loop_run(loop);
	return 0;
}
