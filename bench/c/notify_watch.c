/*
 * notify_watch: the C side of bench/notify.sh. It tracks quorum changes
 * through libquorum the way a C program would (poll(2) on quorum_fd_get's
 * descriptor, then quorum_dispatch(CS_DISPATCH_ALL)) and prints one line
 * per callback, stamped with CLOCK_REALTIME as the callback starts:
 *
 *   ev <unix-ns> <nodelist|quorum> <ring-node>.<ring-seq> <initial 0|1> <members,...>
 *
 * "initial" marks the snapshot that trackstart(CURRENT|CHANGES) queues
 * (the first nodelist and quorum callbacks). The line format is the one
 * bench/notifydelay prints for the Go backends, so that events can be
 * matched by kind and ring id. It prints "ready" once the snapshot is in,
 * and exits when its standard input reaches end of file, so that the
 * program that started it decides how long it watches.
 * Run it in the network namespace of the corosync node to watch.
 */
#include <corosync/corotypes.h>
#include <corosync/quorum.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int snapshot_left = 2;

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void print_event(uint64_t t, const char *kind, struct quorum_ring_id ring,
			size_t n, const uint32_t *members)
{
	size_t i;
	int initial = snapshot_left > 0;

	if (initial) {
		snapshot_left--;
	}
	printf("ev %" PRIu64 " %s %u.%" PRIu64 " %d ", t, kind, ring.nodeid, ring.seq, initial);
	for (i = 0; i < n; i++) {
		printf("%s%u", i ? "," : "", members[i]);
	}
	printf("\n");
	if (initial && snapshot_left == 0) {
		printf("ready\n");
	}
}

static void on_quorum(quorum_handle_t h, uint32_t quorate, struct quorum_ring_id ring,
		      uint32_t n, const uint32_t *members)
{
	uint64_t t = realtime_ns();

	(void)h;
	(void)quorate;
	print_event(t, "quorum", ring, n, members);
}

static void on_nodelist(quorum_handle_t h, struct quorum_ring_id ring,
			uint32_t n, const uint32_t *members,
			uint32_t nj, const uint32_t *joined,
			uint32_t nl, const uint32_t *left)
{
	uint64_t t = realtime_ns();

	(void)h;
	(void)nj;
	(void)joined;
	(void)nl;
	(void)left;
	print_event(t, "nodelist", ring, n, members);
}

int main(void)
{
	quorum_handle_t h;
	quorum_model_v1_data_t model = {
		.model = QUORUM_MODEL_V1,
		.quorum_notify_fn = on_quorum,
		.nodelist_notify_fn = on_nodelist,
	};
	uint32_t qtype;
	struct pollfd pfd[2];
	cs_error_t rc;
	int fd;

	/* Each line must leave at once: the reader stamps nothing itself, but
	 * it waits for "ready" before it changes the cluster. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = quorum_model_initialize(&h, QUORUM_MODEL_V1, (quorum_model_data_t *)&model, &qtype, NULL);
	if (rc != CS_OK) {
		fprintf(stderr, "notify_watch: quorum_model_initialize: cs_error_t %d\n", rc);
		return 1;
	}
	rc = quorum_fd_get(h, &fd);
	if (rc == CS_OK) {
		rc = quorum_trackstart(h, CS_TRACK_CURRENT | CS_TRACK_CHANGES);
	}
	if (rc != CS_OK) {
		fprintf(stderr, "notify_watch: quorum setup: cs_error_t %d\n", rc);
		quorum_finalize(h);
		return 1;
	}
	pfd[0].fd = fd;
	pfd[0].events = POLLIN;
	pfd[1].fd = STDIN_FILENO;
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			perror("notify_watch: poll");
			break;
		}
		if (pfd[0].revents) {
			rc = quorum_dispatch(h, CS_DISPATCH_ALL);
			if (rc != CS_OK) {
				fprintf(stderr, "notify_watch: quorum_dispatch: cs_error_t %d\n", rc);
				break;
			}
		}
		if (pfd[1].revents) {
			char buf[64];
			ssize_t n = read(STDIN_FILENO, buf, sizeof buf);

			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
				break;
			}
		}
	}
	quorum_finalize(h);
	return 0;
}
