/*
 * array_int.h - private state of the RAID engine, shared by array.c (requests and member
 * state), array_journal.c (the write-ahead journal) and array_sync.c (background work:
 * resync, recovery, check/repair, bitmap clearing, marking clean).
 */
#ifndef BS_RAID_ARRAY_INT_H
#define BS_RAID_ARRAY_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "raid/array.h"

#define RAID_MAX_SPARES	    16
#define LOCK_BUCKETS	    256
#define LOCKS_PER_BUCKET    64
#define RAID1_REGION	    128 /* sectors: lock and resync unit of RAID1 */
#define MAX_JOURNAL_ENTRIES 64

struct member {
	struct bs_bdev *bdev; /* NULL when missing */
	uint64_t data_offset;
	uint64_t data_sectors;
	uint64_t journal_offset;
	uint64_t csum_offset;
	uint32_t *csum;	     /* per block crc32c, 0 = unknown */
	uint8_t *csum_dirty; /* per table sector: needs writing */
	pthread_mutex_t csum_lock;
	_Atomic int state;		  /* enum raid_member_state */
	_Atomic uint64_t recovery_offset; /* RM_REBUILDING */
};

struct lock_bucket {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned n;
	uint64_t held[LOCKS_PER_BUCKET];
};

/* A record that a replay could still find in a ring (array_journal.c). */
struct jl_live {
	uint64_t pos, size, stripe;
};

struct journal_ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t head; /* next free sector, relative to the ring start */
	unsigned half; /* which half head is in; entering one makes its records' writes durable */
	/*
	 * Per half: records (partly) in it whose in-place writes have not finished, and the
	 * flush epoch (+1) after which all the finished ones are durable (see fepoch below).
	 */
	unsigned hactive[2];
	uint64_t hepoch[2];
	/* Its records that may still be valid on disk, oldest first (a circular queue). */
	struct jl_live *live;
	size_t live_first, live_n, live_cap;
};

struct raid_array {
	struct raid_config cfg;
	char *name;
	struct raid_geom g;
	unsigned max_degraded;
	struct member m[RAID_MAX_DISKS];
	struct member spare[RAID_MAX_SPARES];
	unsigned nspares;
	/* Member I/O holds it shared; swapping a spare in or removing a member holds it alone. */
	pthread_rwlock_t mlock;

	pthread_mutex_t state_lock; /* member states, spares, degraded/failed */
	pthread_cond_t state_cv;
	unsigned degraded;
	bool failed;

	/* Superblock updates: serialised; writes wait for a pending one before completing. */
	pthread_mutex_t meta_lock;
	atomic_uint meta_pending;
	bool clean;	     /* as last persisted */
	atomic_uint writers; /* writes in flight */
	atomic_uint_least64_t last_write_ms;

	struct lock_bucket buckets[LOCK_BUCKETS];

	/* Write-intent bitmap (in member sectors). */
	pthread_mutex_t bm_lock;
	uint8_t *bits;
	uint8_t *bits_disk; /* bm_lock: what the last bitmap write that finished put on disk */
	uint16_t *bcount;
	uint8_t *bage;
	uint64_t nbits;

	/* Journal */
	struct journal_ring ring[RAID_MAX_DISKS];
	pthread_mutex_t jreserve; /* orders record placement and numbering across rings */
	atomic_uint_least64_t jseq;

	uint64_t journal_replayed;
	/*
	 * Full-stripe writes skip the journal when no record of their stripe can be replayed
	 * (array_journal.c).  Per bucket of stripes: how many records a replay could find, and
	 * the flush epoch (+1) of the last write that skipped the journal.  Flush epochs:
	 * flush_members() starts epoch fepoch; every write completed before it is durable once
	 * fdone passes that epoch.
	 */
	atomic_uint *jlive;
	atomic_uint_least64_t *junlogged;
	atomic_uint_least64_t fepoch, fdone;
	atomic_uint_least64_t jskipped;
	/* Flushes the journal needed: before a ring overwrote records, before a record. */
	atomic_uint_least64_t jflushes;

	/* Background work */
	pthread_t sync_thread;
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_cv;
	enum raid_sync_action action;	 /* running */
	enum raid_sync_action requested; /* check/repair/idle asked by the user */
	bool quit, paused, frozen;
	uint64_t resync_offset; /* member sector; UINT64_MAX = nothing to resync */
	uint64_t sync_pos, sync_end;
	double sync_speed;
	uint64_t mismatch_cnt;
	uint64_t repaired_cnt; /* sectors the last sync action rewrote after read errors */
	atomic_uint_least64_t corrected;
	atomic_uint_least64_t csum_errors;

	/*
	 * Requests hold the gate shared; a grow takes it alone to start a copy window and to
	 * switch geometries.  RS is set only while a grow runs (array_reshape.c); RS_MEM keeps it
	 * allocated until the array goes, for requests still looking at it.
	 */
	pthread_rwlock_t gate;
	struct reshape *rs;
	struct reshape *rs_mem;
};

/*
 * member_io() flag, never passed below: a block that does not match the checksum log fails
 * the read (EILSEQ) but is neither counted nor logged.  For reads that are checked again
 * under the stripe's lock before anything is concluded (an unlocked read racing a write may
 * see the new data before the new checksum), and for the re-check itself, so that each bad
 * block counts once.
 */
#define RAID_IO_QUIET (1u << 31)

/* array.c */
bool member_readable(struct raid_array *a, unsigned r, uint64_t end_sector);
bool member_writable(struct raid_array *a, unsigned r);
int member_io(struct raid_array *a, unsigned r, enum bs_op op, void *buf, uint64_t sector,
	      uint64_t nsect, unsigned flags);
/* The same without the checksum log (the log's own I/O, raw reads for read-modify-write). */
int member_io_raw(struct raid_array *a, unsigned r, enum bs_op op, void *buf, uint64_t sector,
		  uint64_t nsect, unsigned flags);
void fail_member(struct raid_array *a, unsigned r, const char *why);
/* Marks faulty the members of BAD whose first block does not read (see array.c). */
void probe_members(struct raid_array *a, uint64_t bad);
bool is_media_error(int r);
void wait_meta(struct raid_array *a);
int meta_update(struct raid_array *a);
void raise_event(struct raid_array *a);
void lock_id(struct raid_array *a, uint64_t id);
void unlock_id(struct raid_array *a, uint64_t id);
int stripe_fill(struct raid_array *a, uint64_t stripe, const struct raid_stripe *lay, uint64_t off,
		uint64_t n, uint64_t want, uint64_t avoid, char **bufs, uint64_t *bad);
int flush_members(struct raid_array *a);
/* Read-error repair by unit: rewrites what member R still cannot read from GOOD (sectors). */
uint64_t rewrite_bad(struct raid_array *a, unsigned r, uint64_t ms, uint64_t n, const char *good,
		     const char *from);
/* RAID1/10: BUF from whichever copy reads each unit (all but member SKIP); -EIO if none. */
int mirror_fill_units(struct raid_array *a, const struct raid_loc *loc, unsigned nc, uint64_t n,
		      char *buf, int skip);
uint64_t now_ms(void);
unsigned raid10_copies(struct raid_array *a, uint64_t array_sector, struct raid_loc *loc,
		       uint64_t *run);
bool raid10_enough(struct raid_array *a);

/* The request path by level, without the gate (the grow uses it on both geometries). */
int array_dispatch(struct raid_array *a, struct bs_io *io);

/* array_reshape.c */
int reshape_setup(struct raid_array *a, const struct raid_config *cfg, struct strbuf *err);
/* A request while a grow runs; the gate is held shared. */
int reshape_io(struct raid_array *a, struct bs_io *io);
void reshape_stop(struct raid_array *a);
void reshape_free(struct raid_array *a);
int reshape_flush_new(struct raid_array *a);
/* Members during a grow: the new roles count (the spares that take them are members). */
unsigned reshape_member_count(struct raid_array *a);
void reshape_status(struct raid_array *a, struct raid_status *st);
void reshape_rebind(struct raid_array *a, struct bs_bdev *old, struct bs_bdev *new);
/* Member R of the array failed: the grow's other geometry must stop using it too. */
void reshape_member_failed(struct raid_array *a, unsigned r);

/* array_journal.c */
int journal_init(struct raid_array *a, struct strbuf *err);
/* Writes one record (entries point into caller buffers) before the in-place writes. */
struct jentry {
	unsigned role;
	uint64_t sector; /* member data-area sector */
	uint64_t nsect;
	const void *data;
};
/* Where a record went, for journal_done(). */
struct jticket {
	unsigned n;
	unsigned ring[2];
	unsigned halves[2]; /* bit h: the record lies (partly) in half h of ring[i] */
};
int journal_write(struct raid_array *a, uint64_t stripe, const unsigned *rings, unsigned nrings,
		  const struct jentry *e, unsigned n, struct jticket *t);
/* The record's in-place writes have finished. */
void journal_done(struct raid_array *a, const struct jticket *t);
void journal_free(struct raid_array *a);
/*
 * Whether a write of every data block of STRIPE may go in place without a record: only
 * when no record of the stripe is left that a replay would apply over it.
 */
bool journal_may_skip(struct raid_array *a, uint64_t stripe);
/* After such a write's in-place writes completed. */
void journal_skipped(struct raid_array *a, uint64_t stripe);
/*
 * Before a record of STRIPE: a write that skipped the journal there and is not yet flushed
 * is made durable first, so that the record (whose parity assumes it) never outlives it.
 */
int journal_before_record(struct raid_array *a, uint64_t stripe);

/* array_csum.c */
int csum_init(struct raid_array *a, struct strbuf *err);
void csum_free(struct raid_array *a);
bool csum_on(struct raid_array *a, unsigned r);
/* Reads/writes the data area of member R keeping and checking the checksum log. */
int csum_member_io(struct raid_array *a, unsigned r, enum bs_op op, void *buf, uint64_t sector,
		   uint64_t nsect, unsigned flags);
int csum_flush(struct raid_array *a);
/* Forgets the checksums of a range (its content is about to be rebuilt or resynced). */
void csum_forget(struct raid_array *a, unsigned r, uint64_t sector, uint64_t nsect);
/* Fills unknown checksums of a range known to be good (a consistent stripe or copy). */
void csum_learn(struct raid_array *a, unsigned r, uint64_t sector, uint64_t nsect, const void *buf);
/* A member (spare) added at run time gets an empty table. */
int csum_add(struct raid_array *a, struct member *m);

/* array_sync.c */
int sync_start(struct raid_array *a);
void sync_stop(struct raid_array *a);
void sync_kick(struct raid_array *a);
int bitmap_startwrite(struct raid_array *a, uint64_t sector, uint64_t nsect);
void bitmap_endwrite(struct raid_array *a, uint64_t sector, uint64_t nsect);
void mark_dirty(struct raid_array *a);

#endif
