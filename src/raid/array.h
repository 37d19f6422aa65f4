/*
 * array.h - the RAID engine shared by the md front end and the dm `raid` target.
 *
 * An array is a geometry (layout.h) over members that are bdevs.  It serves requests in
 * array sectors, keeps redundancy through member failures, rebuilds onto spares, scrubs, and
 * closes the RAID5/6 write hole with a journal.  It knows nothing about on-disk metadata:
 * a front end may pass meta callbacks that persist state changes (md superblocks, bitmap),
 * and the engine calls them at the points where md would write its superblocks.
 *
 * Concurrency: requests run on many threads at once.  Writes (and reads that must
 * reconstruct) lock the stripe or region they touch, so parity is never computed from a
 * half-updated stripe; one background thread runs resync, recovery, check and repair in
 * windows under the same locks.
 */
#ifndef BS_RAID_ARRAY_H
#define BS_RAID_ARRAY_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/bdev.h"
#include "engine/io.h"
#include "raid/layout.h"
#include "util/strbuf.h"

enum raid_member_state {
	RM_MISSING,    /* no device in this role */
	RM_IN_SYNC,    /* holds valid data */
	RM_REBUILDING, /* valid below recovery_offset */
	RM_FAULTY,     /* failed; kept only until removed */
	RM_SPARE,      /* not in a role */
};

enum raid_policy {
	RAID_POLICY_RESYNC,  /* bitmap + resync after an unclean stop (md's default) */
	RAID_POLICY_JOURNAL, /* also a write-ahead journal of stripe updates: no write hole */
};

enum raid_sync_action {
	RAID_SYNC_IDLE,
	RAID_SYNC_RESYNC,  /* make redundancy consistent (after an unclean stop / at create) */
	RAID_SYNC_RECOVER, /* rebuild a member */
	RAID_SYNC_CHECK,   /* read and compare, count mismatches */
	RAID_SYNC_REPAIR,  /* compare and fix */
	RAID_SYNC_FROZEN,  /* stopped until resumed */
	RAID_SYNC_RESHAPE, /* growing onto more members (array_reshape.c) */
};

struct raid_member_spec {
	struct bs_bdev *bdev;  /* borrowed: the caller keeps it open for the array's life */
	int role;	       /* 0..disks-1, or -1 for a spare */
	uint64_t data_offset;  /* sectors */
	uint64_t data_sectors; /* usable sectors in the data area */
	enum raid_member_state state;
	uint64_t recovery_offset; /* RM_REBUILDING */
	uint64_t journal_offset;  /* sectors on the member; 0 = none */
	uint64_t csum_offset;	  /* checksum log area on the member; 0 = none */
};

struct raid_array;

struct raid_meta_ops {
	/* Persist the array state (member states, recovery/resync offsets, clean flag). */
	int (*update)(struct raid_array *a, void *priv);
	/* Persist bitmap bytes [first, first+n); BYTES holds exactly those n bytes. */
	int (*bitmap_write)(struct raid_array *a, void *priv, const uint8_t *bytes, uint64_t first,
			    uint64_t n);
};

struct raid_config {
	int level;
	unsigned disks;
	unsigned layout;
	uint64_t chunk;	      /* sectors */
	uint64_t dev_sectors; /* sectors used per member; 0 = as large as the members allow */
	enum raid_policy policy;
	uint64_t journal_sectors; /* per member, with RAID_POLICY_JOURNAL */
	uint8_t uuid[16];	  /* identifies journal records and checksum logs */
	bool csum;		  /* per-block checksum log (members give csum_offset) */
	uint64_t bitmap_chunk;	  /* sectors per bitmap bit; 0 = no bitmap */
	const uint8_t *bitmap;	  /* initial bits (dirty regions), or NULL */
	uint64_t
	    resync_offset;     /* member sector from which a resync is needed; UINT64_MAX = clean */
	uint32_t daemon_sleep; /* seconds between bitmap clearing passes (0 = 5) */
	bool start_degraded;   /* --run: start even if members are missing */
	const struct raid_meta_ops *meta;
	void *meta_priv;
	void (*event)(void *arg); /* state change worth a dm event */
	void *event_arg;
	const char *name; /* for messages */
	/*
	 * A grow in progress (md's RESHAPE_ACTIVE), resumed at start: DISKS is the old member
	 * count, roles DISKS..RESHAPE_DISKS-1 are the new members; array sectors below
	 * RESHAPE_POS are in the new geometry, whose data areas start RESHAPE_HEADROOM sectors
	 * lower on every member.  0 = none.
	 */
	unsigned reshape_disks;
	uint64_t reshape_pos;
	uint64_t reshape_headroom;
};

struct raid_status {
	int level;
	unsigned disks;
	unsigned layout;
	uint64_t chunk;
	uint64_t array_sectors;
	uint64_t dev_sectors;
	unsigned degraded;
	bool failed;
	bool clean;
	enum raid_policy policy;
	enum raid_member_state state[RAID_MAX_DISKS];
	uint64_t recovery_offset[RAID_MAX_DISKS];
	unsigned nspares;
	enum raid_sync_action action;
	bool sync_pending; /* work is waiting to start (recovery onto a spare, a requested check) */
	uint64_t sync_done, sync_total; /* member sectors */

	double sync_speed;	   /* KiB/s over the last few seconds */
	uint64_t mismatch_cnt;	   /* sectors, as md counts */
	uint64_t repaired_cnt;	   /* sectors the last sync action rewrote after read errors */
	uint64_t corrected;	   /* sectors rewritten from redundancy after read errors */
	uint64_t journal_replayed; /* records replayed at start */
	uint64_t journal_skipped;  /* full-stripe writes that needed no record */
	uint64_t journal_flushes;  /* flushes the journal needed (array_int.h) */
	uint64_t bitmap_dirty;	   /* dirty bitmap bits */
	uint64_t bitmap_bits;
	uint64_t resync_offset; /* what a superblock should record: UINT64_MAX when clean */
	bool csum;
	uint64_t csum_errors; /* blocks whose checksum did not match */
	/* A grow in progress: DISKS above is already the new count. */
	bool reshaping;
	unsigned reshape_old_disks;
	uint64_t reshape_pos;	   /* array sectors safely in the new geometry (persist this) */
	uint64_t reshape_headroom; /* sectors the data areas move down */
	bool reshape_stalled;	   /* stopped by a member failure or an I/O error */
};

/*
 * The checksum log: one crc32c per 4 KiB block of a member's data area, kept on the member
 * itself at csum_offset: a header sector, then the table (see docs/raid.md).
 */
#define RAID_CSUM_BLOCK 8u	    /* sectors per checksummed block */
#define RAID_CSUM_MAGIC 0x53435342u /* "BSCS" */
/* Sectors the checksum log of a member with DEV_SECTORS data sectors occupies. */
uint64_t raid_csum_area_sectors(uint64_t dev_sectors);
/* Writes an empty checksum log (every block unknown) for array UUID. */
int raid_csum_format(struct bs_bdev *b, uint64_t offset, uint64_t dev_sectors,
		     const uint8_t uuid[16]);

/*
 * Builds and starts an array.  SPECS holds every member and spare; the bdevs stay owned by
 * the caller (a target), which closes them after raid_array_destroy().  Replays the journal, then
 * starts resync or recovery as the state requires.  On error returns -errno with one line in ERR.
 */
int raid_array_create(const struct raid_config *cfg, struct raid_member_spec *specs,
		      unsigned nspecs, struct raid_array **out, struct strbuf *err);
/* Stops background work and persists a clean state. */
void raid_array_destroy(struct raid_array *a);

/* A request in array bytes. */
int raid_array_submit(struct raid_array *a, struct bs_io *io);
uint64_t raid_array_sectors(struct raid_array *a);

void raid_array_status(struct raid_array *a, struct raid_status *st);
struct raid_member_info {
	struct bs_bdev *bdev;
	int role; /* -1: spare or faulty leftover */
	enum raid_member_state state;
	uint64_t recovery_offset;
};

/* Every device the array holds: roles first (bdev NULL when missing), then spares. */
unsigned raid_array_members(struct raid_array *a, struct raid_member_info *out, unsigned max);

/* The member's path or NULL (role index; spares after roles: disks + i). */
const char *raid_array_member_name(struct raid_array *a, unsigned idx);
struct bs_bdev *raid_array_member_bdev(struct raid_array *a, unsigned role);

/* Background work: check, repair, idle (stop), frozen; resync/recover are automatic. */
int raid_array_sync_action(struct raid_array *a, enum raid_sync_action act, struct strbuf *err);
/* Blocks until no sync action runs (or the array is destroyed). */
void raid_array_wait_idle(struct raid_array *a);
/* Pause and resume background work around a suspend. */
void raid_array_quiesce(struct raid_array *a, bool pause);

/*
 * Replaces OLD with NEW (an open handle on the same device) everywhere the array uses it,
 * waiting for I/O on OLD to finish: a reloaded table hands its own handles to a running
 * array before the previous table closes its handles.  Returns -ENOENT if OLD is not used.
 */
int raid_array_rebind(struct raid_array *a, struct bs_bdev *old, struct bs_bdev *new);

/* Member management (mdadm --fail / --remove / --add). Names match member paths. */
int raid_array_fail_member(struct raid_array *a, const char *name, struct strbuf *err);
/* Removes a faulty member or a spare; *out is its bdev, which the caller may now close. */
int raid_array_remove_member(struct raid_array *a, const char *name, struct bs_bdev **out,
			     struct strbuf *err);
/* Adds a spare (the caller keeps owning the bdev); rebuild starts if a role is empty. */
int raid_array_add_spare(struct raid_array *a, struct bs_bdev *b, uint64_t data_offset,
			 uint64_t data_sectors, uint64_t journal_offset, uint64_t csum_offset,
			 struct strbuf *err);

/*
 * Online grow of RAID4/5/6 onto NEW_DISKS members (mdadm --grow --raid-devices): the extra
 * roles are taken by spares, and every member's data moves HEADROOM sectors (a multiple of
 * the chunk) down, so no backup file is needed.  Progress is persisted through the meta
 * callbacks; a front end resumes an interrupted grow with raid_config.reshape_*.
 */
int raid_array_grow(struct raid_array *a, unsigned new_disks, uint64_t headroom,
		    struct strbuf *err);

/* Flushes members and persists the state as clean (idle arrays are marked clean). */
int raid_array_mark_clean(struct raid_array *a);

const char *raid_sync_action_name(enum raid_sync_action act);

#endif
