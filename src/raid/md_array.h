/*
 * md_array.h - Linux md arrays: md superblocks (formats/md.h) driving the RAID engine.
 *
 * Creating an array writes a v1.2 superblock (and optionally an internal bitmap and the
 * blkstack journal area) on every member; assembling reads the superblocks, checks that the
 * members belong together, picks the freshest state and starts the engine with callbacks
 * that keep the superblocks current (events, roles, clean/dirty, recovery offsets, bitmap).
 * Arrays made by Linux md assemble here and arrays made here assemble in Linux.
 */
#ifndef BS_RAID_MD_ARRAY_H
#define BS_RAID_MD_ARRAY_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/bdev.h"
#include "formats/md.h"
#include "raid/array.h"
#include "util/strbuf.h"

/*
 * blkstack's own areas on members of arrays it creates: a header sector at this member
 * sector describes the journal ring and the checksum log that follow it.
 */
#define MD_EXT_HDR_SECTOR 2048
#define MD_EXT_MAGIC	  0x48585342u /* "BSXH" */
/* Free chunks kept before the data of RAID4/5/6 arrays created here; a grow takes 4. */
#define MD_GROW_HEADROOM_CHUNKS 16

struct md_create_params {
	int level;
	unsigned raid_disks;
	unsigned layout;
	uint64_t chunk; /* sectors */
	uint64_t size;	/* sectors used per member, 0 = largest possible */
	bool bitmap;	/* internal write-intent bitmap */
	bool assume_clean;
	enum raid_policy policy;
	uint64_t journal_sectors; /* 0 = default */
	uint64_t bitmap_chunk;	  /* sectors of a bitmap bit; 0 = default (mdadm's 64 MiB) */
	bool checksum_log;	  /* per-block checksums (see array_csum.c) */
	const char *name;	  /* array name (set_name becomes "homehost:name") */
	const char *homehost;
	const uint8_t *uuid; /* NULL = random */
};

/*
 * Writes superblocks for a new array.  MEMBERS[i] is the device of role i (NULL for
 * "missing"); SPARES follow.  Nothing is written unless every check passes.
 */
int md_array_format(const struct md_create_params *p, struct bs_bdev *const *members,
		    unsigned nmembers, struct bs_bdev *const *spares, unsigned nspares,
		    uint8_t uuid_out[16], uint64_t *array_sectors, struct strbuf *err);

/*
 * Reads the superblocks of DEVS (those of array UUID when not NULL) without starting
 * anything: the array's UUID, its size in sectors and its name (the part after "host:").
 */
int md_array_probe(struct bs_bdev *const *devs, unsigned ndevs, const uint8_t *uuid,
		   uint8_t uuid_out[16], uint64_t *array_sectors, char *name, size_t namelen,
		   struct strbuf *err);

struct md_array;

struct md_assemble_opts {
	const uint8_t *uuid; /* NULL: the first member's */
	bool run;	     /* start even when degraded */
	bool force;	     /* accept stale members */
	const char *name;
	void (*event)(void *);
	void *event_arg;
};

/* Reads the members' superblocks and starts the array. */
int md_array_assemble(struct bs_bdev *const *devs, unsigned ndevs, const struct md_assemble_opts *o,
		      struct md_array **out, struct strbuf *err);
/* Stops the array, leaving clean superblocks. */
void md_array_stop(struct md_array *m);

struct raid_array *md_array_engine(struct md_array *m);
void md_array_uuid(struct md_array *m, uint8_t uuid[16]);
const struct md_sb *md_array_sb(struct md_array *m); /* the current array-wide superblock */

/*
 * Hands the running array the handles DEVS of a new table (same devices, by name), so the
 * previous table can close its own.  Fails, changing nothing, when a device the array uses
 * is not among DEVS.
 */
int md_array_rebind(struct md_array *m, struct bs_bdev *const *devs, unsigned ndevs,
		    struct strbuf *err);

/* Adds DEV as a spare: writes its superblock, then hands it to the engine. */
int md_array_add(struct md_array *m, struct bs_bdev *dev, struct strbuf *err);
/*
 * Grows a RAID4/5/6 array onto RAID_DISKS members, taking spares for the new roles (see
 * raid_array_grow); the data moves down into free space before it, so none is needed after.
 */
int md_array_grow(struct md_array *m, unsigned raid_disks, struct strbuf *err);
/* Removes a faulty member or spare; *out is the bdev the caller may close. */
int md_array_remove(struct md_array *m, const char *name, struct bs_bdev **out, struct strbuf *err);

#endif
