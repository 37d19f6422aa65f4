/*
 * integrity_sb.h - Linux dm-integrity metadata: the superblock (versions 1-5, as
 * integritysetup 2.6 and Linux 6.1 write them), the geometry it implies (journal sections,
 * interleaved tag and data areas), the journal (entries, commit ids, the scan and replay that
 * follow an unclean stop) and formatting.  Layout: formats/integrity_ondisk.h.
 *
 * Everything read from disk is checked before use: a superblock or journal that fails a
 * check is refused with one static reason.  The target (targets/integrity.c), the CLI
 * (`blkstack integrity`) and the fuzzer share this code.
 */
#ifndef BS_FORMATS_INTEGRITY_SB_H
#define BS_FORMATS_INTEGRITY_SB_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "engine/bdev.h"
#include "formats/integrity_hash.h"
#include "formats/integrity_ondisk.h"
#include "util/strbuf.h"

/* The superblock, host-endian. */
struct integrity_sb {
	uint8_t version;
	uint8_t log2_interleave_sectors;
	uint16_t tag_size;
	uint32_t journal_sections;
	uint64_t provided_data_sectors;
	uint32_t flags;
	uint8_t log2_sectors_per_block;
	uint8_t log2_blocks_per_bitmap_bit;
	uint64_t recalc_sector;
	uint8_t salt[SALT_SIZE];
};

/*
 * Decodes the first SB_STRUCT_SIZE bytes of BUF.  Returns 0; -ENOENT when the magic is not
 * there (not dm-integrity); -EINVAL with *why when the superblock is unusable (unknown
 * version, tag size out of range, no journal, ...).
 */
int integrity_sb_decode(const uint8_t *buf, struct integrity_sb *sb, const char **why);
/* Encodes into BUF (SB_SECTORS * 512 bytes, all rewritten). */
void integrity_sb_encode(const struct integrity_sb *sb, uint8_t *buf);
/* The version Linux writes for these flags and mode (sb_set_version). */
uint8_t integrity_sb_version(uint32_t flags, char mode, bool meta_dev);

/*
 * Reads and decodes the superblock at sector START of DEV.  *blank (may be NULL) tells
 * whether the whole superblock area is zero (a device never formatted).
 */
int integrity_sb_read(struct bs_bdev *dev, uint64_t start, struct integrity_sb *sb, bool *blank,
		      const char **why);
/* Writes the superblock with FUA; sets the version for MODE first. */
int integrity_sb_write(struct bs_bdev *dev, uint64_t start, struct integrity_sb *sb, char mode,
		       bool meta_dev);

/* What a superblock means on given devices. */
struct integrity_geom {
	/* inputs */
	bool meta_dev;		  /* tags on a separate metadata device */
	uint64_t start;		  /* sectors: the superblock's place on the metadata device */
	unsigned tag_size;	  /* bytes */
	unsigned log2_spb;	  /* log2 of 512-byte sectors per block */
	unsigned log2_interleave; /* 0 with a metadata device */
	uint32_t journal_sections;
	bool journal_mac;	      /* SB_FLAG_HAVE_JOURNAL_MAC */
	bool fixed_padding;	      /* SB_FLAG_FIXED_PADDING */
	uint64_t data_device_sectors; /* sizes of the devices */
	uint64_t meta_device_sectors; /* == data_device_sectors without a metadata device */
	unsigned log2_buffer_sectors; /* sizing of a metadata device's tag area */
	uint64_t provided_data_sectors;
	/* derived */
	unsigned spb;
	unsigned journal_entry_size; /* bytes */
	unsigned entries_per_sector;
	unsigned section_entries;
	unsigned section_sectors;
	uint32_t journal_entries;
	uint64_t initial_sectors; /* superblock and journal */
	uint64_t metadata_run;	  /* sectors of tags before each area's data */
};

/*
 * Fills the inputs of G from SB and the devices, and the journal's sizes; provided data
 * sectors are then computed by integrity_geom_fit() (or taken from SB).  -EINVAL with *why.
 */
int integrity_geom_init(struct integrity_geom *g, const struct integrity_sb *sb, bool meta_dev,
			uint64_t start, uint64_t data_device_sectors, uint64_t meta_device_sectors,
			unsigned log2_buffer_sectors, const char **why);
/* Checks that G->provided_data_sectors fits the devices (Linux's calculate_device_limits). */
int integrity_geom_limits(struct integrity_geom *g);
/*
 * The largest provided_data_sectors the devices can hold (Linux's get_provided_data_sectors),
 * stored in G; returns it, 0 when the device is too small.
 */
uint64_t integrity_geom_fit(struct integrity_geom *g);

/*
 * Where logical sector L (of the integrity device) lives: *data_sector on the data device,
 * *tag_off the byte offset of its block's tag on the metadata device, *left the sectors from
 * L to the end of its area (requests are split there).
 */
void integrity_geom_map(const struct integrity_geom *g, uint64_t l, uint64_t *data_sector,
			uint64_t *tag_off, uint64_t *left);

/*
 * log2 of the sectors covered by one bitmap bit for a requested SECTORS_PER_BIT (0: the
 * default), grown until the bitmap fits in the journal area, as Linux's constructor does.
 */
unsigned integrity_geom_log2_sectors_per_bit(const struct integrity_geom *g,
					     uint64_t sectors_per_bit);
/* Bytes of the in-memory/on-disk bitmap (whole BITMAP_BLOCK_SIZE blocks). */
uint64_t integrity_geom_bitmap_bytes(const struct integrity_geom *g, unsigned log2_sectors_per_bit);

/* ---- journal ----------------------------------------------------------------------------- */

/* Pointers into a journal image of all sections (section_sectors * journal_sections * 512). */
static inline uint8_t *ij_sector(const struct integrity_geom *g, uint8_t *j, unsigned section,
				 unsigned sector)
{
	return j + (((uint64_t)section * g->section_sectors + sector) << 9);
}

static inline uint8_t *ij_entry(const struct integrity_geom *g, uint8_t *j, unsigned section,
				unsigned n)
{
	return ij_sector(g, j, section, n % JOURNAL_BLOCK_SECTORS) +
	       (n / JOURNAL_BLOCK_SECTORS) * g->journal_entry_size;
}

static inline uint8_t *ij_data(const struct integrity_geom *g, uint8_t *j, unsigned section,
			       unsigned n)
{
	return ij_sector(g, j, section, JOURNAL_BLOCK_SECTORS + (n << g->log2_spb));
}

static inline uint64_t ij_commit_id(unsigned section, unsigned sector, unsigned seq)
{
	return COMMIT_ID_BASE(seq) ^ (((uint64_t)section << 32) ^ sector);
}

static inline uint64_t ij_get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline void ij_put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/* The commit id field of a journal sector. */
static inline uint64_t ij_sector_commit_id(const uint8_t *sector)
{
	return ij_get_le64(sector + JOURNAL_SECTOR_DATA);
}

static inline uint32_t ij_sector_hi(const uint8_t *e)
{
	uint32_t v;

	memcpy(&v, e + 4, 4);
	return le32toh(v);
}

static inline void ij_set_sector_hi(uint8_t *e, uint32_t v)
{
	v = htole32(v);
	memcpy(e + 4, &v, 4);
}

static inline bool ij_entry_unused(const uint8_t *e)
{
	return ij_sector_hi(e) == JOURNAL_ENTRY_UNUSED;
}

static inline bool ij_entry_inprogress(const uint8_t *e)
{
	return ij_sector_hi(e) == JOURNAL_ENTRY_INPROGRESS;
}

static inline void ij_entry_set_unused(uint8_t *e)
{
	ij_set_sector_hi(e, JOURNAL_ENTRY_UNUSED);
}

static inline void ij_entry_set_inprogress(uint8_t *e)
{
	ij_set_sector_hi(e, JOURNAL_ENTRY_INPROGRESS);
}

static inline uint64_t ij_entry_sector(const uint8_t *e)
{
	return ij_get_le64(e);
}

static inline void ij_entry_set_sector(uint8_t *e, uint64_t sector)
{
	ij_put_le64(e, sector);
}

static inline uint8_t *ij_entry_last_bytes(uint8_t *e, unsigned s)
{
	return e + JOURNAL_ENTRY_HEADER + 8 * s;
}
static inline uint8_t *ij_entry_tag(const struct integrity_geom *g, uint8_t *e)
{
	return e + JOURNAL_ENTRY_HEADER + 8 * g->spb;
}

/*
 * Puts one block into the journal image: DATA (spb sectors) into the entry's data sectors,
 * the last 8 bytes of each of its sectors into last_bytes[], TAG into the entry, then the
 * sector number (which makes the entry used).
 */
void ij_entry_fill(const struct integrity_geom *g, uint8_t *j, unsigned section, unsigned n,
		   uint64_t sector, const uint8_t *data, const uint8_t *tag);
/* Copies the block entry N holds out of the journal image (restoring its last bytes). */
void ij_entry_read(const struct integrity_geom *g, uint8_t *j, unsigned section, unsigned n,
		   uint8_t *out);
/* Puts the block's own last bytes back into the data sectors (before writing them out). */
void ij_entry_restore(const struct integrity_geom *g, uint8_t *j, unsigned section, unsigned n);

/* Empties sections [first, first+n) (mod journal_sections) of J for commit sequence SEQ. */
void integrity_journal_init(const struct integrity_geom *g, uint8_t *j, unsigned first, unsigned n,
			    unsigned seq);
/* Stamps commit ids into every sector of sections [first, first+n) for SEQ (wrap: SEQ+1). */
void integrity_journal_stamp(const struct integrity_geom *g, uint8_t *j, unsigned first, unsigned n,
			     unsigned seq);
/* Writes sections [first, first+n) (mod journal_sections) of J to disk (FLAGS: BS_IO_FUA). */
int integrity_journal_write(struct bs_bdev *meta, const struct integrity_geom *g, uint8_t *j,
			    unsigned first, unsigned n, unsigned flags);
/* Writes the whole journal empty for commit sequence SEQ (what formatting leaves), and flushes. */
int integrity_journal_write_empty(struct bs_bdev *meta, const struct integrity_geom *g,
				  unsigned seq);
int integrity_journal_read(struct bs_bdev *meta, const struct integrity_geom *g, uint8_t *j);

/* What a journal read at start-up holds (Linux's replay_journal analysis). */
struct integrity_journal_scan {
	bool empty;		 /* no used entry in the valid part */
	unsigned write_start;	 /* oldest section to replay */
	unsigned write_sections; /* sections with consistent commit ids from there */
	unsigned want_seq;	 /* commit sequence after the last valid section */
	unsigned last_used;
};

/* -EIO with *why when a commit id belongs to no sequence (the journal is then cleared). */
int integrity_journal_scan(const struct integrity_geom *g, uint8_t *j,
			   struct integrity_journal_scan *s, const char **why);

/*
 * Writes the scan's committed entries to their places (data and tags) and flushes.  Entries
 * whose tag does not match their data (with H), or whose sector is misaligned, are skipped and
 * counted in *bad; entries beyond the device are dropped.  Every entry ends unused in J.
 */
int integrity_journal_replay(struct bs_bdev *data, struct bs_bdev *meta,
			     const struct integrity_geom *g, uint8_t *j,
			     const struct integrity_journal_scan *s, const struct integrity_hash *h,
			     uint64_t *replayed, uint64_t *bad);

/*
 * The whole start-up sequence of a journal: read, scan, replay, then either continue the
 * ring (KEEP_RING: journal mode with the whole ring valid) or clear it on disk.  Returns
 * where new commits go (*section, *seq).  J must hold the whole journal.
 */
struct integrity_journal_state {
	unsigned section;
	unsigned seq;
	uint64_t replayed; /* blocks written back */
	uint64_t bad;	   /* entries refused */
	bool cleared;
	const char *note; /* why the journal was cleared, or NULL */
};
int integrity_journal_recover(struct bs_bdev *data, struct bs_bdev *meta,
			      const struct integrity_geom *g, uint8_t *j,
			      const struct integrity_hash *h, bool keep_ring, bool readonly,
			      struct integrity_journal_state *st, const char **why);

/* ---- formatting ---------------------------------------------------------------------------- */

struct integrity_format_params {
	const char *alg;	     /* Linux hash name */
	unsigned tag_size;	     /* 0: the digest size */
	unsigned sector_size;	     /* 512, 1024, 2048 or 4096 */
	uint64_t journal_sectors;    /* 0: Linux's default (device / 128, at most 64 MiB) */
	uint32_t interleave_sectors; /* 0: 32768 */
	unsigned buffer_sectors;     /* 0: 128 (metadata device sizing) */
	uint64_t sectors_per_bit;    /* 0: 32768 */
	bool fix_padding;
	bool fix_hmac;
	char mode; /* 'J', 'B', 'D' (the version depends on it) */
};

/*
 * A new superblock for these devices (Linux's initialize_superblock and the constructor's
 * bitmap sizing); SALT NULL picks a random salt.  Fills SB and G.  -EINVAL with *why.
 */
int integrity_sb_create(const struct integrity_format_params *p, bool meta_dev, uint64_t start,
			uint64_t data_device_sectors, uint64_t meta_device_sectors,
			const uint8_t *salt, struct integrity_sb *sb, struct integrity_geom *g,
			const char **why);

/*
 * Writes an empty journal and the superblock; with WIPE also zeroes the data area and writes
 * the tags of zero blocks (integritysetup's wipe), so every sector reads back as zeroes.
 */
int integrity_format_write(struct bs_bdev *data, struct bs_bdev *meta,
			   const struct integrity_geom *g, struct integrity_sb *sb,
			   const struct integrity_hash *h, bool wipe, char mode, const char **why);

/* `integritysetup dump` (2.6) text for SB read from PATH. */
void integrity_sb_dump(const struct integrity_sb *sb, const char *path, struct strbuf *out);

#endif
