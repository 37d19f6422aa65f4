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
 * A write that replaces every data block of a stripe (a full-stripe write) needs no record
 * to protect other data: nothing else lives in the stripe.  It goes in place unlogged, like
 * md's PPL, when no record of that stripe is left in a ring - a replay would put the older
 * contents back over it.  The rings' live records are tracked in memory by stripe (a count
 * per bucket of stripes, false sharing only costing a record); a record stops counting once
 * a later record overwriting it is on disk.  A torn unlogged write leaves its stripe's
 * parity stale until the resync of dirty regions after the unclean stop; if a member is lost
 * before that, the blocks rebuilt for that stripe are those of the interrupted write and may
 * be neither old nor new.  A record taken on a stripe whose unlogged write is not yet flushed
 * waits for a flush first: its parity counts on that write being there.
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

/* ---- which stripes a replay could still touch ------------------------------------------ */

#define LIVE_BITS 14

static size_t live_bucket(uint64_t stripe)
{
	return (size_t)((stripe * 0x9e3779b97f4a7c15ull) >> (64 - LIVE_BITS));
}

/* Stripes whose records are being overwritten, to uncount once the overwrite is on disk. */
struct dying {
	uint64_t *s; /* LOCAL, or on the heap once more are needed */
	size_t n, cap;
	uint64_t local[8];
};

static void dying_init(struct dying *d)
{
	d->s = d->local;
	d->n = 0;
	d->cap = sizeof(d->local) / sizeof(d->local[0]);
}

static void dying_free(struct dying *d)
{
	if (d->s != d->local)
		free(d->s);
}

/*
 * Counts a new record; one that cannot be queued stays counted for good, which only makes
 * full-stripe writes to its bucket take the journal.
 */
static void live_push(struct raid_array *a, struct journal_ring *jr, uint64_t pos, uint64_t size,
		      uint64_t stripe)
{
	if (!a->jlive)
		return; /* no tracking (journal_init not run): nothing may skip the journal */
	atomic_fetch_add(&a->jlive[live_bucket(stripe)], 1);
	if (jr->live_n == jr->live_cap) {
		size_t cap = jr->live_cap ? jr->live_cap * 2 : 256;
		struct jl_live *q = malloc(cap * sizeof(*q));

		if (!q)
			return;
		for (size_t i = 0; i < jr->live_n; i++)
			q[i] = jr->live[(jr->live_first + i) % jr->live_cap];
		free(jr->live);
		jr->live = q;
		jr->live_cap = cap;
		jr->live_first = 0;
	}
	jr->live[(jr->live_first + jr->live_n++) % jr->live_cap] =
	    (struct jl_live){pos, size, stripe};
}

/*
 * Takes off the queue the oldest records that [lo, hi) overwrites (they lie next after the
 * head, in ring order) and adds their stripes to D.  A stripe that cannot be added stays
 * counted for good.
 */
static void live_pop(struct journal_ring *jr, uint64_t lo, uint64_t hi, struct dying *d)
{
	while (jr->live_n) {
		struct jl_live *f = &jr->live[jr->live_first];

		if (!(f->pos < hi && f->pos + f->size > lo))
			break;
		if (d->n == d->cap) {
			uint64_t *s = malloc(2 * d->cap * sizeof(*s));

			if (s) {
				memcpy(s, d->s, d->n * sizeof(*s));
				dying_free(d);
				d->s = s;
				d->cap *= 2;
			}
		}
		if (d->n < d->cap)
			d->s[d->n++] = f->stripe;
		jr->live_first = (jr->live_first + 1) % jr->live_cap;
		jr->live_n--;
	}
}

/* The records of D are overwritten on disk: they no longer count. */
static void live_release(struct raid_array *a, struct dying *d)
{
	for (size_t i = 0; i < d->n && a->jlive; i++)
		atomic_fetch_sub(&a->jlive[live_bucket(d->s[i])], 1);
	d->n = 0;
}

bool journal_may_skip(struct raid_array *a, uint64_t stripe)
{
	return a->jlive && !atomic_load(&a->jlive[live_bucket(stripe)]);
}

void journal_skipped(struct raid_array *a, uint64_t stripe)
{
	atomic_uint_least64_t *u = &a->junlogged[live_bucket(stripe)];
	uint64_t e = atomic_load(&a->fepoch) + 1, cur = atomic_load(u);

	while (cur < e && !atomic_compare_exchange_weak(u, &cur, e))
		;
	atomic_fetch_add(&a->jskipped, 1);
}

int journal_before_record(struct raid_array *a, uint64_t stripe)
{
	if (!a->junlogged ||
	    atomic_load(&a->junlogged[live_bucket(stripe)]) <= atomic_load(&a->fdone))
		return 0;
	atomic_fetch_add(&a->jflushes, 1);
	return flush_members(a);
}

void journal_free(struct raid_array *a)
{
	for (unsigned i = 0; i < RAID_MAX_DISKS; i++) {
		free(a->ring[i].live);
		a->ring[i].live = NULL;
		a->ring[i].live_first = a->ring[i].live_n = a->ring[i].live_cap = 0;
	}
	free(a->jlive);
	free(a->junlogged);
	a->jlive = NULL;
	a->junlogged = NULL;
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
		  unsigned nrings_in, const struct jentry *e, unsigned n, struct jticket *t)
{
	uint64_t payload = 0, size, seq, pos[2];
	uint32_t hs = hdr_sectors(n);
	struct jl_hdr *h;
	char *rec, *p;
	int r = 0, ok = 0;
	unsigned rings[2], nrings = 0;
	struct dying dying[2];
	static atomic_bool warned;

	dying_init(&dying[0]);
	dying_init(&dying[1]);
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
			struct dying d;

			/* Records left there keep counting (for good, if the erase fails). */
			dying_init(&d);
			live_pop(jr, start, ring_size(a), &d);
			if (z) {
				memset(z, 0, tail << 9);
				if (!ring_io(a, rings[k], BS_OP_WRITE, z, start, tail, BS_IO_FUA))
					live_release(a, &d);
				bs_scratch_put(z);
			}
			dying_free(&d);
			start = 0;
		}

		new_half = (start + size - 1) >= half;
		if (new_half != jr->half || start < jr->head) {
			/*
			 * Entering a half with records of the lap before: their in-place writes
			 * must be finished and durable first.  They were issued a half-ring ago,
			 * so usually they are, and a flush since (another ring's, the user's)
			 * already covers them.
			 */
			while (jr->hactive[new_half])
				pthread_cond_wait(&jr->cv, &jr->mu);
			if (atomic_load(&a->fdone) < jr->hepoch[new_half]) {
				flush_members(a);
				atomic_fetch_add(&a->jflushes, 1);
			}
			jr->half = new_half;
		}
		pos[k] = start;
		live_pop(jr, start, start + size, &dying[k]);
		live_push(a, jr, start, size, stripe);
		jr->head = start + size;
		t->ring[k] = rings[k];
		t->halves[k] = 1u << (start >= half) | 1u << new_half;
		for (unsigned hh = 0; hh < 2; hh++)
			jr->hactive[hh] += (t->halves[k] >> hh) & 1;
		pthread_mutex_unlock(&jr->mu);
	}
	t->n = nrings;
	seq = atomic_fetch_add(&a->jseq, 1);
	pthread_mutex_unlock(&a->jreserve);

	rec = bs_scratch_get(size << 9);
	if (!rec) {
		journal_done(a, t);
		r = -ENOMEM;
		goto out;
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

		if (!w) {
			ok++;
			live_release(a, &dying[k]);
		} else if (is_media_error(w)) {
			fail_member(a, rings[k], "journal write error");
		} else {
			r = w;
		}
	}
	bs_scratch_put(rec);
	if (!ok)
		/* No journal copy survived: the parity members are gone, so is the write hole. */
		journal_done(a, t);
	else
		r = 0;
out:
	dying_free(&dying[0]);
	dying_free(&dying[1]);
	return r;
}

void journal_done(struct raid_array *a, const struct jticket *t)
{
	/* A flush that starts after this point makes the record's in-place writes durable. */
	uint64_t epoch = atomic_load(&a->fepoch) + 1;

	for (unsigned k = 0; k < t->n; k++) {
		struct journal_ring *jr = &a->ring[t->ring[k]];

		pthread_mutex_lock(&jr->mu);
		for (unsigned h = 0; h < 2; h++) {
			if (!((t->halves[k] >> h) & 1))
				continue;
			if (jr->hactive[h])
				jr->hactive[h]--;
			if (jr->hepoch[h] < epoch)
				jr->hepoch[h] = epoch;
		}
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
	journal_free(a);
	a->jlive = calloc(1u << LIVE_BITS, sizeof(*a->jlive));
	a->junlogged = calloc(1u << LIVE_BITS, sizeof(*a->junlogged));
	if (!a->jlive || !a->junlogged) {
		journal_free(a);
		sb_puts(err, "out of memory");
		return -ENOMEM;
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
	/*
	 * Continue each ring after its newest record, and the sequence after the newest.  The
	 * records found stay where a later crash's replay would find them again: they count.
	 */
	for (size_t k = 0; k < nf; k++) {
		struct journal_ring *jr = &a->ring[f[k].role];
		const struct jl_hdr *h = (const struct jl_hdr *)(rb[f[k].role] + (f[k].pos << 9));

		live_push(a, jr, f[k].pos, f[k].size, le64toh(h->stripe));
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
