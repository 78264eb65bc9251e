/*
 * idle_watch: the C baseline for bench/idle.sh. It subscribes to corosync's
 * quorum events through libquorum (model V1, CS_TRACK_CURRENT|CHANGES) and
 * then sleeps in ppoll(2) on the library's fd with no timeout, dispatching
 * whatever is queued each time the fd becomes readable.
 *
 *   idle_watch
 *
 * Each event is printed on stdout as one line. It exits 0 on SIGTERM or
 * SIGINT, 1 if corosync refuses it or goes away, 2 on arguments.
 * Run it in the network namespace of the corosync node to watch.
 */
/* ppoll(2) is a GNU extension in glibc. */
#define _GNU_SOURCE
#include <corosync/corotypes.h>
#include <corosync/quorum.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void print_list(const char *name, uint32_t n, const uint32_t *ids)
{
	uint32_t i;

	printf(" %s [", name);
	for (i = 0; i < n; i++) {
		printf(i ? " %" PRIu32 : "%" PRIu32, ids[i]);
	}
	printf("]");
}

static void on_nodelist(quorum_handle_t h, struct quorum_ring_id ring,
			uint32_t nmembers, const uint32_t *members,
			uint32_t njoined, const uint32_t *joined,
			uint32_t nleft, const uint32_t *left)
{
	(void)h;
	printf("nodelist ring %" PRIu32 ".%" PRIu64, ring.nodeid, ring.seq);
	print_list("members", nmembers, members);
	print_list("joined", njoined, joined);
	print_list("left", nleft, left);
	printf("\n");
}

static void on_quorum(quorum_handle_t h, uint32_t quorate,
		      struct quorum_ring_id ring, uint32_t nmembers,
		      const uint32_t *members)
{
	(void)h;
	printf("quorum ring %" PRIu32 ".%" PRIu64 " %s", ring.nodeid, ring.seq,
	       quorate ? "quorate" : "NOT quorate");
	print_list("members", nmembers, members);
	printf("\n");
}

int main(int argc, char **argv)
{
	quorum_handle_t h;
	quorum_model_v1_data_t data;
	uint32_t qtype;
	struct sigaction sa;
	sigset_t block, waitmask;
	struct pollfd pfd;
	cs_error_t rc;
	int fd, status = 0;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: idle_watch\n");
		return 2;
	}
	/* The bench script waits for lines in a file: do not hold them back. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	/*
	 * The signals stay blocked except inside ppoll, so one that arrives
	 * between the check of stopping and the wait still ends the wait.
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	if (sigprocmask(SIG_BLOCK, &block, &waitmask) != 0 ||
	    sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
		perror("idle_watch: signals");
		return 1;
	}
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);

	memset(&data, 0, sizeof(data));
	data.model = QUORUM_MODEL_V1;
	data.quorum_notify_fn = on_quorum;
	data.nodelist_notify_fn = on_nodelist;
	rc = quorum_model_initialize(&h, QUORUM_MODEL_V1,
				     (quorum_model_data_t *)&data, &qtype, NULL);
	if (rc != CS_OK) {
		fprintf(stderr, "idle_watch: quorum_model_initialize: cs_error_t %d\n", rc);
		return 1;
	}
	rc = quorum_fd_get(h, &fd);
	if (rc != CS_OK) {
		fprintf(stderr, "idle_watch: quorum_fd_get: cs_error_t %d\n", rc);
		quorum_finalize(h);
		return 1;
	}
	rc = quorum_trackstart(h, CS_TRACK_CURRENT | CS_TRACK_CHANGES);
	if (rc != CS_OK) {
		fprintf(stderr, "idle_watch: quorum_trackstart: cs_error_t %d\n", rc);
		quorum_finalize(h);
		return 1;
	}

	pfd.fd = fd;
	pfd.events = POLLIN;
	while (!stopping) {
		pfd.revents = 0;
		if (ppoll(&pfd, 1, NULL, &waitmask) < 0) {
			if (errno == EINTR) {
				continue;
			}
			perror("idle_watch: ppoll");
			status = 1;
			break;
		}
		/* A hang-up also comes here: dispatch then reports CS_ERR_LIBRARY. */
		rc = quorum_dispatch(h, CS_DISPATCH_ALL);
		if (rc != CS_OK) {
			fprintf(stderr, "idle_watch: quorum_dispatch: cs_error_t %d\n", rc);
			status = 1;
			break;
		}
	}
	quorum_finalize(h);
	return status;
}
