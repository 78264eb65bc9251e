/*
 * getquorate_loop: measures quorum_getquorate round trips per second through
 * libquorum, as the baseline for the Go backends' benchmarks.
 *
 *   getquorate_loop [-n ITERATIONS] [-d SECONDS]
 *
 * It stops after ITERATIONS calls or SECONDS seconds, whichever comes first
 * (default: 5 seconds), and prints one line:
 *   c getquorate: N round trips in S s: R/s
 * Run it in the network namespace of the corosync node to measure.
 */
#include <corosync/corotypes.h>
#include <corosync/quorum.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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

int main(int argc, char **argv)
{
	double iters = 0, secs = 0, start, took;
	uint64_t n = 0;
	quorum_handle_t h;
	quorum_callbacks_t cb = { .quorum_notify_fn = NULL };
	uint32_t qtype;
	cs_error_t rc;
	int opt, quorate;

	while ((opt = getopt(argc, argv, "n:d:")) != -1) {
		switch (opt) {
		case 'n':
			if (!parse(optarg, &iters)) {
				fprintf(stderr, "getquorate_loop: bad -n %s\n", optarg);
				return 2;
			}
			break;
		case 'd':
			if (!parse(optarg, &secs)) {
				fprintf(stderr, "getquorate_loop: bad -d %s\n", optarg);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: getquorate_loop [-n ITERATIONS] [-d SECONDS]\n");
			return 2;
		}
	}
	if (iters == 0 && secs == 0) {
		secs = 5;
	}

	rc = quorum_initialize(&h, &cb, &qtype);
	if (rc != CS_OK) {
		fprintf(stderr, "getquorate_loop: quorum_initialize: cs_error_t %d\n", rc);
		return 1;
	}
	start = now();
	for (;;) {
		rc = quorum_getquorate(h, &quorate);
		if (rc != CS_OK) {
			fprintf(stderr, "getquorate_loop: quorum_getquorate: cs_error_t %d\n", rc);
			quorum_finalize(h);
			return 1;
		}
		n++;
		if (iters > 0 && n >= iters) {
			break;
		}
		/* Reading the clock every 256 calls keeps it out of the figure. */
		if (secs > 0 && (n & 255) == 0 && now() - start >= secs) {
			break;
		}
	}
	took = now() - start;
	quorum_finalize(h);
	printf("c getquorate: %llu round trips in %.2f s: %.0f/s\n",
	       (unsigned long long)n, took, n / took);
	return 0;
}
