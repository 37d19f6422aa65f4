/*
 * array_csum.c - the checksum log: a crc32c for every 4 KiB block of every member.
 *
 * md's check can tell that a stripe's parity does not match its data, but not which member
 * is wrong.  With the log, a read whose block does not match its checksum fails with
 * EILSEQ, exactly as an integrity device below would, and the engine's usual path takes
 * over: the block is rebuilt from the other members, returned, and rewritten.  A scrub thus
 * finds and repairs the bad member by itself.
 *
 * On disk, per member (at csum_offset, in the reserved area before the data; little-endian):
 *   sector 0   header: magic "BSCS", version 2, array uuid, block size in sectors (8),
 *              number of entries, crc32c of the preceding fields (initial value 0, no
 *              final xor)
 *   sectors 1- one u32 per block of the data area, in block order: the block's CRC-32C
 *              (the standard one: initial value and final xor ~0), or 1 where that is 0;
 *              0 = unknown
 * Version 1 used the CRC with initial value 0 and no final xor, which is 0 for a block of
 * zeros: rot in zeroed blocks went unseen.  A version 1 log is discarded when the array is
 * assembled (every block unknown) and learned again.
 * The table is kept in memory and written back (dirty table sectors only) before every
 * flush of the members and when the array stops.  Arrays with the log serve 4 KiB blocks
 * (the device layer turns smaller requests into read-modify-write), so every member I/O in
 * the data area covers whole blocks.  Checksums that are unknown (new arrays, regions
 * dirty at an unclean stop) are learned when a scrub or resync finds their stripe
 * consistent, and whenever a block is written.
 */
#include "raid/array_int.h"

#include <endian.h>
#include <errno.h>
#include <isa-l.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/scratch.h"

#define ENTRIES_PER_SECTOR 128u
#define RAID_CSUM_VERSION  2u

struct csum_hdr {
	uint32_t magic;
	uint32_t version;
	uint8_t uuid[16];
	uint32_t block_sectors;
	uint32_t pad;
	uint64_t entries;
	uint32_t crc;
};

static uint64_t nblocks(uint64_t dev_sectors)
{
	return (dev_sectors + RAID_CSUM_BLOCK - 1) / RAID_CSUM_BLOCK;
}

uint64_t raid_csum_area_sectors(uint64_t dev_sectors)
{
	return 1 + (nblocks(dev_sectors) + ENTRIES_PER_SECTOR - 1) / ENTRIES_PER_SECTOR;
}

static uint32_t block_crc(const void *p)
{
	uint32_t c = ~crc32_iscsi((unsigned char *)p, (int)(RAID_CSUM_BLOCK * 512), ~0u);

	return c ? c : 1; /* 0 means unknown */
}

static void hdr_fill(struct csum_hdr *h, const uint8_t uuid[16], uint64_t entries)
{
	memset(h, 0, sizeof(*h));
	h->magic = htole32(RAID_CSUM_MAGIC);
	h->version = htole32(RAID_CSUM_VERSION);
	memcpy(h->uuid, uuid, 16);
	h->block_sectors = htole32(RAID_CSUM_BLOCK);
	h->entries = htole64(entries);
	h->crc = htole32(crc32_iscsi((unsigned char *)h, offsetof(struct csum_hdr, crc), 0));
}

int raid_csum_format(struct bs_bdev *b, uint64_t offset, uint64_t dev_sectors,
		     const uint8_t uuid[16])
{
	uint64_t sectors = raid_csum_area_sectors(dev_sectors);
	char *buf = calloc(sectors, 512);
	int r;

	if (!buf)
		return -ENOMEM;
	hdr_fill((struct csum_hdr *)buf, uuid, nblocks(dev_sectors));
	r = bs_bdev_write(b, buf, sectors * 512, offset << 9, BS_IO_FUA);
	free(buf);
	return r;
}

bool csum_on(struct raid_array *a, unsigned r)
{
	return a->cfg.csum && a->m[r].csum;
}

/* Loads member M's table; a missing or foreign log starts empty (all unknown). */
static int load_member(struct raid_array *a, struct member *m, struct strbuf *err)
{
	uint64_t n = nblocks(a->g.dev_sectors), sectors = raid_csum_area_sectors(a->g.dev_sectors);
	char *buf;
	struct csum_hdr h;

	m->csum = calloc(n + ENTRIES_PER_SECTOR, sizeof(uint32_t));
	m->csum_dirty = calloc(sectors, 1);
	if (!m->csum || !m->csum_dirty) {
		sb_puts(err, "out of memory");
		return -ENOMEM;
	}
	if (!m->bdev || !m->csum_offset)
		return 0;
	if (m->csum_offset + sectors > m->data_offset) {
		sb_printf(err, "checksum log of %s overlaps its data", m->bdev->name);
		return -EINVAL;
	}
	buf = malloc(sectors * 512);
	if (!buf) {
		sb_puts(err, "out of memory");
		return -ENOMEM;
	}
	if (bs_bdev_read(m->bdev, buf, sectors * 512, m->csum_offset << 9)) {
		free(buf);
		return 0; /* unreadable: everything unknown; the member may fail later */
	}
	memcpy(&h, buf, sizeof(h));
	if (le32toh(h.magic) == RAID_CSUM_MAGIC && le32toh(h.version) == RAID_CSUM_VERSION &&
	    !memcmp(h.uuid, a->cfg.uuid, 16) && le32toh(h.block_sectors) == RAID_CSUM_BLOCK &&
	    le64toh(h.entries) == n &&
	    le32toh(h.crc) == crc32_iscsi((unsigned char *)&h, offsetof(struct csum_hdr, crc), 0)) {
		for (uint64_t i = 0; i < n; i++) {
			uint32_t v;

			memcpy(&v, buf + 512 + 4 * i, 4);
			m->csum[i] = le32toh(v);
		}
	} else {
		/* Foreign or never written: start empty, and say so on disk at the next flush. */
		memset(m->csum_dirty, 1, sectors);
	}
	free(buf);
	return 0;
}

int csum_init(struct raid_array *a, struct strbuf *err)
{
	for (unsigned i = 0; i < a->g.disks; i++) {
		int r = load_member(a, &a->m[i], err);

		if (r)
			return r;
	}
	for (unsigned i = 0; i < a->nspares; i++) {
		int r = load_member(a, &a->spare[i], err);

		if (r)
			return r;
	}
	/* After an unclean stop the table may lag the data where writes were in flight. */
	if (a->resync_offset != UINT64_MAX) {
		for (unsigned i = 0; i < a->g.disks; i++) {
			struct member *m = &a->m[i];

			if (!m->csum)
				continue;
			if (!a->bits) {
				memset(m->csum, 0, nblocks(a->g.dev_sectors) * sizeof(uint32_t));
				continue;
			}
			for (uint64_t b = 0; b < a->nbits; b++)
				if ((a->bits[b / 8] >> (b % 8)) & 1) {
					uint64_t s0 = b * a->cfg.bitmap_chunk,
						 s1 = s0 + a->cfg.bitmap_chunk;

					if (a->g.level == 10) {
						s0 = 0; /* RAID10's bitmap counts array sectors: be
							   coarse */
						s1 = a->g.dev_sectors;
					}
					for (uint64_t k = s0 / RAID_CSUM_BLOCK;
					     k < nblocks(a->g.dev_sectors) &&
					     k * RAID_CSUM_BLOCK < s1;
					     k++)
						m->csum[k] = 0;
				}
		}
	}
	return 0;
}

void csum_free(struct raid_array *a)
{
	for (unsigned i = 0; i < RAID_MAX_DISKS; i++) {
		free(a->m[i].csum);
		free(a->m[i].csum_dirty);
		a->m[i].csum = NULL;
		a->m[i].csum_dirty = NULL;
	}
	for (unsigned i = 0; i < RAID_MAX_SPARES; i++) {
		free(a->spare[i].csum);
		free(a->spare[i].csum_dirty);
		a->spare[i].csum = NULL;
		a->spare[i].csum_dirty = NULL;
	}
}

/* Sets the entries of blocks [b0, b0+n) from DATA (or to V when DATA is NULL). */
static void set_entries(struct member *m, uint64_t b0, uint64_t n, const char *data, uint32_t v)
{
	pthread_mutex_lock(&m->csum_lock);
	for (uint64_t i = 0; i < n; i++) {
		m->csum[b0 + i] = data ? block_crc(data + i * RAID_CSUM_BLOCK * 512) : v;
		m->csum_dirty[1 + (b0 + i) / ENTRIES_PER_SECTOR] = 1;
	}
	pthread_mutex_unlock(&m->csum_lock);
}

void csum_forget(struct raid_array *a, unsigned r, uint64_t sector, uint64_t nsect)
{
	struct member *m = &a->m[r];

	if (!csum_on(a, r) || !nsect)
		return;
	set_entries(m, sector / RAID_CSUM_BLOCK,
		    (sector + nsect + RAID_CSUM_BLOCK - 1) / RAID_CSUM_BLOCK -
			sector / RAID_CSUM_BLOCK,
		    NULL, 0);
}

void csum_learn(struct raid_array *a, unsigned r, uint64_t sector, uint64_t nsect, const void *buf)
{
	struct member *m = &a->m[r];
	const char *p = buf;
	uint64_t b0 = sector / RAID_CSUM_BLOCK;

	if (!csum_on(a, r) || (sector | nsect) % RAID_CSUM_BLOCK)
		return;
	pthread_mutex_lock(&m->csum_lock);
	for (uint64_t i = 0; i < nsect / RAID_CSUM_BLOCK; i++)
		if (!m->csum[b0 + i]) {
			m->csum[b0 + i] = block_crc(p + i * RAID_CSUM_BLOCK * 512);
			m->csum_dirty[1 + (b0 + i) / ENTRIES_PER_SECTOR] = 1;
		}
	pthread_mutex_unlock(&m->csum_lock);
}

int csum_add(struct raid_array *a, struct member *m)
{
	struct strbuf err = STRBUF_INIT;
	int r;

	if (!a->cfg.csum)
		return 0;
	r = load_member(a, m, &err);
	sb_free(&err);
	return r;
}

int csum_member_io(struct raid_array *a, unsigned r, enum bs_op op, void *buf, uint64_t sector,
		   uint64_t nsect, unsigned flags)
{
	struct member *m = &a->m[r];
	uint64_t b0 = sector / RAID_CSUM_BLOCK, n = nsect / RAID_CSUM_BLOCK;
	int e;

	if ((sector | nsect) % RAID_CSUM_BLOCK) {
		/* Cannot happen: arrays with the log serve whole blocks. */
		bs_err("%s: unaligned member I/O %llu+%llu with the checksum log", a->name,
		       (unsigned long long)sector, (unsigned long long)nsect);
		return -EINVAL;
	}
	/*
	 * While a write is on its way the blocks are unknown, not checked against the old
	 * checksum: a read between the data and the new entry would otherwise count a
	 * checksum error that is none (the caller's repair under the stripe lock would find
	 * the block fine, but the error would be counted and logged).  A write that fails
	 * leaves them unknown.
	 */
	if (op == BS_OP_WRITE || op == BS_OP_WRITE_ZEROES)
		set_entries(m, b0, n, NULL, 0);
	e = member_io_raw(a, r, op, buf, sector, nsect, flags);
	if (e)
		return e;
	switch (op) {
	case BS_OP_READ: {
		const char *p = buf;
		int bad = 0;
		uint64_t first_bad = 0;

		pthread_mutex_lock(&m->csum_lock);
		for (uint64_t i = 0; i < n; i++) {
			uint32_t want = m->csum[b0 + i];

			if (want && block_crc(p + i * RAID_CSUM_BLOCK * 512) != want) {
				if (!bad++)
					first_bad = b0 + i;
			}
		}
		pthread_mutex_unlock(&m->csum_lock);
		if (bad && (flags & RAID_IO_QUIET))
			return -EILSEQ;
		if (bad) {
			atomic_fetch_add(&a->csum_errors, (uint64_t)bad);
			bs_warn(
			    "%s: %s: %d block(s) from sector %llu do not match the checksum log",
			    a->name, m->bdev ? m->bdev->name : "?", bad,
			    (unsigned long long)(first_bad * RAID_CSUM_BLOCK));
			return -EILSEQ;
		}
		return 0;
	}
	case BS_OP_WRITE:
		set_entries(m, b0, n, buf, 0);
		return 0;
	case BS_OP_WRITE_ZEROES: {
		static char zero[RAID_CSUM_BLOCK * 512];
		uint32_t zc = block_crc(zero);

		set_entries(m, b0, n, NULL, zc);
		return 0;
	}
	case BS_OP_DISCARD:
		set_entries(m, b0, n, NULL, 0);
		return 0;
	case BS_OP_FLUSH:
		break;
	}
	return 0;
}

/* Writes the dirty table sectors of one member (and the header when marked). */
static int flush_member(struct raid_array *a, unsigned r)
{
	struct member *m = &a->m[r];
	uint64_t sectors = raid_csum_area_sectors(a->g.dev_sectors), n = nblocks(a->g.dev_sectors);
	char *buf;
	int e = 0;

	if (!csum_on(a, r) || !m->csum_offset || !member_writable(a, r))
		return 0;
	buf = bs_scratch_get(512);
	if (!buf)
		return -ENOMEM;
	for (uint64_t s = 0; s < sectors && !e; s++) {
		bool dirty;

		pthread_mutex_lock(&m->csum_lock);
		dirty = m->csum_dirty[s];
		if (dirty) {
			m->csum_dirty[s] = 0;
			memset(buf, 0, 512);
			if (s == 0) {
				hdr_fill((struct csum_hdr *)buf, a->cfg.uuid, n);
			} else {
				for (unsigned i = 0; i < ENTRIES_PER_SECTOR; i++) {
					uint64_t k = (s - 1) * ENTRIES_PER_SECTOR + i;
					uint32_t v = htole32(k < n ? m->csum[k] : 0);

					memcpy(buf + 4 * i, &v, 4);
				}
			}
		}
		pthread_mutex_unlock(&m->csum_lock);
		if (dirty) {
			struct bs_io io = {.op = BS_OP_WRITE,
					   .off = (m->csum_offset + s) << 9,
					   .len = 512,
					   .buf = buf};

			pthread_rwlock_rdlock(&a->mlock);
			e = m->bdev ? bs_bdev_submit(m->bdev, &io) : 0;
			pthread_rwlock_unlock(&a->mlock);
			if (e) {
				pthread_mutex_lock(&m->csum_lock);
				m->csum_dirty[s] = 1;
				pthread_mutex_unlock(&m->csum_lock);
			}
		}
	}
	bs_scratch_put(buf);
	return e;
}

int csum_flush(struct raid_array *a)
{
	int r = 0;

	if (!a->cfg.csum)
		return 0;
	for (unsigned i = 0; i < a->g.disks; i++) {
		int e = flush_member(a, i);

		if (e && is_media_error(e)) {
			fail_member(a, i, "cannot write the checksum log");
			continue;
		}
		if (e && !r)
			r = e;
	}
	return r;
}
