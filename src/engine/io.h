/*
 * io.h - the request that flows through the engine.
 *
 * One request describes one operation on a byte range.  The device layer aligns requests to
 * the table's block size and the table layer splits them at segment boundaries, so a target
 * only ever sees a request that lies inside its own segment, with `off` relative to the
 * segment's start.  Targets remap the request (changing `off`) and pass it down, or split it
 * further themselves (striped, RAID).  Every call is synchronous and returns 0 or -errno;
 * callers run on I/O threads, many at once, so targets must be thread-safe.
 */
#ifndef BS_ENGINE_IO_H
#define BS_ENGINE_IO_H

#include <stdint.h>

#define BS_SECTOR_SHIFT 9
#define BS_SECTOR_SIZE	512u

enum bs_op {
	BS_OP_READ,
	BS_OP_WRITE,
	BS_OP_FLUSH,	    /* make every completed write durable; off/len unused */
	BS_OP_DISCARD,	    /* the range may read back as anything until written */
	BS_OP_WRITE_ZEROES, /* the range reads back as zeroes */
};

/* Request flags. */
#define BS_IO_FUA     (1u << 0) /* write: durable before completion */
#define BS_IO_NOUNMAP (1u << 1) /* write-zeroes: keep the range allocated */

struct bs_io {
	enum bs_op op;
	unsigned flags;
	uint64_t off; /* bytes */
	uint64_t len; /* bytes */
	void *buf;    /* READ and WRITE only; WRITE never modifies it */
};

static inline int bs_op_is_write(enum bs_op op)
{
	return op == BS_OP_WRITE || op == BS_OP_DISCARD || op == BS_OP_WRITE_ZEROES;
}

static inline const char *bs_op_name(enum bs_op op)
{
	switch (op) {
	case BS_OP_READ:
		return "read";
	case BS_OP_WRITE:
		return "write";
	case BS_OP_FLUSH:
		return "flush";
	case BS_OP_DISCARD:
		return "discard";
	case BS_OP_WRITE_ZEROES:
		return "write-zeroes";
	}
	return "?";
}

#endif
