/*
 * integrity.c - the `integrity` target: Linux dm-integrity, on its own on-disk format.
 *
 * Table: integrity <dev> <offset> <tag_size|-> <mode> <#opt> <opt>...
 *   mode   J journal: data and tag of every write go through the journal, so a crash leaves
 *            each block old or new, never with a wrong tag; the journal is replayed at start
 *          B bitmap: writes go in place; a bitmap of dirty regions is kept on disk and the
 *            regions dirty at an unclean stop have their tags recalculated at the next start
 *          D direct: writes go in place; a crash can leave blocks with wrong tags
 *          R recovery: read-only; mismatches are counted and logged but the data is returned
 *   options (Linux's): internal_hash:<alg>[:<hex key>], journal_sectors:N,
 *          interleave_sectors:N, buffer_sectors:N, journal_watermark:PCT, commit_time:MS,
 *          meta_device:<dev>, block_size:BYTES, sectors_per_bit:N, bitmap_flush_interval:MS,
 *          recalculate, reset_recalculate, allow_discards, fix_padding, fix_hmac,
 *          legacy_recalculate; journal_crypt: and journal_mac: are refused (not supported)
 * Status: "<mismatches> <provided_data_sectors> <recalc_sector|->"; the table in Linux's
 * canonical form, the internal_hash key as zeroes unless --showkeys.
 *
 * A device whose superblock area is all zeroes is formatted by the constructor, as Linux
 * does (this is how `integritysetup format` works).  A block whose tag does not match reads
 * as -EILSEQ (EIO to NBD clients), is counted and logged with its sector.
 *
 * Without internal_hash (then tag_size is required) the tags come from the layer above, as
 * Linux's dm-crypt AEAD modes supply them: a read or write carrying a bs_io_meta (engine/
 * io.h) with one tuple of tag_size bytes per block reads or writes the blocks' tags with
 * the data (through the journal in journal mode, so data and tag stay atomic) and marks the
 * metadata taken; nothing is checked here.  Requests without metadata move data only (a
 * journal-mode write then stores zero tags; not checked against Linux).  As in Linux,
 * metadata of another tuple or block size fails the request, metadata given to a device
 * with an internal hash fails it too, and recalculate is refused.
 *
 * Requests are handled in runs: one read or write of the data and one of the tags for every
 * piece of a request inside one interleave area.  Journal mode copies writes into an
 * in-memory image of the journal ring; a worker thread commits sections (stamps commit ids,
 * writes them with FUA) at flushes, at the commit timer and when the journal passes its
 * watermark, and then writes committed blocks to their places, flushes, and frees the
 * sections.  A range lock keeps reads, in-place writes, write-back and recalculation of the
 * same blocks apart, so a reader never sees data and tag from different writes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/device.h"
#include "engine/table.h"
#include "engine/target.h"
#include "formats/integrity_hash.h"
#include "formats/integrity_sb.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/scratch.h"
#include "util/secmem.h"

#define CHUNK_SECTORS  2048u /* sectors per data/tag I/O pair (1 MiB) */
#define RECALC_SECTORS 2048u /* sectors recalculated per step */
#define JBATCH	       256u  /* blocks looked up in the journal per step of a read */
#define NONE	       UINT32_MAX
#define MISMATCH_LOGS  64 /* logged mismatches, then only every 1000th */

/* ---- range lock ------------------------------------------------------------------------- */

struct range {
	uint64_t start, end; /* sectors */
	struct range *next;
};

struct range_lock {
	pthread_mutex_t m;
	pthread_cond_t c;
	struct range *head;
};

static void rl_lock(struct range_lock *rl, struct range *r, uint64_t start, uint64_t len)
{
	r->start = start;
	r->end = start + len;
	pthread_mutex_lock(&rl->m);
	for (;;) {
		struct range *o;

		for (o = rl->head; o; o = o->next)
			if (o->start < r->end && r->start < o->end)
				break;
		if (!o)
			break;
		pthread_cond_wait(&rl->c, &rl->m);
	}
	r->next = rl->head;
	rl->head = r;
	pthread_mutex_unlock(&rl->m);
}

static void rl_unlock(struct range_lock *rl, struct range *r)
{
	pthread_mutex_lock(&rl->m);
	for (struct range **pp = &rl->head; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	pthread_cond_broadcast(&rl->c);
	pthread_mutex_unlock(&rl->m);
}

/* ---- bitmaps (Linux's little-endian bit order: bit n is byte n/8, bit n%8) ---------------- */

static void bits_op(uint8_t *m, uint64_t a, uint64_t b, bool set) /* bits a..b inclusive */
{
	for (uint64_t i = a; i <= b;) {
		if (!(i & 7) && i + 7 <= b) {
			uint64_t n = (b + 1 - i) / 8;

			memset(m + i / 8, set ? 0xff : 0, n);
			i += n * 8;
			continue;
		}
		if (set)
			m[i / 8] |= (uint8_t)(1u << (i & 7));
		else
			m[i / 8] &= (uint8_t) ~(1u << (i & 7));
		i++;
	}
}

static bool bits_all(const uint8_t *m, uint64_t a, uint64_t b, bool set)
{
	for (uint64_t i = a; i <= b; i++)
		if (!!(m[i / 8] & (1u << (i & 7))) != set)
			return false;
	return true;
}

/* ---- the target ------------------------------------------------------------------------- */

struct journal {
	uint8_t *buf;
	pthread_mutex_t lock;
	pthread_cond_t cond;	   /* entries filled, sections freed */
	pthread_mutex_t sync_lock; /* serialises commits and flushes */
	pthread_mutex_t wb_lock;   /* serialises write-back */
	pthread_cond_t wb_cond;	   /* sections became durable: the writer has work */
	pthread_t writer;
	bool writer_on, writer_quit;
	unsigned commit_seq;
	/*
	 * The ring, oldest first: written back (in place, not yet flushed: freed by the next
	 * flush), durable (committed and flushed: to be written back), committed (stamped and
	 * written to the journal, not yet flushed), uncommitted (filled), free.
	 */
	unsigned written_section, n_written;
	unsigned durable_section, n_durable;
	unsigned committed_section, n_committed;
	unsigned uncommitted_section, n_uncommitted;
	unsigned free_section, free_section_entry;
	uint32_t free_entries, threshold;
	uint32_t *inprogress; /* per section: entries reserved, not yet filled */
	uint8_t *busy;	      /* per entry position: being filled */
	/*
	 * Index: block -> newest entry position holding it (hash chains, doubly linked).  An
	 * entry rewritten by a newer one leaves the index and points to it (succ).
	 */
	uint32_t nbuckets, *head, *next, *prev, *succ, indexed;
	uint64_t *block;
	uint8_t *tags; /* write-back: one section's tags */
	bool wrote;
	atomic_uint_fast64_t dirty_ms; /* when the oldest uncommitted write arrived, or 0 */
};

struct bitmapst {
	uint8_t *disk, *may_write, *recalc;
	uint64_t bytes;
	unsigned shift; /* log2 sectors per bit */
	pthread_mutex_t lock;
	bool dirty;
	uint64_t last_flush_ms;
};

struct integ {
	struct bs_target *t;
	char name[BS_DEVICE_NAME_MAX];
	struct bs_bdev *dev, *meta;
	bool has_meta;
	uint64_t start;
	unsigned tag_size;
	bool tag_size_dash;
	char mode;
	/* options */
	uint32_t journal_sectors, interleave_sectors, buffer_sectors;
	bool journal_sectors_set;
	unsigned log2_buffer_sectors;
	uint32_t watermark, commit_ms, bitmap_flush_ms;
	uint64_t sectors_per_bit;
	unsigned sectors_per_block;
	bool recalculate, reset_recalculate, discards, fix_padding, fix_hmac, legacy_recalculate;
	bool external;		  /* no internal_hash: tags come with the requests (bs_io_meta) */
	atomic_bool meta_refused; /* logged once */
	char alg[32];
	char *key_hex; /* locked */
	uint8_t *key;  /* locked */
	size_t key_len;
	/* state */
	struct integrity_hash *hash;
	struct integrity_sb sb;
	pthread_mutex_t sb_lock;
	struct integrity_geom g;
	unsigned log2_spbit; /* bitmap: log2 sectors per bit */
	bool just_formatted, uptodate;
	atomic_uint_fast64_t mismatches;
	atomic_int failed;
	struct range_lock rl;
	struct journal j;
	struct bitmapst bm;
	atomic_bool recalc_run; /* recalculation left to do */
	unsigned recalc_steps;
	/* worker */
	pthread_t worker;
	bool worker_on;
	pthread_mutex_t wl;
	pthread_cond_t wc;
	bool quit, kick;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void kick_worker(struct integ *ic)
{
	pthread_mutex_lock(&ic->wl);
	ic->kick = true;
	pthread_cond_signal(&ic->wc);
	pthread_mutex_unlock(&ic->wl);
}

static void set_failed(struct integ *ic, const char *what, int err)
{
	int zero = 0;

	if (atomic_compare_exchange_strong(&ic->failed, &zero, err ? err : -EIO))
		bs_err("integrity %s: error %s: %s; the device now fails all I/O", ic->name, what,
		       strerror(-err));
}

static int flush_devs(struct integ *ic)
{
	int r = bs_bdev_flush(ic->dev);

	if (!r && ic->meta != ic->dev)
		r = bs_bdev_flush(ic->meta);
	return r;
}

static int write_sb(struct integ *ic)
{
	int r;

	pthread_mutex_lock(&ic->sb_lock);
	r = integrity_sb_write(ic->meta, ic->start, &ic->sb, ic->mode, ic->has_meta);
	pthread_mutex_unlock(&ic->sb_lock);
	return r;
}

/* Whether block tags of [l, l+n) need no check (being recalculated). Per block, in CHECK. */
static uint64_t recalc_limit(struct integ *ic)
{
	uint64_t rs;

	pthread_mutex_lock(&ic->sb_lock);
	rs = (ic->sb.flags & SB_FLAG_RECALCULATING) ? ic->sb.recalc_sector : UINT64_MAX;
	pthread_mutex_unlock(&ic->sb_lock);
	return rs;
}

static void report_mismatch(struct integ *ic, uint64_t sector)
{
	uint64_t n = atomic_fetch_add(&ic->mismatches, 1) + 1;

	if (n <= MISMATCH_LOGS || n % 1000 == 0)
		bs_warn("integrity %s: checksum failed at sector %llu%s", ic->name,
			(unsigned long long)sector,
			ic->mode == 'R' ? " (recovery mode: data returned)" : "");
}

/* ---- in-place I/O -------------------------------------------------------------------------- */

/*
 * Reads [l, l+n) from its places into BUF and checks the tags; in external mode the tags
 * go to XTAGS instead (when not NULL), unchecked.  The caller holds the range.  Returns 0,
 * -EILSEQ after a mismatch (R mode: 0), or an I/O error.
 */
static int read_inplace(struct integ *ic, uint64_t l, uint64_t n, uint8_t *buf, uint8_t *xtags)
{
	const struct integrity_geom *g = &ic->g;
	uint64_t limit = recalc_limit(ic);
	int res = 0;

	while (n) {
		uint64_t dsec, toff, left, cnt, nb;
		uint8_t *tags;
		int r;

		integrity_geom_map(g, l, &dsec, &toff, &left);
		cnt = n < left ? n : left;
		if (cnt > CHUNK_SECTORS)
			cnt = CHUNK_SECTORS;
		nb = cnt >> g->log2_spb;
		r = bs_bdev_read(ic->dev, buf, cnt << 9, dsec << 9);
		if (r)
			return r;
		if (ic->external) {
			if (xtags) {
				r = bs_bdev_read(ic->meta, xtags, nb * g->tag_size, toff);
				if (r)
					return r;
				xtags += nb * g->tag_size;
			}
			l += cnt;
			n -= cnt;
			buf += cnt << 9;
			continue;
		}
		tags = bs_scratch_get(2 * nb * g->tag_size);
		if (!tags)
			return -ENOMEM;
		r = bs_bdev_read(ic->meta, tags, nb * g->tag_size, toff);
		if (r) {
			bs_scratch_put(tags);
			return r;
		}
		integrity_hash_tags(ic->hash, l, g->spb, buf, nb, tags + nb * g->tag_size,
				    g->tag_size);
		for (uint64_t b = 0; b < nb; b++) {
			const uint8_t *disk = tags + b * g->tag_size;
			uint64_t s = l + (b << g->log2_spb);

			if (!memcmp(disk, tags + (nb + b) * g->tag_size, g->tag_size))
				continue;
			if (s >= limit)
				continue; /* not recalculated yet */
			if (ic->bm.recalc) {
				bool dirty;

				pthread_mutex_lock(&ic->bm.lock);
				dirty = bits_all(ic->bm.recalc, s >> ic->bm.shift,
						 s >> ic->bm.shift, true);
				pthread_mutex_unlock(&ic->bm.lock);
				if (dirty)
					continue; /* dirty at an unclean stop, being recalculated */
			}
			if (ic->discards) {
				unsigned k;

				for (k = 0; k < g->tag_size && disk[k] == DISCARD_FILLER; k++)
					;
				if (k == g->tag_size)
					continue; /* discarded */
			}
			report_mismatch(ic, s);
			if (ic->mode != 'R')
				res = -EILSEQ;
		}
		bs_scratch_put(tags);
		l += cnt;
		n -= cnt;
		buf += cnt << 9;
	}
	return res;
}

/*
 * Writes BUF to [l, l+n) in place with its tags: computed, or in external mode XTAGS (not
 * written when NULL).  The caller holds the range.
 */
static int write_inplace(struct integ *ic, uint64_t l, uint64_t n, const uint8_t *buf,
			 const uint8_t *xtags, unsigned flags)
{
	const struct integrity_geom *g = &ic->g;

	while (n) {
		uint64_t dsec, toff, left, cnt, nb;
		uint8_t *tags;
		int r;

		integrity_geom_map(g, l, &dsec, &toff, &left);
		cnt = n < left ? n : left;
		if (cnt > CHUNK_SECTORS)
			cnt = CHUNK_SECTORS;
		nb = cnt >> g->log2_spb;
		if (ic->external) {
			r = bs_bdev_write(ic->dev, buf, cnt << 9, dsec << 9, flags & BS_IO_FUA);
			if (!r && xtags)
				r = bs_bdev_write(ic->meta, xtags, nb * g->tag_size, toff,
						  flags & BS_IO_FUA);
			if (r)
				return r;
			if (xtags)
				xtags += nb * g->tag_size;
			l += cnt;
			n -= cnt;
			buf += cnt << 9;
			continue;
		}
		tags = bs_scratch_get(nb * g->tag_size);
		if (!tags)
			return -ENOMEM;
		integrity_hash_tags(ic->hash, l, g->spb, buf, nb, tags, g->tag_size);
		r = bs_bdev_write(ic->dev, buf, cnt << 9, dsec << 9, flags & BS_IO_FUA);
		if (!r)
			r = bs_bdev_write(ic->meta, tags, nb * g->tag_size, toff,
					  flags & BS_IO_FUA);
		bs_scratch_put(tags);
		if (r)
			return r;
		l += cnt;
		n -= cnt;
		buf += cnt << 9;
	}
	return 0;
}

/* ---- bitmap mode ---------------------------------------------------------------------------- */

static uint64_t bitmap_off(struct integ *ic)
{
	return (ic->start + SB_SECTORS) << 9;
}

/* Writes bitmap blocks [a, b] (4 KiB each) with FUA.  Under bm.lock. */
static int bm_write_blocks(struct integ *ic, uint64_t a, uint64_t b)
{
	return bs_bdev_write(ic->meta, ic->bm.disk + a * BITMAP_BLOCK_SIZE,
			     (b - a + 1) * BITMAP_BLOCK_SIZE,
			     bitmap_off(ic) + a * BITMAP_BLOCK_SIZE, BS_IO_FUA);
}

/* Makes sure the regions of [l, l+n) are marked dirty on disk before they are written. */
static int bm_mark(struct integ *ic, uint64_t l, uint64_t n)
{
	struct bitmapst *bm = &ic->bm;
	uint64_t a = l >> bm->shift, b = (l + n - 1) >> bm->shift;
	int r = 0;

	pthread_mutex_lock(&bm->lock);
	if (!bits_all(bm->may_write, a, b, true)) {
		bits_op(bm->disk, a, b, true);
		r = bm_write_blocks(ic, a / 8 / BITMAP_BLOCK_SIZE, b / 8 / BITMAP_BLOCK_SIZE);
		if (!r)
			bits_op(bm->may_write, a, b, true);
		bm->dirty = true;
	}
	pthread_mutex_unlock(&bm->lock);
	return r;
}

/*
 * Flushes data and tags, then clears the bits of regions no longer dirty (bitmap_flush_work).
 * The bulk of the flush happens before writes are held off; holding the whole device, a
 * second flush then covers only what was written meanwhile.
 */
static int bm_flush(struct integ *ic)
{
	struct bitmapst *bm = &ic->bm;
	uint64_t provided = ic->g.provided_data_sectors, limit = provided;
	struct range all;
	int r;

	r = flush_devs(ic);
	if (r) {
		set_failed(ic, "flushing", r);
		return r;
	}
	rl_lock(&ic->rl, &all, 0, provided);
	r = flush_devs(ic);
	if (!r) {
		uint64_t rs = recalc_limit(ic);

		if (rs != UINT64_MAX)
			limit = rs >> bm->shift << bm->shift;
		pthread_mutex_lock(&bm->lock);
		if (limit) {
			bits_op(bm->disk, 0, (limit - 1) >> bm->shift, false);
			bits_op(bm->may_write, 0, (limit - 1) >> bm->shift, false);
		}
		r = bm_write_blocks(ic, 0, bm->bytes / BITMAP_BLOCK_SIZE - 1);
		bm->dirty = false;
		bm->last_flush_ms = now_ms();
		pthread_mutex_unlock(&bm->lock);
	}
	rl_unlock(&ic->rl, &all);
	if (r)
		set_failed(ic, "flushing the bitmap", r);
	return r;
}

/* ---- journal mode ---------------------------------------------------------------------------- */

static uint32_t jpos(struct integ *ic, unsigned section, unsigned entry)
{
	return section * ic->g.section_entries + entry;
}

static uint32_t idx_bucket(struct journal *j, uint64_t block)
{
	return (uint32_t)((block * 0x9E3779B97F4A7C15ull) >> 32) & (j->nbuckets - 1);
}

static uint32_t idx_find(struct journal *j, uint64_t block)
{
	for (uint32_t p = j->head[idx_bucket(j, block)]; p != NONE; p = j->next[p])
		if (j->block[p] == block)
			return p;
	return NONE;
}

static void idx_remove(struct journal *j, uint32_t pos)
{
	if (j->prev[pos] == NONE)
		j->head[idx_bucket(j, j->block[pos])] = j->next[pos];
	else
		j->next[j->prev[pos]] = j->next[pos];
	if (j->next[pos] != NONE)
		j->prev[j->next[pos]] = j->prev[pos];
	j->indexed--;
}

static void idx_set(struct journal *j, uint64_t block, uint32_t pos)
{
	uint32_t old = idx_find(j, block);
	uint32_t b = idx_bucket(j, block);

	if (old != NONE) {
		idx_remove(j, old);
		j->succ[old] = pos;
	}
	j->block[pos] = block;
	j->succ[pos] = NONE;
	j->prev[pos] = NONE;
	j->next[pos] = j->head[b];
	if (j->head[b] != NONE)
		j->prev[j->head[b]] = pos;
	j->head[b] = pos;
	j->indexed++;
}

static bool section_in(struct integ *ic, unsigned s, unsigned first, unsigned n)
{
	unsigned rel = (s + ic->g.journal_sections - first) % ic->g.journal_sections;

	return rel < n;
}

enum pad { PAD_ALWAYS, PAD_IF_EMPTY };

/*
 * Commits the filled sections: stamps their commit ids and writes them to the journal (not
 * yet durable: j_sync() makes them so).  The section being filled is closed first (its free
 * entries given up) with PAD_ALWAYS, or with PAD_IF_EMPTY only when no whole section waits
 * for a commit.
 */
static int j_commit(struct integ *ic, enum pad pad)
{
	struct journal *j = &ic->j;
	const struct integrity_geom *g = &ic->g;
	unsigned first, n, seq;
	int r = 0;

	pthread_mutex_lock(&j->sync_lock);
	pthread_mutex_lock(&j->lock);
	if (j->free_section_entry && (pad == PAD_ALWAYS || j->n_uncommitted == 0)) {
		j->free_entries -= g->section_entries - j->free_section_entry;
		j->free_section_entry = 0;
		j->free_section = (j->free_section + 1) % g->journal_sections;
		j->n_uncommitted++;
	}
	first = j->uncommitted_section;
	n = j->n_uncommitted;
	for (;;) {
		bool busy = false;

		for (unsigned k = 0; k < n && !busy; k++)
			busy = j->inprogress[(first + k) % g->journal_sections] != 0;
		if (!busy)
			break;
		pthread_cond_wait(&j->cond, &j->lock);
	}
	seq = j->commit_seq;
	pthread_mutex_unlock(&j->lock);
	if (n) {
		unsigned end_seq = seq;

		integrity_journal_stamp(g, j->buf, first, n, seq);
		if (first + n >= g->journal_sections)
			end_seq = (seq + (first + n) / g->journal_sections) % N_COMMIT_IDS;
		r = integrity_journal_write(ic->meta, g, j->buf, first, n, 0);
		pthread_mutex_lock(&j->lock);
		j->commit_seq = end_seq;
		j->uncommitted_section = (first + n) % g->journal_sections;
		j->n_uncommitted -= n;
		j->n_committed += n;
		j->wrote = true;
		if (!j->n_uncommitted && !j->free_section_entry)
			atomic_store(&j->dirty_ms, 0);
		pthread_mutex_unlock(&j->lock);
		if (r)
			set_failed(ic, "writing the journal", r);
	}
	pthread_mutex_unlock(&j->sync_lock);
	return r;
}

/* Writes entries [a, b) of section S (consecutive blocks in one area) to their places. */
static int j_write_run(struct integ *ic, unsigned s, unsigned a, unsigned b)
{
	const struct integrity_geom *g = &ic->g;
	struct journal *j = &ic->j;
	uint64_t sector = ij_entry_sector(ij_entry(g, j->buf, s, a));
	uint64_t dsec, toff, left;
	int r;

	integrity_geom_map(g, sector, &dsec, &toff, &left);
	for (unsigned k = a; k < b; k++) {
		ij_entry_restore(g, j->buf, s, k);
		memcpy(j->tags + (size_t)(k - a) * g->tag_size,
		       ij_entry_tag(g, ij_entry(g, j->buf, s, k)), g->tag_size);
	}
	r = bs_bdev_write(ic->dev, ij_data(g, j->buf, s, a), (uint64_t)(b - a) << (g->log2_spb + 9),
			  dsec << 9, 0);
	if (!r)
		r = bs_bdev_write(ic->meta, j->tags, (uint64_t)(b - a) * g->tag_size, toff, 0);
	return r;
}

/*
 * Writes every durable block (committed, then flushed by j_sync()) to its place; the
 * sections are freed by the next j_sync(), once these writes are durable too.
 */
static int j_writeback(struct integ *ic)
{
	struct journal *j = &ic->j;
	const struct integrity_geom *g = &ic->g;
	unsigned first, n;
	int r = 0;

	pthread_mutex_lock(&j->wb_lock);
	pthread_mutex_lock(&j->lock);
	first = j->durable_section;
	n = j->n_durable;
	pthread_mutex_unlock(&j->lock);
	for (unsigned k = 0; k < n && !r; k++) {
		unsigned s = (first + k) % g->journal_sections;

		for (unsigned e = 0; e < g->section_entries && !r;) {
			uint8_t *ent = ij_entry(g, j->buf, s, e);
			uint64_t sector, dsec, toff, left;
			bool skip[JBATCH];
			struct range rg;
			unsigned f, a;

			if (ij_entry_unused(ent)) {
				e++;
				continue;
			}
			sector = ij_entry_sector(ent);
			integrity_geom_map(g, sector, &dsec, &toff, &left);
			for (f = e + 1; f < g->section_entries && f - e < JBATCH; f++) {
				uint8_t *nx = ij_entry(g, j->buf, s, f);

				if (ij_entry_unused(nx) ||
				    ij_entry_sector(nx) !=
					sector + ((uint64_t)(f - e) << g->log2_spb) ||
				    ((uint64_t)(f - e) << g->log2_spb) >= left)
					break;
			}
			rl_lock(&ic->rl, &rg, sector, (uint64_t)(f - e) << g->log2_spb);
			/* blocks rewritten by a newer entry of this pass need not be written */
			pthread_mutex_lock(&j->lock);
			for (unsigned k2 = e; k2 < f; k2++) {
				uint32_t q = j->succ[jpos(ic, s, k2)];

				skip[k2 - e] =
				    q != NONE && section_in(ic, q / g->section_entries, first, n);
			}
			pthread_mutex_unlock(&j->lock);
			for (a = e; a < f && !r;) {
				unsigned b;

				if (skip[a - e]) {
					a++;
					continue;
				}
				for (b = a + 1; b < f && !skip[b - e]; b++)
					;
				r = j_write_run(ic, s, a, b);
				a = b;
			}
			pthread_mutex_lock(&j->lock);
			for (unsigned k2 = e; k2 < f; k2++) {
				uint32_t p = jpos(ic, s, k2);

				if (j->succ[p] == NONE)
					idx_remove(j, p); /* still the newest: in the index */
				ij_entry_set_unused(ij_entry(g, j->buf, s, k2));
			}
			pthread_mutex_unlock(&j->lock);
			rl_unlock(&ic->rl, &rg);
			e = f;
		}
	}
	if (!r) {
		pthread_mutex_lock(&j->lock);
		j->durable_section = (first + n) % g->journal_sections;
		j->n_durable -= n;
		j->n_written += n;
		pthread_mutex_unlock(&j->lock);
	} else {
		set_failed(ic, "writing back the journal", r);
	}
	pthread_mutex_unlock(&j->wb_lock);
	if (n && ic->worker_on)
		kick_worker(ic); /* a flush now frees these sections */
	return r;
}

/*
 * Flushes the devices: what was committed before is then durable (and may be written back),
 * and so is what was written back before, whose sections are freed.
 */
static int j_sync(struct integ *ic)
{
	struct journal *j = &ic->j;
	unsigned w, c;
	int r;

	pthread_mutex_lock(&j->sync_lock);
	pthread_mutex_lock(&j->lock);
	w = j->n_written;
	c = j->n_committed;
	pthread_mutex_unlock(&j->lock);
	r = flush_devs(ic);
	if (r) {
		set_failed(ic, "flushing", r);
	} else if (w || c) {
		pthread_mutex_lock(&j->lock);
		j->written_section = (j->written_section + w) % ic->g.journal_sections;
		j->n_written -= w;
		j->free_entries += w * ic->g.section_entries;
		j->committed_section = (j->committed_section + c) % ic->g.journal_sections;
		j->n_committed -= c;
		j->n_durable += c;
		pthread_cond_broadcast(&j->cond);
		if (c)
			pthread_cond_signal(&j->wb_cond);
		pthread_mutex_unlock(&j->lock);
	}
	pthread_mutex_unlock(&j->sync_lock);
	return r;
}

/*
 * Everything in the journal made durable in place, and the journal free (but for what
 * others write meanwhile).
 */
static int j_drain(struct integ *ic)
{
	int r = j_commit(ic, PAD_ALWAYS);

	if (!r)
		r = j_sync(ic);
	if (!r)
		r = j_writeback(ic);
	return r ? r : j_sync(ic);
}

/* The writer thread: writes back what j_sync() made durable, while the worker commits and
 * flushes the next sections. */
static void *writer_main(void *arg)
{
	struct integ *ic = arg;
	struct journal *j = &ic->j;

	pthread_mutex_lock(&j->lock);
	while (!j->writer_quit) {
		if (j->n_durable && !atomic_load(&ic->failed)) {
			pthread_mutex_unlock(&j->lock);
			j_writeback(ic);
			pthread_mutex_lock(&j->lock);
			continue;
		}
		pthread_cond_wait(&j->wb_cond, &j->lock);
	}
	pthread_mutex_unlock(&j->lock);
	bs_scratch_release_thread();
	return NULL;
}

/*
 * Journal-mode write of BUF (NULL: zeroes) to [l, l+n); in external mode the entries get the
 * tags from XTAGS (zeroes when NULL, as Linux).
 */
static int j_write(struct integ *ic, uint64_t l, uint64_t n, const uint8_t *buf,
		   const uint8_t *xtags, unsigned flags)
{
	const struct integrity_geom *g = &ic->g;
	struct journal *j = &ic->j;
	uint64_t nb = n >> g->log2_spb, done = 0;
	const size_t bbytes = (size_t)g->spb << 9;

	while (done < nb) {
		uint32_t got, first_pos[2];
		unsigned s, e;
		uint8_t *tags;
		bool low;

		pthread_mutex_lock(&j->lock);
		while (!j->free_entries && !atomic_load(&ic->failed)) {
			pthread_mutex_unlock(&j->lock);
			if (ic->worker_on) {
				kick_worker(ic);
			} else {
				/* nobody else frees the journal: do it here */
				j_drain(ic);
			}
			pthread_mutex_lock(&j->lock);
			if (!j->free_entries && !atomic_load(&ic->failed) && ic->worker_on)
				pthread_cond_wait(&j->cond, &j->lock);
		}
		if (atomic_load(&ic->failed)) {
			pthread_mutex_unlock(&j->lock);
			return -EIO;
		}
		got = nb - done < j->free_entries ? (uint32_t)(nb - done) : j->free_entries;
		if (got > CHUNK_SECTORS)
			got = CHUNK_SECTORS;
		s = j->free_section;
		e = j->free_section_entry;
		first_pos[0] = s;
		first_pos[1] = e;
		for (uint32_t k = 0; k < got; k++) {
			uint32_t p = jpos(ic, j->free_section, j->free_section_entry);

			j->busy[p] = 1;
			j->inprogress[j->free_section]++;
			idx_set(j, (l >> g->log2_spb) + done + k, p);
			if (++j->free_section_entry == g->section_entries) {
				j->free_section_entry = 0;
				j->free_section = (j->free_section + 1) % g->journal_sections;
				j->n_uncommitted++;
			}
		}
		j->free_entries -= got;
		low = j->free_entries <= j->threshold ||
		      j->n_uncommitted >= (g->journal_sections + 7) / 8;
		if (!atomic_load(&j->dirty_ms))
			atomic_store(&j->dirty_ms, now_ms());
		pthread_mutex_unlock(&j->lock);

		/* fill the reserved entries: tags for the whole piece, then the blocks */
		tags = bs_scratch_get((size_t)got * g->tag_size);
		if (!tags)
			return -ENOMEM; /* entries stay busy: cannot happen for sane sizes */
		if (!ic->external)
			integrity_hash_tags(ic->hash, l + (done << g->log2_spb), g->spb,
					    buf ? buf + done * bbytes : NULL, got, tags,
					    g->tag_size);
		else if (xtags)
			memcpy(tags, xtags + done * g->tag_size, (size_t)got * g->tag_size);
		else
			memset(tags, 0, (size_t)got * g->tag_size);
		/* the data of consecutive entries of a section is contiguous: one copy each */
		s = first_pos[0];
		e = first_pos[1];
		for (uint32_t k = 0; k < got;) {
			uint32_t cnt =
			    got - k < g->section_entries - e ? got - k : g->section_entries - e;
			uint8_t *d = ij_data(g, j->buf, s, e);

			if (buf)
				memcpy(d, buf + (done + k) * bbytes, cnt * bbytes);
			else
				memset(d, 0, cnt * bbytes);
			for (uint32_t i = 0; i < cnt; i++) {
				uint8_t *ent = ij_entry(g, j->buf, s, e + i);
				const uint8_t *bd = d + i * bbytes;

				for (unsigned q = 0; q < g->spb; q++)
					memcpy(ij_entry_last_bytes(ent, q),
					       bd + ((size_t)q << 9) + JOURNAL_SECTOR_DATA, 8);
				memcpy(ij_entry_tag(g, ent), tags + (size_t)(k + i) * g->tag_size,
				       g->tag_size);
				ij_entry_set_sector(ent, l + ((done + k + i) << g->log2_spb));
			}
			k += cnt;
			e = 0;
			s = (s + 1) % g->journal_sections;
		}
		bs_scratch_put(tags);
		pthread_mutex_lock(&j->lock);
		s = first_pos[0];
		e = first_pos[1];
		for (uint32_t k = 0; k < got; k++) {
			j->busy[jpos(ic, s, e)] = 0;
			j->inprogress[s]--;
			if (++e == g->section_entries) {
				e = 0;
				s = (s + 1) % g->journal_sections;
			}
		}
		pthread_cond_broadcast(&j->cond);
		pthread_mutex_unlock(&j->lock);
		if (low)
			kick_worker(ic);
		done += got;
	}
	if (flags & BS_IO_FUA) {
		int r = j_commit(ic, PAD_ALWAYS);

		return r ? r : j_sync(ic);
	}
	return 0;
}

/*
 * Journal-mode read: blocks still in the journal come from there, the rest from their places
 * (in external mode with their tags, to XTAGS when not NULL).
 */
static int j_read(struct integ *ic, uint64_t l, uint64_t n, uint8_t *buf, uint8_t *xtags)
{
	const struct integrity_geom *g = &ic->g;
	struct journal *j = &ic->j;
	uint64_t nb = n >> g->log2_spb;
	const size_t bbytes = (size_t)g->spb << 9;
	struct range rg;
	int res = 0;

	rl_lock(&ic->rl, &rg, l, n);
	for (uint64_t done = 0; done < nb;) {
		unsigned cnt = nb - done < JBATCH ? (unsigned)(nb - done) : JBATCH;
		bool from_j[JBATCH];

		memset(from_j, 0, sizeof(from_j));
		pthread_mutex_lock(&j->lock);
		if (j->indexed) {
			for (unsigned k = 0; k < cnt; k++) {
				uint32_t p = idx_find(j, (l >> g->log2_spb) + done + k);

				if (p == NONE)
					continue;
				if (j->busy[p]) {
					pthread_cond_wait(&j->cond, &j->lock);
					k = (unsigned)-1; /* the index may have changed: look again
							   */
					memset(from_j, 0, sizeof(from_j));
					continue;
				}
				ij_entry_read(g, j->buf, p / g->section_entries,
					      p % g->section_entries, buf + (done + k) * bbytes);
				if (xtags)
					memcpy(xtags + (done + k) * g->tag_size,
					       ij_entry_tag(g, ij_entry(g, j->buf,
									p / g->section_entries,
									p % g->section_entries)),
					       g->tag_size);
				from_j[k] = true;
			}
		}
		pthread_mutex_unlock(&j->lock);
		for (unsigned a = 0; a < cnt;) {
			unsigned b;
			int r;

			if (from_j[a]) {
				a++;
				continue;
			}
			for (b = a + 1; b < cnt && !from_j[b]; b++)
				;
			r = read_inplace(ic, l + ((done + a) << g->log2_spb),
					 (uint64_t)(b - a) << g->log2_spb,
					 buf + (done + a) * bbytes,
					 xtags ? xtags + (done + a) * g->tag_size : NULL);
			if (r && (r != -EILSEQ || !res))
				res = r;
			a = b;
		}
		done += cnt;
	}
	rl_unlock(&ic->rl, &rg);
	return res;
}

/* ---- recalculation ------------------------------------------------------------------------- */

/* One step of recalculation; returns false when there is nothing left. */
static bool recalc_step(struct integ *ic)
{
	const struct integrity_geom *g = &ic->g;
	uint64_t provided = g->provided_data_sectors, l, end, a, e, dsec, toff, left;
	struct bitmapst *bm = &ic->bm;
	int r = 0;

	l = recalc_limit(ic);
	if (ic->external)
		return false; /* tags from above cannot be recalculated */
	if (l >= provided) {
		if (bm->recalc) {
			pthread_mutex_lock(&bm->lock);
			memset(bm->recalc, 0, bm->bytes);
			pthread_mutex_unlock(&bm->lock);
		}
		pthread_mutex_lock(&ic->sb_lock);
		if ((ic->sb.flags & SB_FLAG_RECALCULATING) && ic->sb.recalc_sector > provided)
			ic->sb.recalc_sector = provided;
		pthread_mutex_unlock(&ic->sb_lock);
		r = flush_devs(ic);
		if (!r)
			r = write_sb(ic);
		if (r)
			set_failed(ic, "writing the superblock", r);
		else
			bs_info("integrity %s: recalculation done", ic->name);
		if (!r && ic->mode == 'B')
			bm_flush(ic);
		return false;
	}
	integrity_geom_map(g, l, &dsec, &toff, &left);
	end = l + (provided - l < left ? provided - l : left);
	if (end > l + RECALC_SECTORS)
		end = l + RECALC_SECTORS;
	a = l;
	e = end;
	if (bm->recalc) {
		/* only the blocks of regions that were dirty */
		pthread_mutex_lock(&bm->lock);
		while (a < e && bits_all(bm->recalc, a >> bm->shift, a >> bm->shift, false))
			a += g->spb;
		while (e > a &&
		       bits_all(bm->recalc, (e - 1) >> bm->shift, (e - 1) >> bm->shift, false))
			e -= g->spb;
		pthread_mutex_unlock(&bm->lock);
	}
	if (a < e) {
		uint64_t nb = (e - a) >> g->log2_spb;
		struct range rg;
		uint8_t *data, *tags;

		rl_lock(&ic->rl, &rg, a, e - a);
		data = bs_scratch_get((e - a) << 9);
		tags = data ? bs_scratch_get(nb * g->tag_size) : NULL;
		if (!tags) {
			r = -ENOMEM;
		} else {
			integrity_geom_map(g, a, &dsec, &toff, &left);
			r = bs_bdev_read(ic->dev, data, (e - a) << 9, dsec << 9);
			if (!r) {
				integrity_hash_tags(ic->hash, a, g->spb, data, nb, tags,
						    g->tag_size);
				r = bs_bdev_write(ic->meta, tags, nb * g->tag_size, toff, 0);
			}
		}
		if (tags)
			bs_scratch_put(tags);
		if (data)
			bs_scratch_put(data);
		rl_unlock(&ic->rl, &rg);
		if (r) {
			set_failed(ic, "recalculating tags", r);
			return false;
		}
	}
	if (bm->recalc && (end >> bm->shift) > (l >> bm->shift)) {
		pthread_mutex_lock(&bm->lock);
		bits_op(bm->recalc, l >> bm->shift, (end >> bm->shift) - 1, false);
		pthread_mutex_unlock(&bm->lock);
	}
	pthread_mutex_lock(&ic->sb_lock);
	ic->sb.recalc_sector = end;
	pthread_mutex_unlock(&ic->sb_lock);
	if (++ic->recalc_steps % RECALC_WRITE_SUPER == 0) {
		r = flush_devs(ic);
		if (!r)
			r = write_sb(ic);
		if (r) {
			set_failed(ic, "writing the superblock", r);
			return false;
		}
	}
	return true;
}

/* ---- worker thread --------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct integ *ic = arg;

	pthread_mutex_lock(&ic->wl);
	while (!ic->quit) {
		uint64_t now = now_ms(), wait_ms = 1000;

		if (atomic_load(&ic->failed)) {
			pthread_cond_wait(&ic->wc, &ic->wl);
			continue;
		}
		ic->kick = false;
		if (ic->mode == 'J') {
			uint64_t dirty = atomic_load(&ic->j.dirty_ms);
			bool timer = dirty && now >= dirty + ic->commit_ms;
			bool low;

			/*
			 * Past the watermark, or once an eighth of the journal is filled: writing
			 * back in small rounds keeps writers from waiting for free entries.
			 */
			pthread_mutex_lock(&ic->j.lock);
			low = (ic->j.free_entries <= ic->j.threshold &&
			       (ic->j.n_uncommitted || ic->j.free_section_entry ||
				ic->j.n_committed || ic->j.n_written)) ||
			      ic->j.n_uncommitted >= (ic->g.journal_sections + 7) / 8;
			pthread_mutex_unlock(&ic->j.lock);
			if (timer || low) {
				pthread_mutex_unlock(&ic->wl);
				if (!j_commit(ic, timer ? PAD_ALWAYS : PAD_IF_EMPTY))
					j_sync(ic);
				if (!ic->j.writer_on)
					j_writeback(ic);
				pthread_mutex_lock(&ic->wl);
				continue;
			}
			if (dirty && dirty + ic->commit_ms - now < wait_ms)
				wait_ms = dirty + ic->commit_ms - now;
		}
		if (ic->mode == 'B') {
			bool dirty;
			uint64_t due;

			pthread_mutex_lock(&ic->bm.lock);
			dirty = ic->bm.dirty;
			due = ic->bm.last_flush_ms + ic->bitmap_flush_ms;
			pthread_mutex_unlock(&ic->bm.lock);
			if (dirty && now >= due) {
				pthread_mutex_unlock(&ic->wl);
				bm_flush(ic);
				pthread_mutex_lock(&ic->wl);
				continue;
			}
			if (dirty && due - now < wait_ms)
				wait_ms = due - now;
		}
		if (atomic_load(&ic->recalc_run)) {
			bool more;

			pthread_mutex_unlock(&ic->wl);
			more = recalc_step(ic);
			pthread_mutex_lock(&ic->wl);
			if (!more)
				atomic_store(&ic->recalc_run, false);
			continue;
		}
		{
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (time_t)(wait_ms / 1000);
			ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (!ic->kick && !ic->quit)
				pthread_cond_timedwait(&ic->wc, &ic->wl, &ts);
		}
	}
	pthread_mutex_unlock(&ic->wl);
	bs_scratch_release_thread();
	return NULL;
}

static void stop_worker(struct integ *ic)
{
	if (ic->j.writer_on) {
		pthread_mutex_lock(&ic->j.lock);
		ic->j.writer_quit = true;
		pthread_cond_signal(&ic->j.wb_cond);
		pthread_mutex_unlock(&ic->j.lock);
		pthread_join(ic->j.writer, NULL);
		ic->j.writer_on = false;
	}
	if (!ic->worker_on)
		return;
	pthread_mutex_lock(&ic->wl);
	ic->quit = true;
	pthread_cond_signal(&ic->wc);
	pthread_mutex_unlock(&ic->wl);
	pthread_join(ic->worker, NULL);
	ic->worker_on = false;
}

/* ---- constructor ----------------------------------------------------------------------------- */

static int parse_u32_opt(struct bs_target *t, const char *o, const char *v, uint32_t *out)
{
	if (bs_parse_u32(v, out))
		return bs_target_error(t, "invalid %.*s argument \"%s\"", (int)(v - o - 1), o, v);
	return 0;
}

static int set_key_hex(struct bs_target *t, struct integ *ic, const char *hex)
{
	size_t len = strlen(hex);

	if (!len || len % 2 || len / 2 > INTEGRITY_HASH_MAX_KEY)
		return bs_target_error(t, "invalid internal_hash key (expected an even number of "
					  "hex digits)");
	ic->key = bs_secure_alloc(len / 2);
	ic->key_hex = bs_secure_strdup(hex);
	if (!ic->key || !ic->key_hex)
		return -ENOMEM;
	if (bs_hex_decode(hex, ic->key, len / 2))
		return bs_target_error(t, "invalid internal_hash key (not hexadecimal)");
	ic->key_len = len / 2;
	return 0;
}

static int parse_options(struct bs_target *t, struct integ *ic, unsigned argc, char **argv,
			 const char **meta_path)
{
	uint32_t n;

	if (bs_parse_u32(argv[0], &n) || n != argc - 1 || n > 18)
		return bs_target_error(t, "invalid number of feature args");
	for (unsigned i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *v = strchr(o, ':');
		int r = 0;

		v = v ? v + 1 : NULL;
		if (!strncmp(o, "journal_sectors:", 16)) {
			r = parse_u32_opt(t, o, v, &ic->journal_sectors);
			if (!ic->journal_sectors)
				ic->journal_sectors = 1;
			ic->journal_sectors_set = true;
		} else if (!strncmp(o, "interleave_sectors:", 19)) {
			r = parse_u32_opt(t, o, v, &ic->interleave_sectors);
		} else if (!strncmp(o, "buffer_sectors:", 15)) {
			r = parse_u32_opt(t, o, v, &ic->buffer_sectors);
		} else if (!strncmp(o, "journal_watermark:", 18)) {
			r = parse_u32_opt(t, o, v, &ic->watermark);
			if (!r && ic->watermark > 100)
				r = bs_target_error(t, "invalid journal_watermark \"%s\" (0-100)",
						    v);
		} else if (!strncmp(o, "commit_time:", 12)) {
			r = parse_u32_opt(t, o, v, &ic->commit_ms);
		} else if (!strncmp(o, "meta_device:", 12)) {
			if (!*v)
				r = bs_target_error(t, "invalid meta_device argument");
			*meta_path = v;
		} else if (!strncmp(o, "block_size:", 11)) {
			uint32_t bsz;

			r = parse_u32_opt(t, o, v, &bsz);
			if (!r &&
			    (bsz < 512 || bsz > 512 * MAX_SECTORS_PER_BLOCK || (bsz & (bsz - 1))))
				r = bs_target_error(t, "invalid block_size argument \"%s\"", v);
			if (!r)
				ic->sectors_per_block = bsz >> 9;
		} else if (!strncmp(o, "sectors_per_bit:", 16)) {
			if (bs_parse_u64(v, &ic->sectors_per_bit))
				r = bs_target_error(t, "invalid sectors_per_bit argument \"%s\"",
						    v);
		} else if (!strncmp(o, "bitmap_flush_interval:", 22)) {
			r = parse_u32_opt(t, o, v, &ic->bitmap_flush_ms);
		} else if (!strncmp(o, "internal_hash:", 14)) {
			const char *k = strchr(v, ':');
			size_t al = k ? (size_t)(k - v) : strlen(v);

			if (!al || al >= sizeof(ic->alg))
				return bs_target_error(t, "invalid internal_hash argument");
			memcpy(ic->alg, v, al);
			ic->alg[al] = '\0';
			bs_secure_free(ic->key);
			bs_secure_free(ic->key_hex);
			ic->key = NULL;
			ic->key_hex = NULL;
			ic->key_len = 0;
			if (k)
				r = set_key_hex(t, ic, k + 1);
		} else if (!strncmp(o, "journal_crypt:", 14)) {
			return bs_target_error(t, "journal_crypt is not supported (journal "
						  "encryption); open without it");
		} else if (!strncmp(o, "journal_mac:", 12)) {
			return bs_target_error(t, "journal_mac is not supported (journal "
						  "authentication); open without it");
		} else if (!strcmp(o, "recalculate")) {
			ic->recalculate = true;
		} else if (!strcmp(o, "reset_recalculate")) {
			ic->recalculate = true;
			ic->reset_recalculate = true;
		} else if (!strcmp(o, "allow_discards")) {
			ic->discards = true;
		} else if (!strcmp(o, "fix_padding")) {
			ic->fix_padding = true;
		} else if (!strcmp(o, "fix_hmac")) {
			ic->fix_hmac = true;
		} else if (!strcmp(o, "legacy_recalculate")) {
			ic->legacy_recalculate = true;
		} else {
			return bs_target_error(t, "invalid argument \"%s\"", o);
		}
		if (r)
			return r;
	}
	return 0;
}

static void integ_free(struct integ *ic)
{
	integrity_hash_free(ic->hash);
	bs_secure_free(ic->key);
	bs_secure_free(ic->key_hex);
	free(ic->j.buf);
	free(ic->j.inprogress);
	free(ic->j.busy);
	free(ic->j.head);
	free(ic->j.next);
	free(ic->j.prev);
	free(ic->j.succ);
	free(ic->j.block);
	free(ic->j.tags);
	free(ic->bm.disk);
	free(ic->bm.may_write);
	free(ic->bm.recalc);
	pthread_mutex_destroy(&ic->rl.m);
	pthread_cond_destroy(&ic->rl.c);
	pthread_mutex_destroy(&ic->j.lock);
	pthread_cond_destroy(&ic->j.cond);
	pthread_mutex_destroy(&ic->j.sync_lock);
	pthread_mutex_destroy(&ic->j.wb_lock);
	pthread_cond_destroy(&ic->j.wb_cond);
	pthread_mutex_destroy(&ic->bm.lock);
	pthread_mutex_destroy(&ic->sb_lock);
	pthread_mutex_destroy(&ic->wl);
	pthread_cond_destroy(&ic->wc);
	free(ic);
}

/*
 * Linux's dm_integrity_disable_recalculate: recalculating under an HMAC key would give valid
 * tags to whatever an attacker wrote.  (Linux allows it with fix_hmac and a journal_mac key;
 * journal_mac is not supported here.)
 */
static bool recalc_disabled(struct integ *ic)
{
	return !ic->legacy_recalculate && ic->key_len != 0;
}

static int alloc_journal(struct bs_target *t, struct integ *ic)
{
	const struct integrity_geom *g = &ic->g;
	uint64_t bytes = ((uint64_t)g->journal_sections * g->section_sectors) << 9;
	struct journal *j = &ic->j;
	uint32_t nb = 1;
	void *p;

	if (bytes > (1ull << 30))
		return bs_target_error(t, "journal doesn't fit into memory (%llu MiB)",
				       (unsigned long long)(bytes >> 20));
	if (posix_memalign(&p, 4096, bytes))
		return -ENOMEM;
	j->buf = p;
	while (nb < g->journal_entries)
		nb <<= 1;
	j->nbuckets = nb;
	j->inprogress = calloc(g->journal_sections, sizeof(*j->inprogress));
	j->busy = calloc(g->journal_entries, 1);
	j->head = malloc((size_t)nb * sizeof(*j->head));
	j->next = malloc((size_t)g->journal_entries * sizeof(*j->next));
	j->prev = malloc((size_t)g->journal_entries * sizeof(*j->prev));
	j->succ = malloc((size_t)g->journal_entries * sizeof(*j->succ));
	j->block = calloc(g->journal_entries, sizeof(*j->block));
	j->tags = malloc((size_t)g->section_entries * g->tag_size);
	if (!j->inprogress || !j->busy || !j->head || !j->next || !j->prev || !j->succ ||
	    !j->block || !j->tags)
		return -ENOMEM;
	memset(j->head, 0xff, (size_t)nb * sizeof(*j->head));
	return 0;
}

static int integ_ctr(struct bs_target *t, unsigned argc, char **argv)
{
	struct integ *ic;
	const char *meta_path = NULL, *why = NULL;
	uint64_t data_sectors, meta_sectors;
	unsigned digest;
	bool keyed, blank, fresh = false;
	uint32_t tag = 0;
	int r;

	if (argc < 5)
		return bs_target_error(t, "invalid argument count (expected <dev> <offset> "
					  "<tag_size> <mode> <#opt> [opts])");
	ic = calloc(1, sizeof(*ic));
	if (!ic)
		return -ENOMEM;
	ic->t = t;
	pthread_mutex_init(&ic->rl.m, NULL);
	pthread_cond_init(&ic->rl.c, NULL);
	pthread_mutex_init(&ic->j.lock, NULL);
	pthread_cond_init(&ic->j.cond, NULL);
	pthread_mutex_init(&ic->j.sync_lock, NULL);
	pthread_mutex_init(&ic->j.wb_lock, NULL);
	pthread_cond_init(&ic->j.wb_cond, NULL);
	pthread_mutex_init(&ic->bm.lock, NULL);
	pthread_mutex_init(&ic->sb_lock, NULL);
	pthread_mutex_init(&ic->wl, NULL);
	pthread_cond_init(&ic->wc, NULL);
	snprintf(ic->name, sizeof(ic->name), "%s",
		 t->table && t->table->owner ? bs_device_name(t->table->owner) : "-");
	ic->interleave_sectors = DEFAULT_INTERLEAVE_SECTORS;
	ic->buffer_sectors = DEFAULT_BUFFER_SECTORS;
	ic->watermark = DEFAULT_JOURNAL_WATERMARK;
	ic->commit_ms = DEFAULT_SYNC_MSEC;
	ic->bitmap_flush_ms = DEFAULT_BITMAP_FLUSH_MSEC;
	ic->sectors_per_block = 1;

	r = bs_target_parse_sector(t, argv[1], "starting offset", &ic->start);
	if (r)
		goto fail;
	if (!strcmp(argv[2], "-"))
		ic->tag_size_dash = true;
	else if (bs_parse_u32(argv[2], &tag) || !tag) {
		r = bs_target_error(t, "invalid tag size \"%s\"", argv[2]);
		goto fail;
	}
	if (!strcmp(argv[3], "I")) {
		r = bs_target_error(t, "inline mode (I) is not supported");
		goto fail;
	}
	if (strlen(argv[3]) != 1 || !strchr("JBDR", argv[3][0])) {
		r = bs_target_error(t, "invalid mode \"%s\" (expecting J, B, D, R)", argv[3]);
		goto fail;
	}
	ic->mode = argv[3][0];
	r = parse_options(t, ic, argc - 4, argv + 4, &meta_path);
	if (r)
		goto fail;
	if (!ic->alg[0]) {
		/* tags from the layer above (Linux's messages) */
		ic->external = true;
		if (!tag) {
			r = bs_target_error(t, "Unknown tag size");
			goto fail;
		}
		if (ic->recalculate) {
			r = bs_target_error(t, "Recalculate can only be specified with "
					       "internal_hash");
			goto fail;
		}
		if (ic->mode == 'B') {
			/* a dirty region's tags could not be recalculated: nothing to hash */
			r = bs_target_error(t, "bitmap mode (B) needs internal_hash here; use "
					       "journal (J) or direct (D) mode for external tags");
			goto fail;
		}
		keyed = false;
		digest = tag;
	} else if (!integrity_hash_known(ic->alg, &keyed, &digest)) {
		r = bs_target_error(t,
				    "invalid internal hash \"%s\" (crc32c, sha1, sha256, sha512, "
				    "hmac(sha1), hmac(sha256), hmac(sha512), xxhash64)",
				    ic->alg);
		goto fail;
	}
	if (keyed != (ic->key_len != 0)) {
		r = bs_target_error(
		    t, keyed ? "internal hash %s needs a key" : "internal hash %s takes no key",
		    ic->alg);
		goto fail;
	}
	ic->tag_size = tag ? tag : digest;
	if (ic->tag_size > MAX_TAG_SIZE) {
		r = bs_target_error(t, "too big tag size %u (at most %u)", ic->tag_size,
				    (unsigned)MAX_TAG_SIZE);
		goto fail;
	}
	r = bs_target_get_device(t, argv[0], "device", &ic->dev);
	if (r)
		goto fail;
	ic->meta = ic->dev;
	if (meta_path) {
		r = bs_target_get_device(t, meta_path, "meta device", &ic->meta);
		if (r)
			goto fail;
		ic->has_meta = true;
	}
	data_sectors = bs_bdev_size(ic->dev) >> 9;
	meta_sectors = bs_bdev_size(ic->meta) >> 9;
	ic->log2_buffer_sectors =
	    ic->buffer_sectors ? 31 - (unsigned)__builtin_clz(ic->buffer_sectors) : 0;
	if (ic->log2_buffer_sectors > 31 - 9)
		ic->log2_buffer_sectors = 31 - 9;

	r = integrity_sb_read(ic->meta, ic->start, &ic->sb, &blank, &why);
	if (r == -ENOENT && blank && ic->mode != 'R' && !t->readonly) {
		struct integrity_format_params p = {
		    /* without a hash the tag size is given and the name only has to be known */
		    .alg = ic->external ? "crc32c" : ic->alg,
		    .tag_size = ic->tag_size,
		    .sector_size = ic->sectors_per_block << 9,
		    .journal_sectors = ic->journal_sectors_set ? ic->journal_sectors : 0,
		    .interleave_sectors = ic->interleave_sectors,
		    .buffer_sectors = ic->buffer_sectors ? ic->buffer_sectors : 1,
		    .sectors_per_bit = ic->sectors_per_bit,
		    .fix_padding = ic->fix_padding,
		    .fix_hmac = ic->fix_hmac && !ic->external, /* no key: nothing to salt */
		    .mode = ic->mode,
		};

		r = integrity_sb_create(&p, ic->has_meta, ic->start, data_sectors, meta_sectors,
					NULL, &ic->sb, &ic->g, &why);
		if (r) {
			r = bs_target_error(t, "could not initialize superblock: %s", why);
			goto fail;
		}
		fresh = true;
	} else if (r == -ENOENT) {
		r = bs_target_error(t, "%s: %s",
				    blank ? "the device is not formatted (zero "
					    "superblock) and cannot be formatted here"
					  : "the device is not initialized",
				    ic->meta->name);
		goto fail;
	} else if (r) {
		r = bs_target_error(t, "%s: %s", ic->meta->name, why);
		goto fail;
	}
	if (ic->sb.tag_size != ic->tag_size) {
		r = bs_target_error(t,
				    "tag size %u doesn't match the information in the "
				    "superblock (%u)",
				    ic->tag_size, ic->sb.tag_size);
		goto fail;
	}
	if (ic->sb.log2_sectors_per_block != (unsigned)__builtin_ctz(ic->sectors_per_block)) {
		r = bs_target_error(t,
				    "block size %u doesn't match the information in the "
				    "superblock (%u)",
				    ic->sectors_per_block << 9,
				    512u << ic->sb.log2_sectors_per_block);
		goto fail;
	}
	if (ic->sb.flags & SB_FLAG_HAVE_JOURNAL_MAC) {
		r = bs_target_error(t, "the superblock says the journal has a MAC (journal_mac), "
				       "which is not supported");
		goto fail;
	}
	r = integrity_geom_init(&ic->g, &ic->sb, ic->has_meta, ic->start, data_sectors,
				meta_sectors, ic->log2_buffer_sectors, &why);
	if (r) {
		r = bs_target_error(t, "%s", why);
		goto fail;
	}
	if (!integrity_geom_fit(&ic->g)) {
		if (ic->has_meta) {
			while (ic->g.log2_buffer_sectors > 3 && !ic->g.provided_data_sectors) {
				ic->g.log2_buffer_sectors--;
				integrity_geom_fit(&ic->g);
			}
			ic->log2_buffer_sectors = ic->g.log2_buffer_sectors;
		}
		if (!ic->g.provided_data_sectors) {
			r = bs_target_error(t, "the device is too small");
			goto fail;
		}
	}
	if (!ic->has_meta) {
		unsigned lr = (unsigned)__builtin_ctzll(ic->g.metadata_run);

		if (ic->log2_buffer_sectors > lr)
			ic->log2_buffer_sectors = lr;
	}
	if (t->len > ic->g.provided_data_sectors) {
		r = bs_target_error(t,
				    "not enough provided sectors for requested mapping size "
				    "(%llu sectors available)",
				    (unsigned long long)ic->g.provided_data_sectors);
		goto fail;
	}
	ic->log2_spbit = integrity_geom_log2_sectors_per_bit(&ic->g, ic->sectors_per_bit);
	if (fresh)
		ic->sb.log2_blocks_per_bitmap_bit = (uint8_t)(ic->log2_spbit - ic->g.log2_spb);
	{
		uint64_t th = (uint64_t)ic->g.journal_entries * (100 - ic->watermark) + 50;

		ic->j.threshold = (uint32_t)(th / 100);
	}
	if (ic->recalculate && !(ic->sb.flags & SB_FLAG_RECALCULATING)) {
		ic->sb.flags |= SB_FLAG_RECALCULATING;
		ic->sb.recalc_sector = 0;
	}
	if ((ic->sb.flags & SB_FLAG_RECALCULATING) &&
	    ic->sb.recalc_sector < ic->g.provided_data_sectors && recalc_disabled(ic)) {
		r = bs_target_error(t, "Recalculating with HMAC is disabled for security reasons - "
				       "if you really need it, use the argument "
				       "\"legacy_recalculate\"");
		goto fail;
	}
	r = ic->external
		? 0
		: integrity_hash_new(ic->alg, ic->key, ic->key_len,
				     (ic->sb.flags & SB_FLAG_FIXED_HMAC) ? ic->sb.salt : NULL,
				     &ic->hash, &why);
	if (r) {
		r = bs_target_error(t, "internal hash %s: %s", ic->alg, why);
		goto fail;
	}
	if (fresh) {
		r = integrity_format_write(ic->dev, ic->meta, &ic->g, &ic->sb, ic->hash, false,
					   ic->mode, &why);
		if (r) {
			r = bs_target_error(t, "error initializing: %s", why);
			goto fail;
		}
		ic->just_formatted = true;
	}
	if (ic->mode == 'J') {
		r = alloc_journal(t, ic);
		if (r)
			goto fail;
	}
	if (ic->mode == 'B') {
		ic->bm.shift = ic->log2_spbit;
		ic->bm.bytes = integrity_geom_bitmap_bytes(&ic->g, ic->log2_spbit);
		ic->bm.disk = calloc(1, ic->bm.bytes);
		ic->bm.may_write = calloc(1, ic->bm.bytes);
		ic->bm.recalc = calloc(1, ic->bm.bytes);
		if (!ic->bm.disk || !ic->bm.may_write || !ic->bm.recalc) {
			r = -ENOMEM;
			goto fail;
		}
	}
	if ((ic->sectors_per_block << 9) > t->block_size)
		t->block_size = ic->sectors_per_block << 9;
	t->private = ic;
	return 0;
fail:
	if (r == -ENOMEM && !t->error)
		bs_target_error(t, "out of memory");
	integ_free(ic);
	return r;
}

static void integ_dtr(struct bs_target *t)
{
	struct integ *ic = t->private;

	stop_worker(ic);
	integ_free(ic);
}

/* ---- resume and suspend ---------------------------------------------------------------------- */

static int read_bitmap(struct integ *ic)
{
	return bs_bdev_read(ic->meta, ic->bm.disk, ic->bm.bytes, bitmap_off(ic));
}

/* Journal replay and, in bitmap mode, the dirty regions: Linux's dm_integrity_resume. */
static int integ_preresume(struct bs_target *t)
{
	struct integ *ic = t->private;
	const struct integrity_geom *g = &ic->g;
	bool ro = t->readonly || ic->mode == 'R';
	bool write = false;
	const char *why = NULL;
	int r;

	if (atomic_load(&ic->failed))
		return bs_target_error(t, "the device failed earlier; reload the table");
	if (!ic->uptodate && !ic->just_formatted) {
		struct integrity_sb now;

		/* a table that was live until now may have changed the superblock */
		r = integrity_sb_read(ic->meta, ic->start, &now, NULL, &why);
		if (r)
			return bs_target_error(t, "%s: %s", ic->meta->name, why);
		if (now.tag_size != ic->sb.tag_size ||
		    now.journal_sections != ic->sb.journal_sections ||
		    now.log2_interleave_sectors != ic->sb.log2_interleave_sectors ||
		    now.log2_sectors_per_block != ic->sb.log2_sectors_per_block ||
		    memcmp(now.salt, ic->sb.salt, SALT_SIZE) ||
		    ((now.flags ^ ic->sb.flags) &
		     (SB_FLAG_FIXED_PADDING | SB_FLAG_FIXED_HMAC | SB_FLAG_HAVE_JOURNAL_MAC)))
			return bs_target_error(t,
					       "the superblock changed since the table was loaded");
		if (ic->recalculate && !(now.flags & SB_FLAG_RECALCULATING)) {
			now.flags |= SB_FLAG_RECALCULATING;
			now.recalc_sector = 0;
		}
		pthread_mutex_lock(&ic->sb_lock);
		ic->sb = now;
		pthread_mutex_unlock(&ic->sb_lock);
	}
	if (ic->sb.provided_data_sectors != g->provided_data_sectors) {
		ic->sb.provided_data_sectors = g->provided_data_sectors;
		write = !ro;
	}
	if (ic->sb.flags & SB_FLAG_DIRTY_BITMAP) {
		bool same = ic->sb.log2_blocks_per_bitmap_bit == ic->log2_spbit - g->log2_spb;

		if (ic->mode == 'B') {
			r = read_bitmap(ic);
			if (r)
				return bs_target_error(t, "cannot read the bitmap");
			if (same && !ic->reset_recalculate) {
				memcpy(ic->bm.recalc, ic->bm.disk, ic->bm.bytes);
				memcpy(ic->bm.may_write, ic->bm.disk, ic->bm.bytes);
				if (!bits_all(ic->bm.disk, 0,
					      (g->provided_data_sectors - 1) >> ic->bm.shift,
					      false)) {
					ic->sb.flags |= SB_FLAG_RECALCULATING;
					ic->sb.recalc_sector = 0;
					bs_info("integrity %s: unclean stop in bitmap mode: "
						"recalculating the dirty regions",
						ic->name);
				}
			} else {
				ic->sb.log2_blocks_per_bitmap_bit =
				    (uint8_t)(ic->log2_spbit - g->log2_spb);
				memset(ic->bm.recalc, 0xff, ic->bm.bytes);
				memset(ic->bm.may_write, 0xff, ic->bm.bytes);
				memset(ic->bm.disk, 0xff, ic->bm.bytes);
				if (!ro &&
				    bm_write_blocks(ic, 0, ic->bm.bytes / BITMAP_BLOCK_SIZE - 1))
					return bs_target_error(t, "cannot write the bitmap");
				ic->sb.flags |= SB_FLAG_RECALCULATING;
				ic->sb.recalc_sector = 0;
			}
			write = !ro;
		} else if (ic->mode != 'R') {
			uint8_t *bmp;
			uint64_t bytes = integrity_geom_bitmap_bytes(g, ic->log2_spbit);
			bool clean = false;

			if (ro)
				return bs_target_error(t, "the bitmap is dirty but the device is "
							  "read-only");
			if (same && !posix_memalign((void **)&bmp, 4096, bytes)) {
				if (!bs_bdev_read(ic->meta, bmp, bytes, bitmap_off(ic)))
					clean = bits_all(bmp, 0,
							 (g->provided_data_sectors - 1) >>
							     ic->log2_spbit,
							 false);
				free(bmp);
			}
			if (!clean || ic->reset_recalculate) {
				ic->sb.flags |= SB_FLAG_RECALCULATING;
				ic->sb.recalc_sector = 0;
			}
			r = integrity_journal_write_empty(ic->meta, g, 0);
			if (r)
				return bs_target_error(t, "cannot initialize the journal");
			ic->sb.flags &= ~(uint32_t)SB_FLAG_DIRTY_BITMAP;
			write = true;
			ic->uptodate = false;
		}
	}
	if (!ic->uptodate && ic->mode != 'R' && !(ic->sb.flags & SB_FLAG_DIRTY_BITMAP)) {
		struct integrity_journal_state st;
		uint8_t *jb = ic->j.buf;
		void *p = NULL;

		if (!jb) {
			uint64_t bytes = ((uint64_t)g->journal_sections * g->section_sectors) << 9;

			if (bytes > (1ull << 30) || posix_memalign(&p, 4096, bytes))
				return bs_target_error(t,
						       "journal doesn't fit into memory (%llu MiB)",
						       (unsigned long long)(bytes >> 20));
			jb = p;
		}
		r = integrity_journal_recover(ic->dev, ic->meta, g, jb, ic->hash, ic->mode == 'J',
					      t->readonly, &st, &why);
		free(p);
		if (r)
			return bs_target_error(t, "%s", why);
		if (st.replayed || st.bad)
			bs_warn("integrity %s: journal replayed: %llu blocks written back%s",
				ic->name, (unsigned long long)st.replayed,
				st.bad ? " (entries with wrong tags refused)" : "");
		if (st.bad)
			bs_warn(
			    "integrity %s: %llu journal entries refused: their tags do not match",
			    ic->name, (unsigned long long)st.bad);
		else if (st.note && !ic->just_formatted)
			bs_info("integrity %s: journal cleared (%s)", ic->name, st.note);
		if (ic->mode == 'J') {
			struct journal *j = &ic->j;

			j->written_section = j->durable_section = j->committed_section =
			    j->uncommitted_section = j->free_section = st.section;
			j->n_written = j->n_durable = j->n_committed = j->n_uncommitted = 0;
			j->free_section_entry = 0;
			j->free_entries = g->journal_entries;
			j->commit_seq = st.seq;
			memset(j->busy, 0, g->journal_entries);
			memset(j->inprogress, 0, g->journal_sections * sizeof(*j->inprogress));
			memset(j->head, 0xff, (size_t)j->nbuckets * sizeof(*j->head));
			j->indexed = 0;
		}
	}
	ic->uptodate = true;
	if (ic->reset_recalculate && !(ic->sb.flags & SB_FLAG_DIRTY_BITMAP)) {
		ic->sb.flags |= SB_FLAG_RECALCULATING;
		ic->sb.recalc_sector = 0;
	}
	if (ic->mode == 'B' && !(ic->sb.flags & SB_FLAG_DIRTY_BITMAP) && !ro) {
		ic->sb.flags |= SB_FLAG_DIRTY_BITMAP;
		ic->sb.log2_blocks_per_bitmap_bit = (uint8_t)(ic->log2_spbit - g->log2_spb);
		r = write_sb(ic);
		if (r)
			return bs_target_error(t, "cannot write the superblock");
		memset(ic->bm.disk, 0, ic->bm.bytes);
		memset(ic->bm.recalc, 0, ic->bm.bytes);
		memset(ic->bm.may_write, 0, ic->bm.bytes);
		if ((ic->sb.flags & SB_FLAG_RECALCULATING) &&
		    ic->sb.recalc_sector < g->provided_data_sectors) {
			uint64_t a = ic->sb.recalc_sector >> ic->bm.shift;
			uint64_t b = (g->provided_data_sectors - 1) >> ic->bm.shift;

			bits_op(ic->bm.disk, a, b, true);
			bits_op(ic->bm.recalc, a, b, true);
			bits_op(ic->bm.may_write, a, b, true);
		}
		if (bm_write_blocks(ic, 0, ic->bm.bytes / BITMAP_BLOCK_SIZE - 1))
			return bs_target_error(t, "cannot write the bitmap");
		ic->bm.last_flush_ms = now_ms();
		write = false;
	}
	if (ic->sb.flags & SB_FLAG_RECALCULATING) {
		if (ic->sb.recalc_sector > g->provided_data_sectors) {
			ic->sb.recalc_sector = g->provided_data_sectors;
			write = !ro;
		}
		atomic_store(&ic->recalc_run,
			     !ro && ic->sb.recalc_sector < g->provided_data_sectors);
	}
	if (write && write_sb(ic))
		return bs_target_error(t, "cannot write the superblock");
	ic->just_formatted = false;
	return 0;
}

static void integ_resume(struct bs_target *t)
{
	struct integ *ic = t->private;

	ic->quit = false;
	ic->j.writer_quit = false;
	if (ic->mode == 'J' && !t->readonly && !ic->j.writer_on)
		ic->j.writer_on = !pthread_create(&ic->j.writer, NULL, writer_main, ic);
	if (ic->mode != 'R' && !t->readonly && !ic->worker_on)
		ic->worker_on = !pthread_create(&ic->worker, NULL, worker_main, ic);
	if (!ic->worker_on && atomic_load(&ic->recalc_run))
		bs_warn("integrity %s: no worker thread: recalculation does not run", ic->name);
}

static void integ_postsuspend(struct bs_target *t)
{
	struct integ *ic = t->private;
	const struct integrity_geom *g = &ic->g;
	int r = 0;

	stop_worker(ic);
	if (ic->mode == 'R' || t->readonly || atomic_load(&ic->failed))
		return;
	if (ic->mode == 'J') {
		struct journal *j = &ic->j;

		r = j_drain(ic);
		if (!r && j->wrote) {
			unsigned fs = j->free_section;

			integrity_journal_init(g, j->buf, fs, g->journal_sections - fs,
					       j->commit_seq);
			r = integrity_journal_write(ic->meta, g, j->buf, fs,
						    g->journal_sections - fs, BS_IO_FUA);
			if (!r && fs) {
				integrity_journal_init(g, j->buf, 0, fs,
						       (j->commit_seq + 1) % N_COMMIT_IDS);
				r = integrity_journal_write(ic->meta, g, j->buf, 0, fs, BS_IO_FUA);
			}
			j->wrote = false;
		}
	} else {
		r = flush_devs(ic);
		if (!r && ic->mode == 'B') {
			r = integrity_journal_write_empty(ic->meta, g, 0);
			ic->sb.flags &= ~(uint32_t)SB_FLAG_DIRTY_BITMAP;
		}
	}
	if (!r && (ic->mode == 'B' || (ic->sb.flags & SB_FLAG_RECALCULATING)))
		r = write_sb(ic);
	if (r)
		set_failed(ic, "suspending", r);
}

/* ---- requests ----------------------------------------------------------------------------------
 */

/*
 * Takes the range for an in-place write; in bitmap mode, once its regions are marked dirty
 * on disk (checked under the range, which a bitmap flush needs whole before clearing bits).
 */
static int lock_for_write(struct integ *ic, struct range *rg, uint64_t l, uint64_t n)
{
	for (;;) {
		bool ok = true;
		int r;

		rl_lock(&ic->rl, rg, l, n);
		if (ic->mode != 'B')
			return 0;
		pthread_mutex_lock(&ic->bm.lock);
		ok = bits_all(ic->bm.may_write, l >> ic->bm.shift, (l + n - 1) >> ic->bm.shift,
			      true);
		pthread_mutex_unlock(&ic->bm.lock);
		if (ok)
			return 0;
		rl_unlock(&ic->rl, rg);
		r = bm_mark(ic, l, n);
		if (r) {
			set_failed(ic, "writing the bitmap", r);
			return r;
		}
	}
}

static int do_write(struct integ *ic, uint64_t l, uint64_t n, const uint8_t *buf,
		    const uint8_t *xtags, unsigned flags)
{
	static const uint8_t zeroes[1u << 16];
	struct range rg;
	int r = 0;

	if (ic->mode == 'J')
		return j_write(ic, l, n, buf, xtags, flags);
	r = lock_for_write(ic, &rg, l, n);
	if (r)
		return r;
	if (buf) {
		r = write_inplace(ic, l, n, buf, xtags, flags);
	} else {
		for (uint64_t done = 0; done < n && !r;) {
			uint64_t c =
			    n - done < sizeof(zeroes) / 512 ? n - done : sizeof(zeroes) / 512;

			r = write_inplace(ic, l + done, c, zeroes, NULL, flags);
			done += c;
		}
	}
	rl_unlock(&ic->rl, &rg);
	return r;
}

static int do_discard(struct integ *ic, uint64_t l, uint64_t n)
{
	const struct integrity_geom *g = &ic->g;
	struct range rg;
	int r = 0;

	if (ic->mode == 'J') {
		r = j_drain(ic);
		if (r)
			return r;
	}
	r = lock_for_write(ic, &rg, l, n);
	if (r)
		return r;
	while (n && !r) {
		uint64_t dsec, toff, left, cnt, nb;
		uint8_t *tags;

		integrity_geom_map(g, l, &dsec, &toff, &left);
		cnt = n < left ? n : left;
		if (cnt > CHUNK_SECTORS)
			cnt = CHUNK_SECTORS;
		nb = cnt >> g->log2_spb;
		tags = bs_scratch_get(nb * g->tag_size);
		if (!tags) {
			r = -ENOMEM;
			break;
		}
		memset(tags, DISCARD_FILLER, nb * g->tag_size);
		r = bs_bdev_write(ic->meta, tags, nb * g->tag_size, toff, 0);
		bs_scratch_put(tags);
		if (!r) {
			struct bs_io d = {.op = BS_OP_DISCARD, .off = dsec << 9, .len = cnt << 9};

			r = bs_bdev_submit(ic->dev, &d);
			if (r == -EOPNOTSUPP)
				r = 0;
		}
		l += cnt;
		n -= cnt;
	}
	rl_unlock(&ic->rl, &rg);
	return r;
}

static int integ_submit(struct bs_target *t, struct bs_io *io)
{
	struct integ *ic = t->private;
	uint64_t l = io->off >> 9, n = io->len >> 9;
	uint8_t *xtags = NULL;
	int r;

	if (atomic_load(&ic->failed))
		return -EIO;
	if (io->op == BS_OP_FLUSH) {
		if (ic->mode == 'R' || t->readonly)
			return 0;
		if (ic->mode == 'J') {
			r = j_commit(ic, PAD_ALWAYS);
			return r ? r : j_sync(ic);
		}
		return flush_devs(ic);
	}
	if ((io->off | io->len) & ((ic->g.spb << 9) - 1))
		return -EINVAL;
	if (io->meta && (io->op == BS_OP_READ || io->op == BS_OP_WRITE)) {
		/* Linux: "Unexpected integrity data" / "Invalid integrity data size" */
		if (!ic->external || io->meta->tuple_size != ic->tag_size ||
		    io->meta->interval != (ic->g.spb << 9)) {
			if (!atomic_exchange(&ic->meta_refused, true))
				bs_err("integrity %s: refusing integrity metadata of %u bytes per "
				       "%u-byte block: %s",
				       ic->name, io->meta->tuple_size, io->meta->interval,
				       ic->external ? "the tag or block size differs"
						    : "this device has an internal hash");
			return -EIO;
		}
		xtags = io->meta->buf;
	}
	if (!n)
		return 0;
	switch (io->op) {
	case BS_OP_READ:
		if (ic->mode == 'J') {
			r = j_read(ic, l, n, io->buf, xtags);
		} else {
			struct range rg;

			rl_lock(&ic->rl, &rg, l, n);
			r = read_inplace(ic, l, n, io->buf, xtags);
			rl_unlock(&ic->rl, &rg);
		}
		if (!r && xtags)
			io->meta->taken = true;
		return r;
	case BS_OP_WRITE:
	case BS_OP_WRITE_ZEROES:
		if (ic->mode == 'R' || t->readonly)
			return -EROFS;
		r = do_write(ic, l, n, io->op == BS_OP_WRITE ? io->buf : NULL, xtags, io->flags);
		if (!r && xtags)
			io->meta->taken = true;
		return r;
	case BS_OP_DISCARD:
		if (!ic->discards || ic->mode == 'R' || t->readonly)
			return 0; /* discards not enabled: the data stays as it is */
		return do_discard(ic, l, n);
	case BS_OP_FLUSH:
		break;
	}
	return -EINVAL;
}

static void integ_status(struct bs_target *t, enum bs_status_type type, unsigned flags,
			 struct strbuf *out)
{
	struct integ *ic = t->private;
	const struct integrity_geom *g = &ic->g;
	uint32_t sbflags;
	uint64_t rs;
	unsigned n;

	pthread_mutex_lock(&ic->sb_lock);
	sbflags = ic->sb.flags;
	rs = ic->sb.recalc_sector;
	pthread_mutex_unlock(&ic->sb_lock);
	if (type == BS_STATUS_INFO) {
		sb_printf(out, "%llu %llu", (unsigned long long)atomic_load(&ic->mismatches),
			  (unsigned long long)g->provided_data_sectors);
		if (sbflags & SB_FLAG_RECALCULATING)
			sb_printf(out, " %llu", (unsigned long long)rs);
		else
			sb_puts(out, " -");
		return;
	}
	n = 3 + ic->has_meta + (ic->sectors_per_block != 1) + !!(sbflags & SB_FLAG_RECALCULATING) +
	    ic->reset_recalculate + ic->discards + 2 * (ic->mode == 'J') + 2 * (ic->mode == 'B') +
	    !ic->external + !!(sbflags & SB_FLAG_FIXED_PADDING) + !!(sbflags & SB_FLAG_FIXED_HMAC) +
	    ic->legacy_recalculate;
	sb_printf(out, "%s %llu %u %c %u", ic->dev->name, (unsigned long long)ic->start,
		  ic->tag_size, ic->mode, n);
	if (ic->has_meta)
		sb_printf(out, " meta_device:%s", ic->meta->name);
	if (ic->sectors_per_block != 1)
		sb_printf(out, " block_size:%u", ic->sectors_per_block << 9);
	if (sbflags & SB_FLAG_RECALCULATING)
		sb_puts(out, " recalculate");
	if (ic->reset_recalculate)
		sb_puts(out, " reset_recalculate");
	if (ic->discards)
		sb_puts(out, " allow_discards");
	sb_printf(out, " journal_sectors:%llu",
		  (unsigned long long)(g->initial_sectors - SB_SECTORS));
	sb_printf(out, " interleave_sectors:%u", 1u << g->log2_interleave);
	sb_printf(out, " buffer_sectors:%u", 1u << ic->log2_buffer_sectors);
	if (ic->mode == 'J') {
		uint64_t pct =
		    (uint64_t)(g->journal_entries - ic->j.threshold) * 100 + g->journal_entries / 2;

		sb_printf(out, " journal_watermark:%u", (unsigned)(pct / g->journal_entries));
		sb_printf(out, " commit_time:%u", ic->commit_ms);
	}
	if (ic->mode == 'B') {
		sb_printf(out, " sectors_per_bit:%llu", 1ull << ic->log2_spbit);
		sb_printf(out, " bitmap_flush_interval:%u", ic->bitmap_flush_ms);
	}
	if (sbflags & SB_FLAG_FIXED_PADDING)
		sb_puts(out, " fix_padding");
	if (sbflags & SB_FLAG_FIXED_HMAC)
		sb_puts(out, " fix_hmac");
	if (ic->legacy_recalculate)
		sb_puts(out, " legacy_recalculate");
	if (ic->external)
		return;
	sb_printf(out, " internal_hash:%s", ic->alg);
	if (ic->key_len) {
		sb_putc(out, ':');
		if (flags & BS_STATUS_SHOWKEYS)
			sb_puts(out, ic->key_hex);
		else
			for (size_t i = 0; i < 2 * ic->key_len; i++)
				sb_putc(out, '0');
	}
}

const struct bs_target_type bs_integrity_target = {
    .name = "integrity",
    .version = {1, 10, 0},
    .ctr = integ_ctr,
    .dtr = integ_dtr,
    .submit = integ_submit,
    .status = integ_status,
    .postsuspend = integ_postsuspend,
    .preresume = integ_preresume,
    .resume = integ_resume,
};
