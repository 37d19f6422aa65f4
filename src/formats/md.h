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
};

/* Where a 1.x superblock of minor version MINOR lives on a member of DEV_SECTORS sectors. */
uint64_t md_sb_offset(int minor, uint64_t dev_sectors);

/*
 * Reads the superblock of a member: tries 1.2, 1.1, 1.0 and 0.90 in that order.  Returns 0,
 * -ENOENT when none is there (with *why), or -EINVAL with *why naming the bad field.
 */
int md_sb_read(struct bs_bdev *b, struct md_sb *sb, const char **why);
/* Writes a 1.x superblock at sb->super_offset with a fresh checksum; 0 or -errno. */
int md_sb_write(struct bs_bdev *b, const struct md_sb *sb);
/* Zeroes any md superblock on the member (the way mdadm --zero-superblock does). */
int md_sb_erase(struct bs_bdev *b);

/* Appends mdadm --examine style text for the member named NAME. */
void md_sb_examine(const struct md_sb *sb, const char *name, struct strbuf *out);
/* "ARRAY /dev/md/NAME metadata=1.2 UUID=... name=..." as mdadm -Ebsc prints. */
void md_sb_array_line(const struct md_sb *sb, struct strbuf *out);
/* mdadm's UUID text, four colon-separated 8-hex-digit groups. */
void md_uuid_format(const uint8_t uuid[16], char out[36]);
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
/* Reads the bitmap superblock at member sector OFFSET, checking it. */
int md_bitmap_sb_read(struct bs_bdev *b, uint64_t offset, struct md_bitmap_sb *bsb,
		      const char **why);
int md_bitmap_sb_write(struct bs_bdev *b, uint64_t offset, const struct md_bitmap_sb *bsb);
/*
 * Bits live right after the 256-byte bitmap superblock (bit i of byte j = chunk 8j+i).
 * Reads/writes NBITS bits (rounded to whole 512-byte sectors on disk).
 */
int md_bitmap_bits_read(struct bs_bdev *b, uint64_t offset, uint8_t *bits, uint64_t nbits);
int md_bitmap_bits_write(struct bs_bdev *b, uint64_t offset, const uint8_t *bits,
			 uint64_t first_byte, uint64_t nbytes);

#endif
