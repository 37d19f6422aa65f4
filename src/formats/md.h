/*
 * md.h - Linux md (software RAID) on-disk metadata: superblocks v1.0/1.1/1.2 (read and
 * write) and 0.90 (read), and the internal write-intent bitmap.
 *
 * Layouts as in Linux include/uapi/linux/raid/md_p.h and drivers/md/md-bitmap.h; the values
 * here are host-endian.  Every field read from disk is checked before anything uses it: a
 * superblock that fails a check is refused with one reason.
 */
#ifndef BS_FORMATS_MD_H
#define BS_FORMATS_MD_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/bdev.h"
#include "util/strbuf.h"

#define MD_MAX_DEVS	384 /* dev_roles entries a 1.x superblock may carry */
#define MD_ROLE_SPARE	0xffff
#define MD_ROLE_FAULTY	0xfffe
#define MD_ROLE_JOURNAL 0xfffd
#define MD_MAX_SECTOR	UINT64_MAX /* resync_offset / recovery_offset: "done" */

/* feature_map bits (md_p.h) */
#define MD_FEATURE_BITMAP_OFFSET     1u
#define MD_FEATURE_RECOVERY_OFFSET   2u
#define MD_FEATURE_RESHAPE_ACTIVE    4u
#define MD_FEATURE_BAD_BLOCKS	     8u
#define MD_FEATURE_REPLACEMENT	     16u
#define MD_FEATURE_RESHAPE_BACKWARDS 32u
#define MD_FEATURE_NEW_OFFSET	     64u
#define MD_FEATURE_RECOVERY_BITMAP   128u
#define MD_FEATURE_CLUSTERED	     256u
#define MD_FEATURE_JOURNAL	     512u
#define MD_FEATURE_PPL		     1024u
#define MD_FEATURE_MULTIPLE_PPLS     2048u
#define MD_FEATURE_RAID0_LAYOUT	     4096u
#define MD_FEATURE_ALL		     8191u /* every bit md defines */

struct md_sb {
	int major; /* 1 or 0 */
	int minor; /* 1.x: 0, 1 or 2 (where the superblock sits); 0.90: 90 */
	uint8_t set_uuid[16];
	char set_name[33];     /* "host:name" as mdadm writes it */
	uint64_t ctime, utime; /* seconds (1.x keeps microseconds in the top bits: dropped) */
	int level;	       /* 0, 1, 4, 5, 6, 10; -1 linear; others refused by users */
	uint32_t layout;
	uint64_t size;	    /* sectors used on each member (md "size") */
	uint32_t chunksize; /* sectors */
	uint32_t raid_disks;
	uint32_t feature_map;
	/* this member */
	uint64_t data_offset; /* sectors from the start of the member */
	uint64_t data_size;
	uint64_t super_offset;
	uint64_t recovery_offset;
	uint32_t dev_number; /* index into dev_roles */
	uint32_t cnt_corrected_read;
	uint8_t device_uuid[16];
	uint8_t devflags;
	int32_t
	    bitmap_offset; /* sectors from the superblock (signed) when MD_FEATURE_BITMAP_OFFSET */
	/* reshape (MD_FEATURE_RESHAPE_ACTIVE) */
	int new_level;
	uint64_t reshape_position;
	int32_t delta_disks;
	uint32_t new_layout;
	uint32_t new_chunk;
	int64_t new_offset; /* MD_FEATURE_NEW_OFFSET: signed sectors relative to data_offset */
	/* array state */
	uint64_t events;
	uint64_t resync_offset; /* MD_MAX_SECTOR when clean */
	uint32_t max_dev;
	uint16_t dev_roles[MD_MAX_DEVS];
	/* 1.x bad block log: the area reserved for it (sectors, offset signed and relative to
	 * the superblock; 0/0 = none), and the block size shift.  Written back as read. */
	uint8_t bblog_shift;
	uint16_t bblog_size;
	int32_t bblog_offset;
	/* Filled by md_sb_read for md_sb_examine; md_sb_write ignores them. */
	uint64_t dev_sectors;	 /* size of the member the superblock was read from */
	uint32_t bitmap_sectors; /* internal bitmap size as mdadm counts it (whole 4 KiB), 0 = ? */
	/* 0.90 only (read-only format): what its examine output shows besides the above. */
	struct md_sb0_info {
		uint32_t patch_version, md_minor, nr_disks, state;
		uint32_t active_disks, working_disks, failed_disks, spare_disks;
		uint32_t sb_csum;
		struct md_sb0_disk {
			uint32_t number, major, minor, raid_disk, state;
		} disks[27], this_disk;
	} v0;
};

/* Where a 1.x superblock of minor version MINOR lives on a member of DEV_SECTORS sectors. */
uint64_t md_sb_offset(int minor, uint64_t dev_sectors);

/*
 * Reads the superblock of a member.  Every place one can live is looked at (1.2, 1.1, 1.0,
 * 0.90); of the valid ones the newest (ctime) wins, as with mdadm.  Returns 0, -ENOENT when
 * there is none (with *why), -EIO, or -EINVAL with *why naming the field that is wrong, or
 * -EOPNOTSUPP naming a feature blkstack cannot use (clustered, journal, reshape in progress,
 * bad blocks recorded, 0.91).  *why is a static string or a per-thread buffer that stays
 * valid until the next md_* call on the same thread.
 */
int md_sb_read(struct bs_bdev *b, struct md_sb *sb, const char **why);
/* As md_sb_read, but accepts every feature md defines (for examine): only structure checks. */
int md_sb_read_any(struct bs_bdev *b, struct md_sb *sb, const char **why);
/* NULL when blkstack may write to the array, else why it may only be read (PPL, replacement). */
const char *md_sb_readonly_reason(const struct md_sb *sb);
/* The single-superblock checks of md_sb_read for SB on a member of DEV_SECTORS; 0/-EINVAL. */
int md_sb_validate(const struct md_sb *sb, uint64_t dev_sectors, const char **why);
/*
 * Writes a 1.x superblock at sb->super_offset with a fresh checksum: 256 bytes plus two per
 * max_dev (0 = 384), padded to the block size, nothing else.  Refuses (-EINVAL) a superblock
 * md_sb_validate refuses or one not where its minor version puts it; 0 or -errno.
 */
int md_sb_write(struct bs_bdev *b, const struct md_sb *sb);
/*
 * Zeroes any md superblock on the member (the way mdadm --zero-superblock does): the first
 * block at each 1.x place that holds md's magic, and the 4 KiB 0.90 superblock.
 */
int md_sb_erase(struct bs_bdev *b);

/* Array size in sectors as the superblock describes it (0 for RAID0/linear: per member). */
uint64_t md_sb_array_sectors(const struct md_sb *sb);
/*
 * Appends `mdadm --examine` text (mdadm 4.2) for the member named NAME.  Times are local
 * time, as mdadm prints them.  Unprintable bytes of the name are shown as '?'.
 */
void md_sb_examine(const struct md_sb *sb, const char *name, struct strbuf *out);
/*
 * "ARRAY /dev/md/NAME  metadata=1.2 UUID=... name=HOST:NAME" (or "ARRAY /dev/mdN UUID=..."
 * for 0.90) and a newline, as `mdadm --examine --brief` prints for one member.  mdadm adds a
 * line "   spares=N" when N of the members it examined are spares; that is the caller's.
 */
void md_sb_array_line(const struct md_sb *sb, struct strbuf *out);
/*
 * mdadm's UUID text, four colon-separated 8-hex-digit groups: the 16 bytes in order.  For
 * 1.x that is set_uuid as stored; for 0.90 md_sb_read stores the four host-endian words
 * most significant byte first, so the text is mdadm's there too.
 */
void md_uuid_format(const uint8_t uuid[16], char out[36]);
/* Parses 32 hex digits with optional ':', '-', '.' or ' ' between them; 0 or -EINVAL. */
int md_uuid_parse(const char *s, uint8_t uuid[16]);

/* ---- the internal write-intent bitmap (md-bitmap.h) ---- */

#define MD_BITMAP_MAGIC 0x6d746962u /* "bitm" */

struct md_bitmap_sb {
	uint32_t version; /* 4 */
	uint8_t uuid[16];
	uint64_t events;
	uint64_t events_cleared;
	uint64_t sync_size; /* sectors covered (per member) */
	uint32_t state;
	uint32_t chunksize;    /* bytes per bit */
	uint32_t daemon_sleep; /* seconds */
	uint32_t write_behind;
	uint32_t sectors_reserved;
	uint32_t nodes;
};

/* Number of bits for SYNC_SIZE sectors at CHUNKSIZE bytes per bit. */
uint64_t md_bitmap_bits(uint64_t sync_size, uint32_t chunksize);
/*
 * Reads the bitmap superblock at member sector OFFSET, checking it on its own: magic,
 * version 3 or 4 (the same on little-endian hosts; 5 = clustered is refused), chunksize a
 * power of two of at least 512, daemon_sleep, write_behind, nodes, and that the bits fit in
 * the device.  0, -EIO, or -EINVAL with *why (as md_sb_read's).
 */
int md_bitmap_sb_read(struct bs_bdev *b, uint64_t offset, struct md_bitmap_sb *bsb,
		      const char **why);
/* The sync_size a bitmap of SB's array has: the array size for RAID10, else sb->size. */
uint64_t md_bitmap_sync_size(const struct md_sb *sb);
/*
 * Checks a bitmap against the superblock that points to it: same array UUID, sync_size of
 * this array, and superblock plus bits clear of the md superblock and of the data area.
 */
int md_bitmap_sb_check(const struct md_bitmap_sb *bsb, const struct md_sb *sb, const char **why);
/* Writes the bitmap superblock (version 0 = 4), keeping any bits that share its sector. */
int md_bitmap_sb_write(struct bs_bdev *b, uint64_t offset, const struct md_bitmap_sb *bsb);
/*
 * Bits live right after the 256-byte bitmap superblock (bit i of byte j = chunk 8j+i).
 * Reads NBITS bits; writes bytes FIRST_BYTE..FIRST_BYTE+NBYTES-1 of BITS (the whole bitmap
 * in memory), read-modify-writing the 512-byte sectors around them.
 */
int md_bitmap_bits_read(struct bs_bdev *b, uint64_t offset, uint8_t *bits, uint64_t nbits);
int md_bitmap_bits_write(struct bs_bdev *b, uint64_t offset, const uint8_t *bits,
			 uint64_t first_byte, uint64_t nbytes);

#endif
