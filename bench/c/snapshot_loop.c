/*
 * snapshot_loop: the C side of BenchmarkSnapshotLibquorum
 * (internal/libquorum/bench_test.go). Each round asks corosync for a
 * snapshot, quorum_trackstart(CS_TRACK_CURRENT), which queues a nodelist
 * and a quorum notification before it answers, then waits with poll(2)
 * for the quorum descriptor and runs quorum_dispatch(CS_DISPATCH_ALL) until
 * both callbacks ran. So one round is the whole path of a notification in
 * a client: the descriptor turning readable, the dispatch, the callbacks.
 *
 *   snapshot_loop [-n ROUNDS] [-d SECONDS]
 *
 * It stops after ROUNDS rounds or SECONDS seconds, whichever comes first
 * (default: 5 seconds), and prints one line:
 *   c snapshot: N rounds in S s: R/s, dispatch D ns/round
 * where D is the time spent inside quorum_dispatch per round (both
 * notifications). Run it in the network namespace of the corosync node.
 */
#include <corosync/corotypes.h>
#include <corosync/quorum.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int seen;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && *out > 0;
}

static void on_quorum(quorum_handle_t h, uint32_t quorate, struct quorum_ring_id ring,
		      uint32_t n, const uint32_t *members)
{
	(void)h;
	(void)quorate;
	(void)ring;
	(void)n;
	(void)members;
	seen++;
}

static void on_nodelist(quorum_handle_t h, struct quorum_ring_id ring,
			uint32_t n, const uint32_t *members,
			uint32_t nj, const uint32_t *joined,
			uint32_t nl, const uint32_t *left)
{
	(void)h;
	(void)ring;
	(void)n;
	(void)members;
	(void)nj;
	(void)joined;
	(void)nl;
	(void)left;
	seen++;
}

int main(int argc, char **argv)
{
	double iters = 0, secs = 0, start, took, in_dispatch = 0, t;
	uint64_t n = 0;
	quorum_handle_t h;
	quorum_model_v1_data_t model = {
		.model = QUORUM_MODEL_V1,
		.quorum_notify_fn = on_quorum,
		.nodelist_notify_fn = on_nodelist,
	};
	uint32_t qtype;
	struct pollfd pfd;
	cs_error_t rc;
	int opt, fd;

	while ((opt = getopt(argc, argv, "n:d:")) != -1) {
		switch (opt) {
		case 'n':
			if (!parse(optarg, &iters)) {
				fprintf(stderr, "snapshot_loop: bad -n %s\n", optarg);
				return 2;
			}
			break;
		case 'd':
			if (!parse(optarg, &secs)) {
				fprintf(stderr, "snapshot_loop: bad -d %s\n", optarg);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: snapshot_loop [-n ROUNDS] [-d SECONDS]\n");
			return 2;
		}
	}
	if (iters == 0 && secs == 0) {
		secs = 5;
	}

	rc = quorum_model_initialize(&h, QUORUM_MODEL_V1, (quorum_model_data_t *)&model, &qtype, NULL);
	if (rc == CS_OK) {
		rc = quorum_fd_get(h, &fd);
	}
	if (rc != CS_OK) {
		fprintf(stderr, "snapshot_loop: quorum setup: cs_error_t %d\n", rc);
		return 1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	start = now();
	for (;;) {
		rc = quorum_trackstart(h, CS_TRACK_CURRENT);
		if (rc != CS_OK) {
			fprintf(stderr, "snapshot_loop: quorum_trackstart: cs_error_t %d\n", rc);
			quorum_finalize(h);
			return 1;
		}
		seen = 0;
		while (seen < 2) {
			if (poll(&pfd, 1, -1) < 0) {
				if (errno == EINTR) {
					continue;
				}
				perror("snapshot_loop: poll");
				quorum_finalize(h);
				return 1;
			}
			t = now();
			rc = quorum_dispatch(h, CS_DISPATCH_ALL);
			in_dispatch += now() - t;
			if (rc != CS_OK) {
				fprintf(stderr, "snapshot_loop: quorum_dispatch: cs_error_t %d\n", rc);
				quorum_finalize(h);
				return 1;
			}
		}
		n++;
		if (iters > 0 && n >= iters) {
			break;
		}
		if (secs > 0 && (n & 63) == 0 && now() - start >= secs) {
			break;
		}
	}
	took = now() - start;
	quorum_finalize(h);
	printf("c snapshot: %llu rounds in %.2f s: %.0f/s, dispatch %.0f ns/round\n",
	       (unsigned long long)n, took, n / took, in_dispatch * 1e9 / n);
	return 0;
}
