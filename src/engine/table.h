/*
 * table.h - a device-mapper table: segments covering a device without gaps.
 *
 * The text form is Linux dmsetup's, one segment a line:
 *     <start sector> <length in sectors> <target type> <target arguments...>
 * The table layer owns splitting requests at segment boundaries, so targets never see a
 * request that crosses their end, and the fan-out of FLUSH to every segment.
 */
#ifndef BS_ENGINE_TABLE_H
#define BS_ENGINE_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/io.h"
#include "engine/target.h"
#include "util/strbuf.h"

struct bs_device;

struct bs_table {
	struct bs_device *owner; /* may be NULL (tests, offline use) */
	unsigned nr_targets;
	struct bs_target *targets;
	uint64_t size; /* sectors */
	bool readonly;
	unsigned block_size; /* largest block size of any target, bytes */
};

/*
 * Parses and constructs a table from TEXT (one or more lines; blank lines and lines starting
 * with '#' are ignored).  TEXT may carry keys: it is copied into locked memory for parsing and
 * the copies are wiped.  On error returns -errno and writes one line to ERR, naming the line
 * and the problem; nothing is kept.
 */
int bs_table_create(const char *text, struct bs_device *owner, bool readonly, struct bs_table **out,
		    struct strbuf *err);
void bs_table_destroy(struct bs_table *t);

/* Runs one request (already aligned to block_size and inside the table). */
int bs_table_submit(struct bs_table *t, struct bs_io *io);

/* The segment holding SECTOR, or NULL. */
struct bs_target *bs_table_find_target(struct bs_table *t, uint64_t sector);

/*
 * Appends one line per segment: "<start> <len> <type> <status>\n".  TARGET_FILTER, when not
 * NULL, keeps only segments of that type.
 */
void bs_table_status(struct bs_table *t, enum bs_status_type type, unsigned flags,
		     const char *target_filter, struct strbuf *out);

void bs_table_presuspend(struct bs_table *t);
void bs_table_postsuspend(struct bs_table *t);
int bs_table_preresume(struct bs_table *t, struct strbuf *err);
void bs_table_resume(struct bs_table *t);
int bs_table_flush(struct bs_table *t);

/* Calls fn for every device of every segment. */
void bs_table_for_each_bdev(struct bs_table *t, void (*fn)(struct bs_bdev *b, void *arg),
			    void *arg);

#endif
