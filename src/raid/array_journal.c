/*
 * array_journal.c - the write-ahead journal that closes the RAID4/5/6 write hole.
 *
 * Every stripe update is first written, whole (new data blocks and new parity), as one
 * record to a ring in the reserved area of the stripe's parity member (P, and Q for RAID6),
 * with FUA; only then are the blocks written in place.  After a crash the records found in
 * the rings are replayed in sequence order, which leaves every stripe either as it was or
 * as the interrupted write meant it to be - even if a member is lost before the replay.
 *
 * Why replaying everything found is safe: records go into a ring strictly in sequence order
 * and a ring is overwritten oldest first, so the valid records of a ring are a suffix of its
 * history; all records for one stripe go to the same rings; replaying a suffix in order ends
 * with the newest content of every range it touches.  Before the head enters a half of the
 * ring that still holds older records, all in-place writes in flight finish and the members
 * are flushed, so no record is overwritten while the writes it protects may still be lost.
 *
 * Record layout (little-endian), starting on a sector boundary in the ring:
 *   header  magic "BSJL", crc32c (of header with crc 0, then payload), array uuid,
 *           seq, stripe, nentries, hdr_sectors, payload_sectors, then per entry
 *           {u16 role, u16 0, u32 nsect, u64 member data sector}
 *   payload the entries' blocks, concatenated
 */
#include "raid/array_int.h"

#include <endian.h>
#include <errno.h>
#include <isa-l.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/scratch.h"

#define JL_MAGIC 0x4c4a5342u /* "BSJL" */
#define JL_FIXED 56u

struct jl_entry {
	uint16_t role;
	uint16_t pad;
	uint32_t nsect;
	uint64_t sector;
};

struct jl_hdr {
	uint32_t magic;
	uint32_t crc;
	uint8_t uuid[16];
	uint64_t seq;
	uint64_t stripe;
	uint32_t nentries;
	uint32_t hdr_sectors;
	uint32_t payload_sectors;
	uint32_t reserved;
	struct jl_entry e[];
};

_Static_assert(sizeof(struct jl_hdr) == JL_FIXED, "journal header layout");
_Static_assert(sizeof(struct jl_entry) == 16, "journal entry layout");

static uint32_t hdr_sectors(unsigned n)
{
	return (JL_FIXED + 16u * n + 511) / 512;
}

static uint64_t ring_size(struct raid_array *a)
{
	return a->cfg.journal_sectors;
}

static int ring_io(struct raid_array *a, unsigned role, enum bs_op op, void *buf, uint64_t pos,
		   uint64_t n, unsigned flags)
{
	struct member *m = &a->m[role];
	struct bs_io io = {.op = op, .flags = flags, .len = n << 9, .buf = buf};
	int r = -ENXIO;

	pthread_rwlock_rdlock(&a->mlock);
	if (m->bdev && m->journal_offset) {
		io.off = (m->journal_offset + pos) << 9;
		r = bs_bdev_submit(m->bdev, &io);
	}
	pthread_rwlock_unlock(&a->mlock);
	return r;
}

int journal_write(struct raid_array *a, uint64_t stripe, const unsigned *rings_in,
		  unsigned nrings_in, const struct jentry *e, unsigned n)
{
	uint64_t payload = 0, size, seq, pos[2];
	uint32_t hs = hdr_sectors(n);
	struct jl_hdr *h;
	char *rec, *p;
	int r = 0, ok = 0;
	unsigned rings[2], nrings = 0;
	static atomic_bool warned;

	/* A member added without a journal area (e.g. by Linux md) cannot hold records. */
	for (unsigned k = 0; k < nrings_in; k++)
		if (a->m[rings_in[k]].journal_offset)
			rings[nrings++] = rings_in[k];
	if (!nrings) {
		if (!atomic_exchange(&warned, true))
			bs_warn("%s: a parity member has no journal area; those stripes are "
				"written without the journal",
				a->name);
		return 0;
	}

	for (unsigned i = 0; i < n; i++)
		payload += e[i].nsect;
	size = hs + payload;
	if (size > ring_size(a) / 2) {
		bs_err("%s: a stripe update of %llu sectors does not fit the journal", a->name,
		       (unsigned long long)size);
		return -ENOSPC;
	}
	/*
	 * Sequence numbers must follow ring order: on restart a ring continues after its
	 * highest-numbered record, and overwrites oldest first only if that record is also the
	 * last one written.  So the number is taken together with the positions, under one
	 * lock for all rings.  Each ring's own lock is held only while it is looked at, so
	 * journal_done() never waits behind a writer draining another ring.
	 */
	pthread_mutex_lock(&a->jreserve);
	for (unsigned k = 0; k < nrings; k++) {
		struct journal_ring *jr = &a->ring[rings[k]];
		uint64_t half = ring_size(a) / 2, start;
		unsigned new_half;

		pthread_mutex_lock(&jr->mu);
		start = jr->head;
		if (start + size > ring_size(a)) {
			/*
			 * Wrapping: the unused end of this lap may still hold valid records of the
			 * lap before, which would then outlive newer ones.  Erase it first.
			 */
			uint64_t tail = ring_size(a) - start;
			char *z = tail ? bs_scratch_get(tail << 9) : NULL;

			if (z) {
				memset(z, 0, tail << 9);
				ring_io(a, rings[k], BS_OP_WRITE, z, start, tail, BS_IO_FUA);
				bs_scratch_put(z);
			}
			start = 0;
		}

		new_half = (start + size - 1) >= half;
		if (new_half != jr->half || start < jr->head) {
			/* Entering a half with older records: make their writes durable first. */
			while (jr->active)
				pthread_cond_wait(&jr->cv, &jr->mu);
			flush_members(a);
			jr->half = new_half;
		}
		pos[k] = start;
		jr->head = start + size;
		jr->active++;
		pthread_mutex_unlock(&jr->mu);
	}
	seq = atomic_fetch_add(&a->jseq, 1);
	pthread_mutex_unlock(&a->jreserve);

	rec = bs_scratch_get(size << 9);
	if (!rec) {
		journal_done(a, rings, nrings);
		return -ENOMEM;
	}
	memset(rec, 0, (size_t)hs << 9);
	h = (struct jl_hdr *)rec;
	h->magic = htole32(JL_MAGIC);
	memcpy(h->uuid, a->cfg.uuid, 16);
	h->seq = htole64(seq);
	h->stripe = htole64(stripe);
	h->nentries = htole32(n);
	h->hdr_sectors = htole32(hs);
	h->payload_sectors = htole32((uint32_t)payload);
	p = rec + ((size_t)hs << 9);
	for (unsigned i = 0; i < n; i++) {
		h->e[i].role = htole16((uint16_t)e[i].role);
		h->e[i].nsect = htole32((uint32_t)e[i].nsect);
		h->e[i].sector = htole64(e[i].sector);
		memcpy(p, e[i].data, e[i].nsect << 9);
		p += e[i].nsect << 9;
	}
	h->crc = htole32(crc32_iscsi((unsigned char *)rec, (int)(size << 9), 0));

	for (unsigned k = 0; k < nrings; k++) {
		int w = ring_io(a, rings[k], BS_OP_WRITE, rec, pos[k], size, BS_IO_FUA);

		if (!w)
			ok++;
		else if (is_media_error(w))
			fail_member(a, rings[k], "journal write error");
		else
			r = w;
	}
	bs_scratch_put(rec);
	if (!ok) {
		/* No journal copy survived: the parity members are gone, so is the write hole. */
		journal_done(a, rings, nrings);
		return r;
	}
	return 0;
}

void journal_done(struct raid_array *a, const unsigned *rings, unsigned nrings)
{
	for (unsigned k = 0; k < nrings; k++) {
		struct journal_ring *jr = &a->ring[rings[k]];

		if (!a->m[rings[k]].journal_offset)
			continue;
		pthread_mutex_lock(&jr->mu);
		if (jr->active)
			jr->active--;
		pthread_cond_broadcast(&jr->cv);
		pthread_mutex_unlock(&jr->mu);
	}
}

/* ---- replay ---------------------------------------------------------------------------- */

struct found {
	uint64_t seq;
	unsigned role;
	uint64_t pos;
	uint64_t size;
};

static int cmp_found(const void *x, const void *y)
{
	const struct found *a = x, *b = y;

	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Checks the record at pos of ring buffer RB; returns its size in sectors or 0. */
static uint64_t valid_record(struct raid_array *a, const char *rb, uint64_t pos, uint64_t rs)
{
	const struct jl_hdr *h = (const struct jl_hdr *)(rb + (pos << 9));
	uint32_t n, hs, ps, crc;
	uint64_t sum = 0, size;
	char *copy;

	if (le32toh(h->magic) != JL_MAGIC || memcmp(h->uuid, a->cfg.uuid, 16))
		return 0;
	n = le32toh(h->nentries);
	hs = le32toh(h->hdr_sectors);
	ps = le32toh(h->payload_sectors);
	if (n == 0 || n > MAX_JOURNAL_ENTRIES || hs != hdr_sectors(n) || ps == 0)
		return 0;
	size = (uint64_t)hs + ps;
	if (pos + size > rs)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		uint16_t role = le16toh(h->e[i].role);
		uint32_t ns = le32toh(h->e[i].nsect);
		uint64_t sec = le64toh(h->e[i].sector);

		if (role >= a->g.disks || ns == 0 || sec > a->g.dev_sectors ||
		    ns > a->g.dev_sectors - sec)
			return 0;
		sum += ns;
	}
	if (sum != ps)
		return 0;
	copy = malloc(hs << 9);
	if (!copy)
		return 0;
	memcpy(copy, h, hs << 9);
	crc = le32toh(((struct jl_hdr *)copy)->crc);
	((struct jl_hdr *)copy)->crc = 0;
	{
		uint32_t c = crc32_iscsi((unsigned char *)copy, (int)(hs << 9), 0);

		c = crc32_iscsi((unsigned char *)rb + ((pos + hs) << 9), (int)(ps << 9), c);
		free(copy);
		return c == crc ? size : 0;
	}
}

static int replay_record(struct raid_array *a, const char *rb, uint64_t pos)
{
	const struct jl_hdr *h = (const struct jl_hdr *)(rb + (pos << 9));
	uint32_t n = le32toh(h->nentries);
	const char *p = rb + ((pos + le32toh(h->hdr_sectors)) << 9);

	for (uint32_t i = 0; i < n; i++) {
		unsigned role = le16toh(h->e[i].role);
		uint32_t ns = le32toh(h->e[i].nsect);
		uint64_t sec = le64toh(h->e[i].sector);

		if (member_writable(a, role)) {
			int r = member_io(a, role, BS_OP_WRITE, (void *)p, sec, ns, 0);

			if (r && is_media_error(r))
				fail_member(a, role, "write error during journal replay");
			else if (r)
				return r;
		}
		p += (size_t)ns << 9;
	}
	return 0;
}

int journal_init(struct raid_array *a, struct strbuf *err)
{
	const uint64_t rs = ring_size(a);
	char *rb[RAID_MAX_DISKS] = {0};
	struct found *f = NULL;
	size_t nf = 0, cap = 0;
	uint64_t maxseq = 0;
	int r = 0;

	if (rs < 64) {
		sb_puts(err, "journal area too small (needs at least 32 KiB per member)");
		return -EINVAL;
	}
	for (unsigned i = 0; i < a->g.disks; i++) {
		struct member *m = &a->m[i];

		if (!m->bdev || !m->journal_offset)
			continue;
		if (m->journal_offset + rs > m->data_offset &&
		    m->journal_offset < m->data_offset + m->data_sectors) {
			sb_printf(err, "journal of %s overlaps its data area", m->bdev->name);
			r = -EINVAL;
			goto out;
		}
		rb[i] = malloc(rs << 9);
		if (!rb[i]) {
			r = -ENOMEM;
			sb_puts(err, "out of memory");
			goto out;
		}
		if (ring_io(a, i, BS_OP_READ, rb[i], 0, rs, 0)) {
			/* An unreadable ring counts as empty; the member may fail later. */
			free(rb[i]);
			rb[i] = NULL;
			continue;
		}
		for (uint64_t pos = 0; pos < rs; pos++) {
			uint64_t size = valid_record(a, rb[i], pos, rs);

			if (!size)
				continue;
			if (nf == cap) {
				struct found *nfp;

				cap = cap ? cap * 2 : 64;
				nfp = realloc(f, cap * sizeof(*f));
				if (!nfp) {
					r = -ENOMEM;
					sb_puts(err, "out of memory");
					goto out;
				}
				f = nfp;
			}
			f[nf++] = (struct found){
			    le64toh(((struct jl_hdr *)(rb[i] + (pos << 9)))->seq), i, pos, size};
			pos += size - 1;
		}
	}
	if (nf)
		qsort(f, nf, sizeof(*f), cmp_found);

	/*
	 * A clean array has every journaled write in place and flushed: nothing to replay.
	 * The rings are still scanned, so new records continue each ring's history.
	 */
	for (size_t k = 0; k < nf && !r && a->resync_offset != UINT64_MAX; k++) {
		if (k > 0 && f[k].seq == f[k - 1].seq)
			continue; /* the same record from the P and the Q ring */
		r = replay_record(a, rb[f[k].role], f[k].pos);
		a->journal_replayed++;
	}

	if (r) {
		sb_printf(err, "journal replay failed: %s", strerror(-r));
		goto out;
	}
	if (a->journal_replayed) {
		flush_members(a);
		bs_info("%s: replayed %llu journal records", a->name,
			(unsigned long long)a->journal_replayed);
	}
	/* Continue each ring after its newest record, and the sequence after the newest. */
	for (size_t k = 0; k < nf; k++) {
		struct journal_ring *jr = &a->ring[f[k].role];

		jr->head = f[k].pos + f[k].size; /* sorted by seq: the last one wins */
		jr->half = (jr->head ? jr->head - 1 : 0) >= rs / 2;
		if (f[k].seq > maxseq)
			maxseq = f[k].seq;
	}
	atomic_store(&a->jseq, maxseq + 1);
out:
	for (unsigned i = 0; i < RAID_MAX_DISKS; i++)
		free(rb[i]);
	free(f);
	return r;
}
