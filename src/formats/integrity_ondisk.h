/*
 * integrity_ondisk.h - the on-disk layout of Linux dm-integrity, for the integrity format
 * code and the integrity target only.
 *
 * Names are those of the specification they come from:
 *   - Linux Documentation/admin-guide/device-mapper/dm-integrity.rst (the layout: superblock,
 *     journal, interleaved tag and data areas, the bitmap mode);
 *   - Linux drivers/md/dm-integrity.c (struct superblock, SB_FLAG_*, struct journal_entry,
 *     struct journal_sector, commit ids and the constants below), as of Linux 6.1, which
 *     integritysetup 2.6 formats through.
 * Everything on disk is little-endian.  Layout of a device without a separate metadata
 * device, in 512-byte sectors from the table's offset:
 *
 *   [0, SB_SECTORS)                          superblock (first 64 bytes used)
 *   [SB_SECTORS, initial_sectors)            journal: journal_sections sections, each of
 *                                            JOURNAL_BLOCK_SECTORS sectors of entries and
 *                                            then one data block per entry; in bitmap mode
 *                                            the same area holds the dirty bitmap
 *   then, repeated for every area:           metadata_run sectors of tags (one tag per
 *                                            block, packed), then 2^log2_interleave_sectors
 *                                            sectors of data
 */
#ifndef BS_FORMATS_INTEGRITY_ONDISK_H
#define BS_FORMATS_INTEGRITY_ONDISK_H

#include <stddef.h>
#include <stdint.h>

#define SB_MAGIC	      "integrt" /* 8 bytes with the terminating NUL */
#define SB_VERSION_1	      1
#define SB_VERSION_2	      2 /* meta_device or RECALCULATING */
#define SB_VERSION_3	      3 /* bitmap mode or DIRTY_BITMAP */
#define SB_VERSION_4	      4 /* FIXED_PADDING */
#define SB_VERSION_5	      5 /* FIXED_HMAC */
#define SB_VERSION_6	      6 /* INLINE (Linux 6.11; not supported here) */
#define SB_SECTORS	      8
#define MAX_SECTORS_PER_BLOCK 8

/* struct superblock: offsets of its fields (64 bytes). */
#define SBO_MAGIC		       0  /* u8[8] */
#define SBO_VERSION		       8  /* u8 */
#define SBO_LOG2_INTERLEAVE_SECTORS    9  /* u8 */
#define SBO_INTEGRITY_TAG_SIZE	       10 /* le16 */
#define SBO_JOURNAL_SECTIONS	       12 /* le32 */
#define SBO_PROVIDED_DATA_SECTORS      16 /* le64 */
#define SBO_FLAGS		       24 /* le32 */
#define SBO_LOG2_SECTORS_PER_BLOCK     28 /* u8 */
#define SBO_LOG2_BLOCKS_PER_BITMAP_BIT 29 /* u8 */
#define SBO_RECALC_SECTOR	       32 /* le64 (pad[2] before it) */
#define SBO_SALT		       48 /* u8[SALT_SIZE] (pad2[8] before it) */
#define SB_STRUCT_SIZE		       64

#define SB_FLAG_HAVE_JOURNAL_MAC 0x1
#define SB_FLAG_RECALCULATING	 0x2
#define SB_FLAG_DIRTY_BITMAP	 0x4
#define SB_FLAG_FIXED_PADDING	 0x8
#define SB_FLAG_FIXED_HMAC	 0x10
#define SB_FLAG_INLINE		 0x20

#define SALT_SIZE 16

/*
 * Journal.  A journal entry: le64 sector (its high half is JOURNAL_ENTRY_UNUSED or
 * JOURNAL_ENTRY_INPROGRESS when the entry holds nothing), le64 last_bytes[sectors_per_block]
 * (the last 8 bytes of each data sector, whose place in the journal copy holds the commit id),
 * then the tag; rounded up to JOURNAL_ENTRY_ROUNDUP.  Entry n of a section lives in entry
 * sector n % JOURNAL_BLOCK_SECTORS, slot n / JOURNAL_BLOCK_SECTORS.
 */
#define JOURNAL_ENTRY_ROUNDUP	 8
#define JOURNAL_MAC_PER_SECTOR	 8
#define JOURNAL_BLOCK_SECTORS	 8
#define JOURNAL_SECTOR_DATA	 (512 - 8) /* struct journal_sector: then a le64 commit_id */
#define JOURNAL_MAC_SIZE	 (JOURNAL_MAC_PER_SECTOR * JOURNAL_BLOCK_SECTORS)
#define JOURNAL_ENTRY_UNUSED	 0xffffffffu /* sector_hi of an unused entry */
#define JOURNAL_ENTRY_INPROGRESS 0xfffffffeu /* sector_hi while being filled (memory only) */
#define JOURNAL_ENTRY_HEADER	 8	     /* the le64 sector before last_bytes[] */
#define MAX_TAG_SIZE                                                                               \
	(JOURNAL_SECTOR_DATA - JOURNAL_MAC_PER_SECTOR -                                            \
	 (JOURNAL_ENTRY_HEADER + 8 * MAX_SECTORS_PER_BLOCK))

/*
 * Commit ids: each pass over the journal ring uses the next of N_COMMIT_IDS sequence
 * numbers; the id stored in sector j of section i is commit_ids[seq] ^ ((i << 32) ^ j).
 */
#define N_COMMIT_IDS 4
/* commit_ids[seq] of dm-integrity.c: 0x1111111111111111, 0x2222..., 0x3333..., 0x4444... */
#define COMMIT_ID_BASE(seq) (0x1111111111111111ull * ((uint64_t)(seq) + 1))

#define METADATA_PADDING_SECTORS 8
#define DISCARD_FILLER		 0xf6
#define BITMAP_BLOCK_SIZE	 4096

/* Defaults of the kernel target (dm-integrity.c). */
#define DEFAULT_INTERLEAVE_SECTORS     32768
#define DEFAULT_JOURNAL_SIZE_FACTOR    7
#define DEFAULT_SECTORS_PER_BITMAP_BIT 32768
#define DEFAULT_BUFFER_SECTORS	       128
#define DEFAULT_JOURNAL_WATERMARK      50
#define DEFAULT_SYNC_MSEC	       10000
#define DEFAULT_MAX_JOURNAL_SECTORS    131072
#define MIN_LOG2_INTERLEAVE_SECTORS    3
#define MAX_LOG2_INTERLEAVE_SECTORS    31
#define DEFAULT_BITMAP_FLUSH_MSEC      10000
#define RECALC_WRITE_SUPER	       16

#endif
