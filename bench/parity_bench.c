/*
 * parity_bench.c - the ceiling for parity RAID writes: how fast this machine computes
 * RAID5's P (XOR, ISA-L xor_gen) and RAID6's P+Q (ISA-L pq_gen) over in-memory chunks, with
 * the same wrappers the RAID engine calls (raid/parity.h) and nothing else: no I/O, no locks.
 *
 *   parity_bench [DATA_DISKS [CHUNK_KIB [SECONDS]]]      defaults 2, 64, 1
 *
 * Prints the data throughput (MB/s of data chunks consumed) of each, on one thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raid/layout.h"
#include "raid/parity.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long arg(int argc, char **argv, int i, unsigned long def, unsigned long max)
{
	char *end;
	unsigned long v;

	if (argc <= i)
		return def;
	errno = 0;
	v = strtoul(argv[i], &end, 10);
	if (errno || *end || v == 0 || v > max) {
		fprintf(stderr, "parity_bench: bad argument \"%s\" (1..%lu)\n", argv[i], max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned n = (unsigned)arg(argc, argv, 1, 2, RAID_MAX_DISKS - 2);
	size_t chunk = arg(argc, argv, 2, 64, 16384) << 10;
	double secs = (double)arg(argc, argv, 3, 1, 60);
	void *data[RAID_MAX_DISKS];
	void *p, *q;

	for (unsigned i = 0; i < n; i++) {
		if (posix_memalign(&data[i], 64, chunk))
			return 1;
		for (size_t k = 0; k < chunk; k++)
			((unsigned char *)data[i])[k] = (unsigned char)rand();
	}
	if (posix_memalign(&p, 64, chunk) || posix_memalign(&q, 64, chunk))
		return 1;
	for (int which = 0; which < 2; which++) {
		double t0 = now(), t;
		unsigned long rounds = 0;

		do {
			for (int k = 0; k < 64; k++) {
				if (which == 0)
					raid_xor(n, (const void *const *)data, p, chunk);
				else
					raid_pq(n, (const void *const *)data, p, q, chunk);
			}
			rounds += 64;
			t = now() - t0;
		} while (t < secs);
		printf("%s %u data disks, %zu KiB chunks: %.0f MB/s of data\n",
		       which ? "P+Q (RAID6)" : "P (RAID5)  ", n, chunk >> 10,
		       (double)rounds * n * chunk / t / 1e6);
	}
	for (unsigned i = 0; i < n; i++)
		free(data[i]);
	free(p);
	free(q);
	return 0;
}
