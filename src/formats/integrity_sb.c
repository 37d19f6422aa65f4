/*
 * integrity_sb.c - dm-integrity superblock, geometry, journal and formatting.  See
 * integrity_sb.h; the algorithms are those dm-integrity.rst and dm-integrity.c document.
 */
#include "formats/integrity_sb.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/log.h"

/* Bytes of journal written or of tags computed per I/O when formatting and replaying. */
#define IO_CHUNK (1u << 20)

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static unsigned fls64_index(uint64_t x) /* index of the highest set bit; x != 0 */
{
	return 63 - (unsigned)__builtin_clzll(x);
}

/* ---- superblock --------------------------------------------------------------------------- */

int integrity_sb_decode(const uint8_t *buf, struct integrity_sb *sb, const char **why)
{
	memset(sb, 0, sizeof(*sb));
	if (memcmp(buf + SBO_MAGIC, SB_MAGIC, 8)) {
		*why = "no dm-integrity superblock (magic \"integrt\" not found)";
		return -ENOENT;
	}
	sb->version = buf[SBO_VERSION];
	sb->log2_interleave_sectors = buf[SBO_LOG2_INTERLEAVE_SECTORS];
	sb->tag_size =
	    (uint16_t)(buf[SBO_INTEGRITY_TAG_SIZE] | buf[SBO_INTEGRITY_TAG_SIZE + 1] << 8);
	sb->journal_sections = get_le32(buf + SBO_JOURNAL_SECTIONS);
	sb->provided_data_sectors = ij_get_le64(buf + SBO_PROVIDED_DATA_SECTORS);
	sb->flags = get_le32(buf + SBO_FLAGS);
	sb->log2_sectors_per_block = buf[SBO_LOG2_SECTORS_PER_BLOCK];
	sb->log2_blocks_per_bitmap_bit = buf[SBO_LOG2_BLOCKS_PER_BITMAP_BIT];
	sb->recalc_sector = ij_get_le64(buf + SBO_RECALC_SECTOR);
	memcpy(sb->salt, buf + SBO_SALT, SALT_SIZE);

	if (sb->version == SB_VERSION_6 || (sb->flags & SB_FLAG_INLINE)) {
		*why = "superblock of the inline mode (version 6) is not supported";
		return -EINVAL;
	}
	if (sb->version < SB_VERSION_1 || sb->version > SB_VERSION_5) {
		*why = "unknown superblock version";
		return -EINVAL;
	}
	if (sb->tag_size == 0 || sb->tag_size > MAX_TAG_SIZE) {
		*why = "invalid tag size in the superblock";
		return -EINVAL;
	}
	if (sb->log2_sectors_per_block > 3) {
		*why = "invalid block size in the superblock";
		return -EINVAL;
	}
	if (sb->journal_sections == 0) {
		*why = "corrupted superblock: journal_sections is 0";
		return -EINVAL;
	}
	if (sb->log2_interleave_sectors > MAX_LOG2_INTERLEAVE_SECTORS) {
		*why = "invalid interleave_sectors in the superblock";
		return -EINVAL;
	}
	return 0;
}

void integrity_sb_encode(const struct integrity_sb *sb, uint8_t *buf)
{
	memset(buf, 0, SB_SECTORS * 512);
	memcpy(buf + SBO_MAGIC, SB_MAGIC, 8);
	buf[SBO_VERSION] = sb->version;
	buf[SBO_LOG2_INTERLEAVE_SECTORS] = sb->log2_interleave_sectors;
	buf[SBO_INTEGRITY_TAG_SIZE] = (uint8_t)sb->tag_size;
	buf[SBO_INTEGRITY_TAG_SIZE + 1] = (uint8_t)(sb->tag_size >> 8);
	put_le32(buf + SBO_JOURNAL_SECTIONS, sb->journal_sections);
	ij_put_le64(buf + SBO_PROVIDED_DATA_SECTORS, sb->provided_data_sectors);
	put_le32(buf + SBO_FLAGS, sb->flags);
	buf[SBO_LOG2_SECTORS_PER_BLOCK] = sb->log2_sectors_per_block;
	buf[SBO_LOG2_BLOCKS_PER_BITMAP_BIT] = sb->log2_blocks_per_bitmap_bit;
	ij_put_le64(buf + SBO_RECALC_SECTOR, sb->recalc_sector);
	memcpy(buf + SBO_SALT, sb->salt, SALT_SIZE);
}

uint8_t integrity_sb_version(uint32_t flags, char mode, bool meta_dev)
{
	if (flags & SB_FLAG_FIXED_HMAC)
		return SB_VERSION_5;
	if (flags & SB_FLAG_FIXED_PADDING)
		return SB_VERSION_4;
	if (mode == 'B' || (flags & SB_FLAG_DIRTY_BITMAP))
		return SB_VERSION_3;
	if (meta_dev || (flags & SB_FLAG_RECALCULATING))
		return SB_VERSION_2;
	return SB_VERSION_1;
}

int integrity_sb_read(struct bs_bdev *dev, uint64_t start, struct integrity_sb *sb, bool *blank,
		      const char **why)
{
	uint8_t *buf = malloc(SB_SECTORS * 512);
	int r;

	if (!buf) {
		*why = "out of memory";
		return -ENOMEM;
	}
	if (blank)
		*blank = false;
	if (start > (UINT64_MAX >> 9) - SB_SECTORS ||
	    bs_bdev_size(dev) < ((start + SB_SECTORS) << 9)) {
		free(buf);
		*why = "device too small for a dm-integrity superblock";
		return -EINVAL;
	}
	r = bs_bdev_read(dev, buf, SB_SECTORS * 512, start << 9);
	if (r) {
		free(buf);
		*why = "cannot read the superblock";
		return r;
	}
	r = integrity_sb_decode(buf, sb, why);
	if (r == -ENOENT && blank) {
		*blank = true;
		for (unsigned i = 0; i < SB_SECTORS * 512; i++)
			if (buf[i]) {
				*blank = false;
				break;
			}
	}
	free(buf);
	return r;
}

int integrity_sb_write(struct bs_bdev *dev, uint64_t start, struct integrity_sb *sb, char mode,
		       bool meta_dev)
{
	uint8_t *buf = malloc(SB_SECTORS * 512);
	int r;

	if (!buf)
		return -ENOMEM;
	sb->version = integrity_sb_version(sb->flags, mode, meta_dev);
	integrity_sb_encode(sb, buf);
	r = bs_bdev_write(dev, buf, SB_SECTORS * 512, start << 9, BS_IO_FUA);
	free(buf);
	return r;
}

void integrity_sb_dump(const struct integrity_sb *sb, const char *path, struct strbuf *out)
{
	sb_printf(out, "Info for integrity device %s.\n", path);
	sb_printf(out, "superblock_version %d\n", sb->version);
	sb_printf(out, "log2_interleave_sectors %d\n", sb->log2_interleave_sectors);
	sb_printf(out, "integrity_tag_size %u\n", sb->tag_size);
	sb_printf(out, "journal_sections %u\n", sb->journal_sections);
	sb_printf(out, "provided_data_sectors %llu\n",
		  (unsigned long long)sb->provided_data_sectors);
	sb_printf(out, "sector_size %u\n", 512u << sb->log2_sectors_per_block);
	if (sb->version >= SB_VERSION_2 && (sb->flags & SB_FLAG_RECALCULATING))
		sb_printf(out, "recalc_sector %llu\n", (unsigned long long)sb->recalc_sector);
	sb_printf(out, "log2_blocks_per_bitmap %u\n", sb->log2_blocks_per_bitmap_bit);
	sb_printf(out, "flags %s%s%s%s%s\n",
		  sb->flags & SB_FLAG_HAVE_JOURNAL_MAC ? "have_journal_mac " : "",
		  sb->flags & SB_FLAG_RECALCULATING ? "recalculating " : "",
		  sb->flags & SB_FLAG_DIRTY_BITMAP ? "dirty_bitmap " : "",
		  sb->flags & SB_FLAG_FIXED_PADDING ? "fix_padding " : "",
		  sb->flags & SB_FLAG_FIXED_HMAC ? "fix_hmac " : "");
}

/* ---- geometry ----------------------------------------------------------------------------- */

static int section_sizes(struct integrity_geom *g, const char **why)
{
	unsigned space = JOURNAL_SECTOR_DATA - (g->journal_mac ? JOURNAL_MAC_PER_SECTOR : 0);
	uint64_t entries;

	g->spb = 1u << g->log2_spb;
	g->journal_entry_size =
	    (JOURNAL_ENTRY_HEADER + 8 * g->spb + g->tag_size + JOURNAL_ENTRY_ROUNDUP - 1) &
	    ~(unsigned)(JOURNAL_ENTRY_ROUNDUP - 1);
	g->entries_per_sector = space / g->journal_entry_size;
	if (!g->entries_per_sector) {
		*why = "tag size too big for the journal";
		return -EINVAL;
	}
	g->section_entries = g->entries_per_sector * JOURNAL_BLOCK_SECTORS;
	g->section_sectors = (g->section_entries << g->log2_spb) + JOURNAL_BLOCK_SECTORS;
	entries = (uint64_t)g->section_entries * g->journal_sections;
	if (entries > UINT32_MAX) {
		*why = "journal too big";
		return -EINVAL;
	}
	g->journal_entries = (uint32_t)entries;
	return 0;
}

int integrity_geom_init(struct integrity_geom *g, const struct integrity_sb *sb, bool meta_dev,
			uint64_t start, uint64_t data_device_sectors, uint64_t meta_device_sectors,
			unsigned log2_buffer_sectors, const char **why)
{
	memset(g, 0, sizeof(*g));
	g->meta_dev = meta_dev;
	g->start = start;
	g->tag_size = sb->tag_size;
	g->log2_spb = sb->log2_sectors_per_block;
	g->log2_interleave = sb->log2_interleave_sectors;
	g->journal_sections = sb->journal_sections;
	g->journal_mac = sb->flags & SB_FLAG_HAVE_JOURNAL_MAC;
	g->fixed_padding = sb->flags & SB_FLAG_FIXED_PADDING;
	g->data_device_sectors = data_device_sectors;
	g->meta_device_sectors = meta_dev ? meta_device_sectors : data_device_sectors;
	g->log2_buffer_sectors = log2_buffer_sectors;
	g->provided_data_sectors = sb->provided_data_sectors;
	if (g->tag_size == 0 || g->tag_size > MAX_TAG_SIZE || g->log2_spb > 3) {
		*why = "invalid tag or block size";
		return -EINVAL;
	}
	if (!meta_dev && (g->log2_interleave < MIN_LOG2_INTERLEAVE_SECTORS ||
			  g->log2_interleave > MAX_LOG2_INTERLEAVE_SECTORS)) {
		*why = "invalid interleave_sectors in the superblock";
		return -EINVAL;
	}
	if (meta_dev && g->log2_interleave) {
		*why = "invalid interleave_sectors in the superblock (metadata device)";
		return -EINVAL;
	}
	if (start > (UINT64_MAX >> 10)) {
		*why = "offset too big";
		return -EINVAL;
	}
	return section_sizes(g, why);
}

static void locate(const struct integrity_geom *g, uint64_t l, uint64_t *area, uint64_t *offset)
{
	if (!g->meta_dev) {
		*area = l >> g->log2_interleave;
		*offset = l & ((1ull << g->log2_interleave) - 1);
	} else {
		*area = 0;
		*offset = l;
	}
}

static uint64_t data_sector(const struct integrity_geom *g, uint64_t area, uint64_t offset)
{
	if (g->meta_dev)
		return offset;
	return (area << g->log2_interleave) + (area + 1) * g->metadata_run + g->initial_sectors +
	       offset + g->start;
}

int integrity_geom_limits(struct integrity_geom *g)
{
	uint64_t initial = SB_SECTORS + (uint64_t)g->section_sectors * g->journal_sections;

	if (initial + METADATA_PADDING_SECTORS >= g->meta_device_sectors || initial > UINT32_MAX)
		return -EINVAL;
	g->initial_sectors = initial;
	if (!g->meta_dev) {
		uint64_t pad = g->fixed_padding ? (uint64_t)METADATA_PADDING_SECTORS << 9
						: (uint64_t)512 << METADATA_PADDING_SECTORS;
		uint64_t bytes = (uint64_t)g->tag_size << (g->log2_interleave - g->log2_spb);
		uint64_t area, offset, last;

		g->metadata_run = ((bytes + pad - 1) / pad * pad) >> 9;
		if (!g->provided_data_sectors)
			return -EINVAL;
		/* the data sector of the last provided sector, with overflow in mind */
		locate(g, g->provided_data_sectors - 1, &area, &offset);
		if (area > (UINT64_MAX >> 1) / ((1ull << g->log2_interleave) + g->metadata_run + 1))
			return -EINVAL;
		last = data_sector(g, area, offset);
		if (last < g->start || last >= g->meta_device_sectors)
			return -EINVAL;
	} else {
		uint64_t bsz = 1ull << (g->log2_buffer_sectors + 9);
		uint64_t blocks = g->provided_data_sectors >> g->log2_spb;
		uint64_t meta;

		if (blocks > UINT64_MAX / 512 / g->tag_size)
			return -EINVAL;
		meta = ((blocks * g->tag_size + bsz - 1) / bsz) << g->log2_buffer_sectors;
		/* (Linux leaves out the offset here; the tags must fit after it too) */
		if (initial + meta < initial || g->start + initial + meta > g->meta_device_sectors)
			return -EINVAL;
		g->metadata_run = 1;
	}
	return 0;
}

uint64_t integrity_geom_fit(struct integrity_geom *g)
{
	if (!g->meta_dev) {
		uint64_t provided = 0;

		if (!g->meta_device_sectors)
			return g->provided_data_sectors = 0;
		for (int bit = (int)fls64_index(g->meta_device_sectors); bit >= 3; bit--) {
			uint64_t prev = provided;

			g->provided_data_sectors = provided | (1ull << bit);
			if (integrity_geom_limits(g))
				g->provided_data_sectors = prev;
			provided = g->provided_data_sectors;
		}
		g->provided_data_sectors = provided;
	} else {
		g->provided_data_sectors = g->data_device_sectors & ~(uint64_t)(g->spb - 1);
	}
	if (g->provided_data_sectors && integrity_geom_limits(g))
		g->provided_data_sectors = 0;
	return g->provided_data_sectors;
}

void integrity_geom_map(const struct integrity_geom *g, uint64_t l, uint64_t *dsec,
			uint64_t *tag_off, uint64_t *left)
{
	uint64_t area, offset, ms;

	locate(g, l, &area, &offset);
	*dsec = data_sector(g, area, offset);
	if (!g->meta_dev) {
		ms = (area << g->log2_interleave) + area * g->metadata_run;
		*left = (1ull << g->log2_interleave) - offset;
	} else {
		ms = 0;
		*left = g->provided_data_sectors - l;
	}
	*tag_off =
	    ((g->start + g->initial_sectors + ms) << 9) + (offset >> g->log2_spb) * g->tag_size;
	if (l + *left > g->provided_data_sectors)
		*left = g->provided_data_sectors - l;
}

unsigned integrity_geom_log2_sectors_per_bit(const struct integrity_geom *g,
					     uint64_t sectors_per_bit)
{
	unsigned l = sectors_per_bit ? fls64_index(sectors_per_bit)
				     : fls64_index(DEFAULT_SECTORS_PER_BITMAP_BIT);
	uint64_t bits = ((uint64_t)g->section_sectors * g->journal_sections) << (9 + 3);

	if (l < g->log2_spb)
		l = g->log2_spb;
	if (bits > UINT32_MAX)
		bits = UINT32_MAX;
	if (bits)
		while (l < 63 && bits < (g->provided_data_sectors + (1ull << l) - 1) >> l)
			l++;
	return l;
}

uint64_t integrity_geom_bitmap_bytes(const struct integrity_geom *g, unsigned log2_sectors_per_bit)
{
	uint64_t blocks = g->provided_data_sectors >> g->log2_spb;
	unsigned lb = log2_sectors_per_bit - g->log2_spb;
	uint64_t bits = (blocks + (1ull << lb) - 1) >> lb;
	uint64_t nblocks = (bits + BITMAP_BLOCK_SIZE * 8 - 1) / (BITMAP_BLOCK_SIZE * 8);

	return nblocks * BITMAP_BLOCK_SIZE;
}

/* ---- journal entries ----------------------------------------------------------------------- */

void ij_entry_fill(const struct integrity_geom *g, uint8_t *j, unsigned section, unsigned n,
		   uint64_t sector, const uint8_t *data, const uint8_t *tag)
{
	uint8_t *e = ij_entry(g, j, section, n);
	uint8_t *d = ij_data(g, j, section, n);

	memcpy(d, data, (size_t)g->spb << 9);
	for (unsigned s = 0; s < g->spb; s++)
		memcpy(ij_entry_last_bytes(e, s), d + (s << 9) + JOURNAL_SECTOR_DATA, 8);
	memcpy(ij_entry_tag(g, e), tag, g->tag_size);
	ij_entry_set_sector(e, sector);
}

void ij_entry_read(const struct integrity_geom *g, uint8_t *j, unsigned section, unsigned n,
		   uint8_t *out)
{
	uint8_t *e = ij_entry(g, j, section, n);
	const uint8_t *d = ij_data(g, j, section, n);

	for (unsigned s = 0; s < g->spb; s++) {
		memcpy(out + (s << 9), d + (s << 9), JOURNAL_SECTOR_DATA);
		memcpy(out + (s << 9) + JOURNAL_SECTOR_DATA, ij_entry_last_bytes(e, s), 8);
	}
}

void ij_entry_restore(const struct integrity_geom *g, uint8_t *j, unsigned section, unsigned n)
{
	uint8_t *e = ij_entry(g, j, section, n);
	uint8_t *d = ij_data(g, j, section, n);

	for (unsigned s = 0; s < g->spb; s++)
		memcpy(d + (s << 9) + JOURNAL_SECTOR_DATA, ij_entry_last_bytes(e, s), 8);
}

void integrity_journal_init(const struct integrity_geom *g, uint8_t *j, unsigned first, unsigned n,
			    unsigned seq)
{
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (first + k) % g->journal_sections;

		for (unsigned s = 0; s < g->section_sectors; s++) {
			uint8_t *p = ij_sector(g, j, i, s);

			memset(p, 0, JOURNAL_SECTOR_DATA);
			ij_put_le64(p + JOURNAL_SECTOR_DATA, ij_commit_id(i, s, seq));
		}
		for (unsigned e = 0; e < g->section_entries; e++)
			ij_entry_set_unused(ij_entry(g, j, i, e));
	}
}

void integrity_journal_stamp(const struct integrity_geom *g, uint8_t *j, unsigned first, unsigned n,
			     unsigned seq)
{
	unsigned i = first;

	for (unsigned k = 0; k < n; k++) {
		for (unsigned s = 0; s < g->section_sectors; s++)
			ij_put_le64(ij_sector(g, j, i, s) + JOURNAL_SECTOR_DATA,
				    ij_commit_id(i, s, seq));
		if (++i >= g->journal_sections) {
			i = 0;
			seq = (seq + 1) % N_COMMIT_IDS;
		}
	}
}

static int write_sections(struct bs_bdev *meta, const struct integrity_geom *g, uint8_t *j,
			  unsigned first, unsigned n, unsigned flags)
{
	uint64_t off = (g->start + SB_SECTORS + (uint64_t)first * g->section_sectors) << 9;

	return bs_bdev_write(meta, ij_sector(g, j, first, 0),
			     ((uint64_t)n * g->section_sectors) << 9, off, flags);
}

int integrity_journal_write(struct bs_bdev *meta, const struct integrity_geom *g, uint8_t *j,
			    unsigned first, unsigned n, unsigned flags)
{
	unsigned to_end = g->journal_sections - first;
	int r;

	if (!n)
		return 0;
	if (n <= to_end)
		return write_sections(meta, g, j, first, n, flags);
	r = write_sections(meta, g, j, first, to_end, flags);
	return r ? r : write_sections(meta, g, j, 0, n - to_end, flags);
}

int integrity_journal_read(struct bs_bdev *meta, const struct integrity_geom *g, uint8_t *j)
{
	return bs_bdev_read(meta, j, ((uint64_t)g->journal_sections * g->section_sectors) << 9,
			    (g->start + SB_SECTORS) << 9);
}

static unsigned prev_seq(unsigned s)
{
	return (s + N_COMMIT_IDS - 1) % N_COMMIT_IDS;
}

static unsigned next_seq(unsigned s)
{
	return (s + 1) % N_COMMIT_IDS;
}

int integrity_journal_scan(const struct integrity_geom *g, uint8_t *j,
			   struct integrity_journal_scan *out, const char **why)
{
	bool used[N_COMMIT_IDS] = {false};
	unsigned max_section[N_COMMIT_IDS] = {0};
	unsigned unused, last_used, want, start, n, i;
	bool empty = true;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < g->journal_sections; i++) {
		for (unsigned s = 0; s < g->section_sectors; s++) {
			uint64_t id = ij_sector_commit_id(ij_sector(g, j, i, s));
			unsigned k;

			for (k = 0; k < N_COMMIT_IDS; k++)
				if (id == ij_commit_id(i, s, k))
					break;
			if (k == N_COMMIT_IDS) {
				*why = "journal commit id matches no sequence";
				return -EIO;
			}
			used[k] = true;
			max_section[k] = i;
		}
		for (unsigned e = 0; empty && e < g->section_entries; e++)
			if (!ij_entry_unused(ij_entry(g, j, i, e)))
				empty = false;
	}
	if (!used[N_COMMIT_IDS - 1]) {
		unused = N_COMMIT_IDS - 1;
		while (unused && !used[unused - 1])
			unused--;
	} else {
		for (unused = 0; unused < N_COMMIT_IDS; unused++)
			if (!used[unused])
				break;
		if (unused == N_COMMIT_IDS) {
			*why = "journal uses every commit sequence";
			return -EIO;
		}
	}
	last_used = prev_seq(unused);
	want = prev_seq(last_used);
	if (!used[want] && used[prev_seq(want)])
		empty = true;
	start = max_section[last_used] + 1;
	if (start >= g->journal_sections) {
		want = next_seq(want);
		start -= g->journal_sections;
	}
	out->write_start = start;
	out->last_used = last_used;
	i = start;
	for (n = 0; n < g->journal_sections; n++) {
		unsigned s;

		for (s = 0; s < g->section_sectors; s++)
			if (ij_sector_commit_id(ij_sector(g, j, i, s)) != ij_commit_id(i, s, want))
				break;
		if (s < g->section_sectors)
			break; /* torn by a crash during a commit: not replayed */
		if (++i >= g->journal_sections) {
			i = 0;
			want = next_seq(want);
		}
	}
	out->write_sections = n;
	out->want_seq = want;
	out->empty = empty;
	return 0;
}

/* Writes the blocks of entries [a, b) of SECTION (consecutive places) and their tags. */
static int replay_run(struct bs_bdev *data, struct bs_bdev *meta, const struct integrity_geom *g,
		      uint8_t *j, unsigned section, unsigned a, unsigned b, uint8_t *tags)
{
	uint64_t sector = ij_entry_sector(ij_entry(g, j, section, a));
	uint64_t dsec, toff, left;
	int r;

	integrity_geom_map(g, sector, &dsec, &toff, &left);
	for (unsigned k = a; k < b; k++)
		memcpy(tags + (size_t)(k - a) * g->tag_size,
		       ij_entry_tag(g, ij_entry(g, j, section, k)), g->tag_size);
	r = bs_bdev_write(data, ij_data(g, j, section, a), (uint64_t)(b - a) << (g->log2_spb + 9),
			  dsec << 9, 0);
	if (!r)
		r = bs_bdev_write(meta, tags, (uint64_t)(b - a) * g->tag_size, toff, 0);
	return r;
}

int integrity_journal_replay(struct bs_bdev *data, struct bs_bdev *meta,
			     const struct integrity_geom *g, uint8_t *j,
			     const struct integrity_journal_scan *s, const struct integrity_hash *h,
			     uint64_t *replayed, uint64_t *bad)
{
	uint8_t tag[INTEGRITY_HASH_MAX_DIGEST > MAX_TAG_SIZE ? INTEGRITY_HASH_MAX_DIGEST
							     : MAX_TAG_SIZE];
	uint8_t *tags = malloc((size_t)g->section_entries * g->tag_size);
	unsigned i = s->write_start;
	int r = 0;

	if (!tags)
		return -ENOMEM;
	for (unsigned n = 0; n < s->write_sections && !r; n++) {
		unsigned run = 0, run_len = 0;
		uint64_t next_sector = 0, run_area_left = 0;

		for (unsigned e = 0; e <= g->section_entries && !r; e++) {
			uint8_t *ent = e < g->section_entries ? ij_entry(g, j, i, e) : NULL;
			uint64_t sector = 0;
			bool ok = false;

			if (ent && !ij_entry_unused(ent)) {
				sector = ij_entry_sector(ent);
				if (sector & (g->spb - 1)) {
					(*bad)++;
				} else if (sector < g->provided_data_sectors) {
					ij_entry_restore(g, j, i, e);
					ok = true;
					if (h) {
						integrity_hash_tags(h, sector, g->spb,
								    ij_data(g, j, i, e), 1, tag,
								    g->tag_size);
						if (memcmp(tag, ij_entry_tag(g, ent),
							   g->tag_size)) {
							(*bad)++;
							ok = false;
						}
					}
				}
			}
			/* close the run when this entry does not continue it */
			if (run_len && (!ok || sector != next_sector || run_area_left == 0)) {
				r = replay_run(data, meta, g, j, i, run, run + run_len, tags);
				*replayed += run_len;
				run_len = 0;
			}
			if (ok && !r) {
				if (!run_len) {
					uint64_t d, t;

					run = e;
					integrity_geom_map(g, sector, &d, &t, &run_area_left);
				}
				run_len++;
				next_sector = sector + g->spb;
				run_area_left -= g->spb;
			}
		}
		for (unsigned e = 0; e < g->section_entries; e++)
			ij_entry_set_unused(ij_entry(g, j, i, e));
		if (++i >= g->journal_sections)
			i = 0;
	}
	free(tags);
	if (!r)
		r = bs_bdev_flush(data);
	if (!r && meta != data)
		r = bs_bdev_flush(meta);
	return r;
}

int integrity_journal_recover(struct bs_bdev *data, struct bs_bdev *meta,
			      const struct integrity_geom *g, uint8_t *j,
			      const struct integrity_hash *h, bool keep_ring, bool readonly,
			      struct integrity_journal_state *st, const char **why)
{
	struct integrity_journal_scan s;
	unsigned last_used = 0, start = 0, erase;
	int r;

	memset(st, 0, sizeof(*st));
	r = integrity_journal_read(meta, g, j);
	if (r) {
		*why = "cannot read the journal";
		return r;
	}
	r = integrity_journal_scan(g, j, &s, &st->note);
	if (!r) {
		last_used = s.last_used;
		start = s.write_start;
		if (!s.empty) {
			if (readonly) {
				*why = "the journal needs replaying but the device is read-only";
				return -EROFS;
			}
			r = integrity_journal_replay(data, meta, g, j, &s, h, &st->replayed,
						     &st->bad);
			if (r) {
				*why = "replaying the journal failed";
				return r;
			}
		}
		if (s.write_sections == g->journal_sections && (keep_ring || s.empty)) {
			/* the ring goes on; nothing in memory is left to write back */
			for (unsigned i = 0; i < g->journal_sections; i++)
				for (unsigned e = 0; e < g->section_entries; e++)
					ij_entry_set_unused(ij_entry(g, j, i, e));
			st->section = s.write_start;
			st->seq = s.want_seq;
			return 0;
		}
		if (s.write_sections != g->journal_sections)
			st->note = "a commit was interrupted";
	}
	if (readonly) {
		/* nothing to replay; leave the disk alone and start a fresh ring in memory */
		integrity_journal_init(g, j, 0, g->journal_sections, 0);
		st->section = 0;
		st->seq = 1;
		return 0;
	}
	/* clear the journal, in an order that is consistent if interrupted */
	erase = prev_seq(prev_seq(last_used));
	integrity_journal_init(g, j, 0, g->journal_sections, erase);
	r = integrity_journal_write(meta, g, j, start, 1, BS_IO_FUA);
	if (!r && g->journal_sections >= 2) {
		r = integrity_journal_write(meta, g, j, (start + 1) % g->journal_sections,
					    g->journal_sections - 2, BS_IO_FUA);
		if (!r)
			r = integrity_journal_write(
			    meta, g, j, (start + g->journal_sections - 1) % g->journal_sections, 1,
			    BS_IO_FUA);
	}
	if (r) {
		*why = "cannot clear the journal";
		return r;
	}
	st->cleared = true;
	st->section = 0;
	st->seq = next_seq(erase);
	return 0;
}

/* ---- formatting ---------------------------------------------------------------------------- */

int integrity_sb_create(const struct integrity_format_params *p, bool meta_dev, uint64_t start,
			uint64_t data_device_sectors, uint64_t meta_device_sectors,
			const uint8_t *salt, struct integrity_sb *sb, struct integrity_geom *g,
			const char **why)
{
	unsigned digest, sector_size = p->sector_size ? p->sector_size : 512;
	uint64_t journal_sectors = p->journal_sectors;
	uint32_t interleave =
	    p->interleave_sectors ? p->interleave_sectors : DEFAULT_INTERLEAVE_SECTORS;
	unsigned buffer = p->buffer_sectors ? p->buffer_sectors : DEFAULT_BUFFER_SECTORS;
	unsigned log2_buf = fls64_index(buffer);
	unsigned l;
	int r;

	memset(sb, 0, sizeof(*sb));
	if (!integrity_hash_known(p->alg, NULL, &digest)) {
		*why = "unknown or unsupported integrity algorithm";
		return -EINVAL;
	}
	if (sector_size < 512 || sector_size > 512 * MAX_SECTORS_PER_BLOCK ||
	    (sector_size & (sector_size - 1))) {
		*why = "invalid sector size (512, 1024, 2048 or 4096)";
		return -EINVAL;
	}
	sb->tag_size = (uint16_t)(p->tag_size ? p->tag_size : digest);
	if (p->tag_size > MAX_TAG_SIZE) {
		*why = "tag size too big (at most 424 bytes)";
		return -EINVAL;
	}
	sb->log2_sectors_per_block = (uint8_t)fls64_index(sector_size >> 9);
	if (!journal_sectors) {
		journal_sectors = data_device_sectors >> DEFAULT_JOURNAL_SIZE_FACTOR;
		if (journal_sectors > DEFAULT_MAX_JOURNAL_SECTORS)
			journal_sectors = DEFAULT_MAX_JOURNAL_SECTORS;
		if (!journal_sectors)
			journal_sectors = 1;
	}
	if (log2_buf > 31 - 9)
		log2_buf = 31 - 9;
	if (p->fix_hmac) {
		sb->flags |= SB_FLAG_FIXED_HMAC;
		if (salt)
			memcpy(sb->salt, salt, SALT_SIZE);
		else if (getrandom(sb->salt, SALT_SIZE, 0) != SALT_SIZE) {
			*why = "cannot get random bytes for the salt";
			return -EIO;
		}
	}
	if (!meta_dev) {
		l = fls64_index(interleave);
		if (l < MIN_LOG2_INTERLEAVE_SECTORS)
			l = MIN_LOG2_INTERLEAVE_SECTORS;
		if (l > MAX_LOG2_INTERLEAVE_SECTORS)
			l = MAX_LOG2_INTERLEAVE_SECTORS;
		sb->log2_interleave_sectors = (uint8_t)l;
		if (p->fix_padding)
			sb->flags |= SB_FLAG_FIXED_PADDING;
	}
	sb->journal_sections = 1; /* for the section size; set below */
	r = integrity_geom_init(g, sb, meta_dev, start, data_device_sectors, meta_device_sectors,
				log2_buf, why);
	if (r)
		return r;
	if (!meta_dev) {
		uint64_t sections = journal_sectors / g->section_sectors;

		if (!sections)
			sections = 1;
		if (sections > UINT32_MAX) {
			*why = "journal too big";
			return -EINVAL;
		}
		sb->journal_sections = (uint32_t)sections;
		r = integrity_geom_init(g, sb, false, start, data_device_sectors,
					meta_device_sectors, log2_buf, why);
		if (r)
			return r;
		if (!integrity_geom_fit(g)) {
			*why = "device too small for dm-integrity with these parameters";
			return -EINVAL;
		}
	} else {
		uint64_t want = journal_sectors / g->section_sectors;

		if (!want)
			want = 1;
		if (want > UINT32_MAX)
			want = UINT32_MAX;
		sb->log2_interleave_sectors = 0;
		for (;;) {
			uint32_t sections = 0;

			for (int bit = (int)fls64_index(want); bit >= 0; bit--) {
				uint32_t test = sections | (1u << bit);

				if (test > want)
					continue;
				sb->journal_sections = test;
				r = integrity_geom_init(g, sb, true, start, data_device_sectors,
							meta_device_sectors, log2_buf, why);
				if (r)
					return r;
				if (integrity_geom_fit(g))
					sections = test;
			}
			if (sections) {
				sb->journal_sections = sections;
				break;
			}
			if (log2_buf <= 3) {
				*why = "metadata device too small";
				return -EINVAL;
			}
			log2_buf--;
		}
		r = integrity_geom_init(g, sb, true, start, data_device_sectors,
					meta_device_sectors, log2_buf, why);
		if (r)
			return r;
		if (!integrity_geom_fit(g)) {
			*why = "metadata device too small";
			return -EINVAL;
		}
	}
	sb->provided_data_sectors = g->provided_data_sectors;
	l = integrity_geom_log2_sectors_per_bit(g, p->sectors_per_bit);
	sb->log2_blocks_per_bitmap_bit = (uint8_t)(l - sb->log2_sectors_per_block);
	sb->version = integrity_sb_version(sb->flags, p->mode ? p->mode : 'J', meta_dev);
	return 0;
}

int integrity_journal_write_empty(struct bs_bdev *meta, const struct integrity_geom *g,
				  unsigned seq)
{
	unsigned per = IO_CHUNK / ((unsigned)g->section_sectors << 9);
	uint8_t *buf;
	int r = 0;

	if (!per)
		per = 1;
	buf = malloc((size_t)per * g->section_sectors << 9);
	if (!buf)
		return -ENOMEM;
	for (unsigned s = 0; s < g->journal_sections && !r; s += per) {
		unsigned n = g->journal_sections - s < per ? g->journal_sections - s : per;

		/* sections s.. built in BUF as if they were the first ones, stamped as s.. */
		for (unsigned k = 0; k < n; k++) {
			for (unsigned q = 0; q < g->section_sectors; q++) {
				uint8_t *p = ij_sector(g, buf, k, q);

				memset(p, 0, JOURNAL_SECTOR_DATA);
				ij_put_le64(p + JOURNAL_SECTOR_DATA, ij_commit_id(s + k, q, seq));
			}
			for (unsigned e = 0; e < g->section_entries; e++)
				ij_entry_set_unused(ij_entry(g, buf, k, e));
		}
		r = bs_bdev_write(meta, buf, (uint64_t)n * g->section_sectors << 9,
				  (g->start + SB_SECTORS + (uint64_t)s * g->section_sectors) << 9,
				  0);
	}
	free(buf);
	if (!r)
		r = bs_bdev_flush(meta);
	return r;
}

int integrity_format_write(struct bs_bdev *data, struct bs_bdev *meta,
			   const struct integrity_geom *g, struct integrity_sb *sb,
			   const struct integrity_hash *h, bool wipe, char mode, const char **why)
{
	uint8_t *buf;
	int r;

	/* the empty journal, sequence 0, as Linux writes it when it formats */
	r = integrity_journal_write_empty(meta, g, 0);
	if (r) {
		*why = "cannot write the journal";
		return r;
	}
	buf = malloc(IO_CHUNK);
	if (!buf) {
		*why = "out of memory";
		return -ENOMEM;
	}
	r = integrity_sb_write(meta, g->start, sb, mode, g->meta_dev);
	if (r) {
		free(buf);
		*why = "cannot write the superblock";
		return r;
	}
	if (wipe) {
		/* zeroes and the tags of zero blocks, area by area, a chunk at a time */
		uint64_t tags_per = IO_CHUNK / g->tag_size;

		for (uint64_t l = 0; l < g->provided_data_sectors && !r;) {
			uint64_t dsec, toff, left, blocks;

			integrity_geom_map(g, l, &dsec, &toff, &left);
			blocks = left >> g->log2_spb;
			if (blocks > tags_per)
				blocks = tags_per;
			{
				struct bs_io z = {.op = BS_OP_WRITE_ZEROES,
						  .off = dsec << 9,
						  .len = blocks << (g->log2_spb + 9)};

				r = bs_bdev_submit(data, &z);
			}
			if (!r) {
				integrity_hash_tags(h, l, g->spb, NULL, blocks, buf, g->tag_size);
				r = bs_bdev_write(meta, buf, blocks * g->tag_size, toff, 0);
			}
			l += blocks << g->log2_spb;
		}
		if (!r)
			r = bs_bdev_flush(data);
		if (!r && meta != data)
			r = bs_bdev_flush(meta);
		if (r)
			*why = "wiping the device failed";
	}
	free(buf);
	return r;
}
