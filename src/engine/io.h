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

#include <stdbool.h>
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

/*
 * Integrity metadata carried by a READ or WRITE (Linux's bio integrity payload): one tuple of
 * TUPLE_SIZE bytes for each INTERVAL bytes of data, in order, BUF holding len / interval
 * tuples.  The layer that stores tags next to the data (the integrity target without an
 * internal hash) writes them with the data and fills them on reads, and then sets TAKEN; a
 * tuple or interval size it does not use fails the request.  Every other target ignores
 * META, except that passing the request itself down (remapping only `off`, as linear does)
 * passes the metadata with it, and the table layer splits it with the request.  A producer
 * (crypt in AEAD mode) must treat TAKEN still false after a successful request as an
 * error: nothing below stored or supplied its tags.
 */
struct bs_io_meta {
	uint8_t *buf;
	unsigned tuple_size; /* bytes per interval */
	unsigned interval;   /* bytes of data per tuple (the integrity block size) */
	bool taken;	     /* set by the consumer */
};

struct bs_io {
	enum bs_op op;
	unsigned flags;
	uint64_t off;		 /* bytes */
	uint64_t len;		 /* bytes */
	void *buf;		 /* READ and WRITE only; WRITE never modifies it */
	struct bs_io_meta *meta; /* optional integrity metadata (READ, WRITE); usually NULL */
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
