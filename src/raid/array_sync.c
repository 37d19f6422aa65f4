/*
 * array_sync.c - the array's background thread: recovery onto spares, resync after an
 * unclean stop (only the dirty bitmap regions when there is a bitmap), check and repair
 * (md's sync_action), clearing the write-intent bitmap, and marking an idle array clean.
 *
 * Work runs in windows (one stripe, one chunk or one 64 KiB region) under the same locks as
 * requests, so user I/O continues and always sees consistent stripes.  Progress is persisted
 * through the meta callbacks every few seconds, so a restart resumes where it stopped.
 */
#include "raid/array_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raid/parity.h"
#include "util/log.h"
#include "util/scratch.h"

#define PERSIST_MS 3000

/* ---- bitmap ------------------------------------------------------------------------------ */

static pthread_mutex_t bm_io_lock = PTHREAD_MUTEX_INITIALIZER;

static bool bit_test(const uint8_t *bits, uint64_t b)
{
	return (bits[b / 8] >> (b % 8)) & 1;
}

/*
 * Writes the bytes holding bits [first, last] (a consistent copy) through the meta ops and
 * returns when they are on disk; unless FORCE, not when the disk already holds them as they
 * are in memory (another thread's write that this one waited for).  Under bm_io_lock.
 *
 * a->bits_disk is what a bitmap write that finished put on disk, except that a bit being
 * cleared is cleared there first (bitmap_daemon): a bit set in bits_disk is set on disk and
 * stays so, which is what a writer needs to know before its data may go.
 */
static void write_bits(struct raid_array *a, uint64_t first, uint64_t last, bool force)
{
	uint64_t b0 = first / 8, n = last / 8 - b0 + 1;
	uint8_t *copy;
	bool same;

	if (!a->cfg.meta || !a->cfg.meta->bitmap_write) {
		pthread_mutex_lock(&a->bm_lock);
		memcpy(a->bits_disk + b0, a->bits + b0,
		       n); /* nowhere to write: as good as written */
		pthread_mutex_unlock(&a->bm_lock);
		return;
	}
	copy = malloc(n);
	if (!copy)
		return;
	pthread_mutex_lock(&a->bm_lock);
	memcpy(copy, a->bits + b0, n);
	same = !force && !memcmp(copy, a->bits_disk + b0, n);
	pthread_mutex_unlock(&a->bm_lock);
	if (!same) {
		if (a->cfg.meta->bitmap_write(a, a->cfg.meta_priv, copy, b0, n)) {
			bs_err("%s: cannot write the bitmap", a->name);
		} else {
			pthread_mutex_lock(&a->bm_lock);
			memcpy(a->bits_disk + b0, copy, n);
			pthread_mutex_unlock(&a->bm_lock);
		}
	}
	free(copy);
}

static void persist_bits(struct raid_array *a, uint64_t first, uint64_t last)
{
	pthread_mutex_lock(&bm_io_lock);
	write_bits(a, first, last, false);
	pthread_mutex_unlock(&bm_io_lock);
}

int bitmap_startwrite(struct raid_array *a, uint64_t sector, uint64_t nsect)
{
	uint64_t b0, b1, lo = UINT64_MAX, hi = 0;

	if (!a->bits || !nsect)
		return 0;
	b0 = sector / a->cfg.bitmap_chunk;
	b1 = (sector + nsect - 1) / a->cfg.bitmap_chunk;
	if (b1 >= a->nbits)
		b1 = a->nbits - 1;
	pthread_mutex_lock(&a->bm_lock);
	for (uint64_t b = b0; b <= b1; b++) {
		a->bcount[b]++;
		a->bage[b] = 0;
		a->bits[b / 8] |= (uint8_t)(1u << (b % 8));
		/*
		 * A bit already set in memory may not be on disk yet (another writer is still
		 * writing it): then this write waits for that too.
		 */
		if (!bit_test(a->bits_disk, b)) {
			if (b < lo)
				lo = b;
			hi = b;
		}
	}
	pthread_mutex_unlock(&a->bm_lock);
	/* The region must be marked dirty on disk before the data write starts. */
	if (lo != UINT64_MAX)
		persist_bits(a, lo, hi);
	return 0;
}

void bitmap_endwrite(struct raid_array *a, uint64_t sector, uint64_t nsect)
{
	uint64_t b0, b1;

	if (!a->bits || !nsect)
		return;
	b0 = sector / a->cfg.bitmap_chunk;
	b1 = (sector + nsect - 1) / a->cfg.bitmap_chunk;
	if (b1 >= a->nbits)
		b1 = a->nbits - 1;
	pthread_mutex_lock(&a->bm_lock);
	for (uint64_t b = b0; b <= b1; b++)
		if (a->bcount[b])
			a->bcount[b]--;
	pthread_mutex_unlock(&a->bm_lock);
}

/*
 * Clears bits of regions idle for two passes (all idle ones with IMMEDIATE, after a resync);
 * never while degraded or resyncing.
 */
static void bitmap_daemon(struct raid_array *a, bool immediate)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	bool any = false;

	if (!a->bits || a->degraded || a->resync_offset != UINT64_MAX)
		return;
	pthread_mutex_lock(&a->bm_lock);
	for (uint64_t b = 0; b < a->nbits; b++)
		if (bit_test(a->bits, b) && !a->bcount[b]) {
			if (immediate)
				a->bage[b] = 1;
			if (a->bage[b] >= 1)
				any = true;
			else
				a->bage[b]++;
		}
	pthread_mutex_unlock(&a->bm_lock);
	if (!any)
		return;
	/* What the bits protect must be durable before they go. */
	if (flush_members(a))
		return;
	/*
	 * Clearing and writing are one step under bm_io_lock: a writer that sets a bit again
	 * meanwhile finds it clear in bits_disk and waits to write it after this.
	 */
	pthread_mutex_lock(&bm_io_lock);
	pthread_mutex_lock(&a->bm_lock);
	for (uint64_t b = 0; b < a->nbits; b++)
		if (bit_test(a->bits, b) && !a->bcount[b] && a->bage[b] >= 1) {
			a->bits[b / 8] &= (uint8_t) ~(1u << (b % 8));
			a->bits_disk[b / 8] &= (uint8_t) ~(1u << (b % 8));
			if (b < lo)
				lo = b;
			hi = b;
		}
	pthread_mutex_unlock(&a->bm_lock);
	if (lo != UINT64_MAX)
		write_bits(a, lo, hi, true);
	pthread_mutex_unlock(&bm_io_lock);
}

/* ---- clean / dirty (md's safemode) ------------------------------------------------------- */

void mark_dirty(struct raid_array *a)
{
	if (!__atomic_load_n(&a->clean, __ATOMIC_SEQ_CST))
		return;
	pthread_mutex_lock(&a->meta_lock);
	if (__atomic_load_n(&a->clean, __ATOMIC_SEQ_CST)) {
		__atomic_store_n(&a->clean, false, __ATOMIC_SEQ_CST);
		if (a->cfg.meta && a->cfg.meta->update)
			a->cfg.meta->update(a, a->cfg.meta_priv);
	}
	pthread_mutex_unlock(&a->meta_lock);
}

static void try_mark_clean(struct raid_array *a, bool force)
{
	if (__atomic_load_n(&a->clean, __ATOMIC_SEQ_CST) || a->resync_offset != UINT64_MAX)
		return;
	if (!force &&
	    (atomic_load(&a->writers) || now_ms() - atomic_load(&a->last_write_ms) < 1000))
		return;
	if (flush_members(a))
		return;
	pthread_mutex_lock(&a->meta_lock);
	__atomic_store_n(&a->clean, true, __ATOMIC_SEQ_CST);
	if (!force && atomic_load(&a->writers)) {
		/* A writer slipped in; it saw clean and will mark dirty after us, or we see it. */
		__atomic_store_n(&a->clean, false, __ATOMIC_SEQ_CST);
	} else if (a->cfg.meta && a->cfg.meta->update) {
		a->cfg.meta->update(a, a->cfg.meta_priv);
	}
	pthread_mutex_unlock(&a->meta_lock);
}

int raid_array_mark_clean(struct raid_array *a)
{
	try_mark_clean(a, true);
	return 0;
}

/* ---- windows ------------------------------------------------------------------------------ */

struct window_result {
	uint64_t mismatch; /* sectors */
	uint64_t repaired; /* sectors rewritten after read errors */
	int r;
};

/* Counts mismatching 4 KiB pages between two buffers, as md counts them (in sectors). */
static uint64_t count_mismatch(const char *x, const char *y, size_t len)
{
	uint64_t m = 0;

	for (size_t o = 0; o < len; o += 4096) {
		size_t n = len - o < 4096 ? len - o : 4096;

		if (memcmp(x + o, y + o, n))
			m += n >> 9;
	}
	return m;
}

/* One stripe of parity RAID: resync/check/repair compare parity; recover rebuilds ROLE. */
static void parity_window(struct raid_array *a, enum raid_sync_action act, uint64_t stripe,
			  int role, struct window_result *res)
{
	const size_t L = a->g.chunk << 9;
	const unsigned dd = a->g.data_disks;
	struct raid_stripe lay;
	char *mem, *bufs[RAID_MAX_DISKS + 2];
	uint64_t bad = 0, ms = stripe * a->g.chunk, data = 0, par;
	int r;

	mem = bs_scratch_get((a->g.disks + 2) * L);
	if (!mem) {
		res->r = -ENOMEM;
		return;
	}
	for (unsigned i = 0; i < a->g.disks + 2; i++)
		bufs[i] = mem + i * L;
	raid_stripe_layout(&a->g, stripe, &lay);
	lock_id(a, stripe);
	if (act == RAID_SYNC_RECOVER) {
		r = stripe_fill(a, stripe, &lay, 0, a->g.chunk, 1ull << role, 0, bufs, &bad);
		/* Blocks the other members could not read were rebuilt too: repair them. */
		for (unsigned i = 0; !r && i < a->g.disks; i++)
			if ((bad & (1ull << i)) && (int)i != role)
				res->repaired +=
				    rewrite_bad(a, i, ms, a->g.chunk, bufs[i], "parity");
		if (!r) {
			r = member_io(a, (unsigned)role, BS_OP_WRITE, bufs[role], ms, a->g.chunk,
				      0);
			if (r && is_media_error(r)) {
				fail_member(a, (unsigned)role, "write error during recovery");
				r = 0;
			}
		}
		goto out;
	}
	for (unsigned k = 0; k < dd; k++)
		data |= 1ull << lay.data[k];
	par = (1ull << lay.pd) | (lay.qd >= 0 ? 1ull << lay.qd : 0);
	/* Every member is read; integrity errors are rebuilt and rewritten (scrub). */
	r = stripe_fill(a, stripe, &lay, 0, a->g.chunk, data | par, 0, bufs, &bad);
	if (r)
		goto out;
	/*
	 * Members that failed the read had their whole chunk rebuilt; only the units that still
	 * fail are rewritten from that, and counted (check too: md fixes read errors during a
	 * check).  The rest of such a chunk is then read again, so that the comparison below
	 * sees what the member holds rather than what the others imply.
	 */
	for (unsigned i = 0; i < a->g.disks; i++) {
		char *tmp = bufs[a->g.disks];

		if (!(bad & (1ull << i)))
			continue;
		res->repaired += rewrite_bad(a, i, ms, a->g.chunk, bufs[i],
					     i == lay.pd || (int)i == lay.qd ? "data" : "parity");
		if (member_readable(a, i, ms + a->g.chunk) &&
		    !member_io(a, i, BS_OP_READ, tmp, ms, a->g.chunk, 0))
			memcpy(bufs[i], tmp, L);
	}
	{
		/* Recompute parity from the data and compare with what is stored. */
		const void *dat[RAID_MAX_DISKS];
		char *np = bufs[a->g.disks], *nq = bufs[a->g.disks + 1];
		uint64_t mm = 0;

		for (unsigned k = 0; k < dd; k++)
			dat[k] = bufs[lay.data[k]];
		if (lay.qd >= 0)
			raid_pq_exp(dd, lay.qslot, dat, np, nq, L);
		else
			raid_xor(dd, dat, np, L);
		mm = count_mismatch(np, bufs[lay.pd], L);
		if (lay.qd >= 0) {
			uint64_t mq = count_mismatch(nq, bufs[lay.qd], L);

			if (mq > mm)
				mm = mq;
		}
		if (mm && act != RAID_SYNC_CHECK) {
			member_io(a, lay.pd, BS_OP_WRITE, np, ms, a->g.chunk, 0);
			if (lay.qd >= 0)
				member_io(a, (unsigned)lay.qd, BS_OP_WRITE, nq, ms, a->g.chunk, 0);
		}
		if (!mm || act != RAID_SYNC_CHECK) {
			/* The stripe is consistent now: unknown checksums can be learned. */
			for (unsigned k = 0; k < dd; k++)
				csum_learn(a, lay.data[k], ms, a->g.chunk, bufs[lay.data[k]]);
			csum_learn(a, lay.pd, ms, a->g.chunk, np);
			if (lay.qd >= 0)
				csum_learn(a, (unsigned)lay.qd, ms, a->g.chunk, nq);
		}
		if (act != RAID_SYNC_RESYNC)
			res->mismatch += mm;
	}
out:
	unlock_id(a, stripe);
	bs_scratch_put(mem);
	res->r = r;
}

/* RAID1/10: compare or copy the copies of array range [s, s+n) (one region or chunk). */
static void mirror_window(struct raid_array *a, enum raid_sync_action act, uint64_t s, uint64_t n,
			  int role, struct window_result *res)
{
	struct raid_loc loc[RAID_MAX_DISKS];
	uint64_t run, id = a->g.level == 1 ? s / RAID1_REGION : s / a->g.chunk;
	const size_t L = n << 9;
	unsigned nc;
	char *mem, *good, *other;
	int src = -1, r = 0;
	uint64_t media = 0; /* copies (indexes into LOC) that failed the source read */

	mem = bs_scratch_get(2 * L);
	if (!mem) {
		res->r = -ENOMEM;
		return;
	}
	good = mem;
	other = mem + L;
	lock_id(a, id);
	nc = raid_map(&a->g, s, loc, &run);
	/* A source: the first copy that reads fine. */
	for (unsigned k = 0; k < nc && src < 0; k++) {
		int e;

		if ((int)loc[k].member == role ||
		    !member_readable(a, loc[k].member, loc[k].sector + n))
			continue;
		e = member_io(a, loc[k].member, BS_OP_READ, good, loc[k].sector, n, 0);
		if (!e)
			src = (int)k;
		else if (is_media_error(e))
			media |= 1ull << k; /* it gets rewritten below */
		else
			r = e;
	}
	/* No copy reads the whole window: bad blocks may lie in different places on each. */
	if (src < 0 && (r || !media || (r = mirror_fill_units(a, loc, nc, n, good, role)))) {
		r = r ? r : -EIO;
		goto out;
	}
	for (unsigned k = 0; k < nc; k++) {
		unsigned mem_i = loc[k].member;
		bool differ = true;

		if ((int)k == src || !member_writable(a, mem_i))
			continue;
		if (act == RAID_SYNC_RECOVER && (int)mem_i != role) {
			/* Copies that failed the source read are repaired on the way. */
			if (media & (1ull << k))
				res->repaired +=
				    rewrite_bad(a, mem_i, loc[k].sector, n, good, "another copy");
			continue;
		}
		if (act != RAID_SYNC_RECOVER && member_readable(a, mem_i, loc[k].sector + n)) {
			int e = member_io(a, mem_i, BS_OP_READ, other, loc[k].sector, n, 0);

			if (e && is_media_error(e)) {
				/*
				 * Blocks this copy cannot read (integrity or checksum-log errors)
				 * are rewritten from the good copy - in check mode too, as md fixes
				 * read errors during a check - and counted; then it is compared as
				 * usual.
				 */
				res->repaired +=
				    rewrite_bad(a, mem_i, loc[k].sector, n, good, "another copy");
				e = member_readable(a, mem_i, loc[k].sector + n)
					? member_io(a, mem_i, BS_OP_READ, other, loc[k].sector, n,
						    0)
					: -EIO;
			}
			if (!e) {
				uint64_t mm = count_mismatch(good, other, L);

				differ = mm != 0;
				if (!differ) {
					csum_learn(a, mem_i, loc[k].sector, n, other);
					if (src >= 0)
						csum_learn(a, loc[src].member, loc[src].sector, n,
							   good);
				}
				if (act == RAID_SYNC_CHECK || act == RAID_SYNC_REPAIR)
					res->mismatch += mm;
			}
		}
		if (differ && act != RAID_SYNC_CHECK) {
			int e = member_io(a, mem_i, BS_OP_WRITE, good, loc[k].sector, n, 0);

			if (e && is_media_error(e))
				fail_member(a, mem_i, "write error during resync");
		}
	}
out:
	unlock_id(a, id);
	bs_scratch_put(mem);
	res->r = r;
}

/* RAID10 recovery walks the rebuilding member in its own order: member sector -> array. */
static uint64_t raid10_find_virt(struct raid_array *a, uint64_t sector, unsigned dev)
{
	const struct raid_geom *g = &a->g;
	unsigned far_set_start = (dev / g->far_set_size) * g->far_set_size;
	unsigned far_set_size = g->far_set_size;
	uint64_t offset = sector % g->chunk, chunk, vchunk;

	if (g->disks % g->far_set_size) {
		unsigned last = (g->disks / g->far_set_size - 1) * g->far_set_size;

		if (dev >= last) {
			far_set_size = g->far_set_size + g->disks % g->far_set_size;
			far_set_start = last;
		}
	}
	if (g->far_offset) {
		unsigned fc;

		chunk = sector / g->chunk;
		fc = (unsigned)(chunk % g->far);
		chunk /= g->far;
		dev -= fc * g->near;
		if ((int)dev < (int)far_set_start)
			dev += far_set_size;
	} else {
		while (sector >= g->stride) {
			sector -= g->stride;
			if (dev < g->near + far_set_start)
				dev += far_set_size - g->near;
			else
				dev -= g->near;
		}
		chunk = sector / g->chunk;
	}
	vchunk = (chunk * g->disks + dev) / g->near;
	return vchunk * g->chunk + offset;
}

/* ---- the thread ------------------------------------------------------------------------------ */

/* Puts a spare into an empty or faulty role; state_lock held.  Returns the role or -1. */
static int activate_spare(struct raid_array *a)
{
	int role = -1;
	unsigned si;

	if (a->g.level == 0)
		return -1;
	for (si = 0; si < a->nspares; si++)
		if (atomic_load(&a->spare[si].state) == RM_SPARE)
			break;
	if (si == a->nspares)
		return -1;
	for (unsigned i = 0; i < a->g.disks && role < 0; i++) {
		int s = atomic_load(&a->m[i].state);

		if (s == RM_MISSING || s == RM_FAULTY)
			role = (int)i;
	}
	if (role < 0)
		return -1;
	pthread_rwlock_wrlock(&a->mlock);
	{
		struct member old = a->m[role];
		struct member sp = a->spare[si];

		a->m[role] = sp;
		atomic_store(&a->m[role].state, RM_REBUILDING);
		atomic_store(&a->m[role].recovery_offset, 0);
		pthread_mutex_init(&a->m[role].csum_lock, NULL);
		if (old.bdev) {
			/* The faulty device stays listed (as faulty) until removed. */
			a->spare[si] = old;
			atomic_store(&a->spare[si].state, RM_FAULTY);
			pthread_mutex_init(&a->spare[si].csum_lock, NULL);
		} else {
			free(old.csum);
			free(old.csum_dirty);
			a->spare[si] = a->spare[--a->nspares];
			memset(&a->spare[a->nspares], 0, sizeof(a->spare[0]));
			pthread_mutex_init(&a->spare[si].csum_lock, NULL);
		}
	}
	pthread_rwlock_unlock(&a->mlock);
	return role;
}

static int rebuilding_role(struct raid_array *a)
{
	for (unsigned i = 0; i < a->g.disks; i++)
		if (atomic_load(&a->m[i].state) == RM_REBUILDING)
			return (int)i;
	return -1;
}

/* Picks what to do next; sync_lock held.  Returns the action and sets *role. */
static enum raid_sync_action next_action(struct raid_array *a, int *role)
{
	*role = -1;
	if (a->frozen || a->paused || a->g.level == 0 || a->rs)
		return RAID_SYNC_IDLE; /* a grow (array_reshape.c) owns the members meanwhile */
	pthread_mutex_lock(&a->state_lock);
	if (!a->failed) {
		*role = rebuilding_role(a);
		if (*role < 0)
			*role = activate_spare(a);
	}
	pthread_mutex_unlock(&a->state_lock);
	if (*role >= 0)
		return RAID_SYNC_RECOVER;
	if (a->failed)
		return RAID_SYNC_IDLE;
	if (a->requested == RAID_SYNC_CHECK || a->requested == RAID_SYNC_REPAIR)
		return a->requested;
	if (a->resync_offset != UINT64_MAX && !a->degraded)
		return RAID_SYNC_RESYNC;
	return RAID_SYNC_IDLE;
}

static bool window_dirty(struct raid_array *a, uint64_t ms, uint64_t n)
{
	bool d = false;

	if (!a->bits)
		return true;
	pthread_mutex_lock(&a->bm_lock);
	for (uint64_t b = ms / a->cfg.bitmap_chunk;
	     b <= (ms + n - 1) / a->cfg.bitmap_chunk && b < a->nbits && !d; b++)
		d = bit_test(a->bits, b);
	pthread_mutex_unlock(&a->bm_lock);
	return d;
}

/* Whether the resync window at POS touches a dirty region (RAID10: array sectors, as md). */
static bool resync_needed(struct raid_array *a, uint64_t pos, uint64_t n)
{
	return window_dirty(a, pos, n);
}

/* Runs ACT to the end (or until interrupted); sync_lock not held. */
static void run_action(struct raid_array *a, enum raid_sync_action act, int role)
{
	const bool parity = a->g.level >= 4 && a->g.level <= 6;
	const uint64_t end =
	    a->g.level == 10 && act != RAID_SYNC_RECOVER ? a->g.array_sectors : a->g.dev_sectors;
	uint64_t pos, step, last_persist = now_ms(), t0 = now_ms(), done0;
	struct window_result res = {0};
	bool interrupted = false;

	if (act == RAID_SYNC_RECOVER)
		pos = atomic_load(&a->m[role].recovery_offset);
	else if (act == RAID_SYNC_RESYNC)
		pos = a->resync_offset;
	else
		pos = 0;
	step = a->g.level == 1 ? RAID1_REGION : a->g.chunk;
	pos -= pos % step;
	done0 = pos;
	if (act == RAID_SYNC_RECOVER || act == RAID_SYNC_RESYNC)
		meta_update(a);
	pthread_mutex_lock(&a->sync_lock);
	a->action = act;
	a->sync_pos = pos;
	a->sync_end = end;
	a->sync_speed = 0;
	if (act == RAID_SYNC_CHECK || act == RAID_SYNC_REPAIR)
		a->mismatch_cnt = a->repaired_cnt = 0;
	pthread_mutex_unlock(&a->sync_lock);
	raise_event(a);
	bs_info("%s: %s started at sector %llu of %llu", a->name, raid_sync_action_name(act),
		(unsigned long long)pos, (unsigned long long)end);

	while (pos < end) {
		uint64_t n = end - pos < step ? end - pos : step;

		pthread_mutex_lock(&a->sync_lock);
		while (a->paused && !a->quit)
			pthread_cond_wait(&a->sync_cv, &a->sync_lock);
		interrupted =
		    a->quit || a->frozen ||
		    ((act == RAID_SYNC_CHECK || act == RAID_SYNC_REPAIR) && a->requested != act);
		pthread_mutex_unlock(&a->sync_lock);
		if (interrupted || a->failed)
			break;
		if (act == RAID_SYNC_RECOVER && atomic_load(&a->m[role].state) != RM_REBUILDING)
			break; /* the member failed again */

		if (act == RAID_SYNC_RESYNC && !resync_needed(a, pos, n)) {
			/* clean region: nothing to do */
		} else if (parity) {
			parity_window(a, act, pos / a->g.chunk, role, &res);
		} else if (a->g.level == 1) {
			mirror_window(a, act, pos, n, role, &res);
		} else if (act == RAID_SYNC_RECOVER) {
			mirror_window(a, act, raid10_find_virt(a, pos, (unsigned)role), n, role,
				      &res);
		} else {
			mirror_window(a, act, pos, n, role, &res);
		}
		if (res.r && res.r != -EIO) {
			bs_err("%s: %s stopped at sector %llu: %s", a->name,
			       raid_sync_action_name(act), (unsigned long long)pos,
			       strerror(-res.r));
			interrupted = true;
			break;
		}
		if (res.r == -EIO)
			/* Lost beyond redundancy here: nothing to repair from; go on. */
			bs_err("%s: %s: sectors %llu-%llu (%s) are unreadable on every member "
			       "that holds them",
			       a->name, raid_sync_action_name(act), (unsigned long long)pos,
			       (unsigned long long)(pos + n - 1),
			       parity || a->g.level == 1 ? "member sectors" : "array sectors");
		res.r = 0;
		pos += n;
		if (act == RAID_SYNC_RECOVER)
			atomic_store(&a->m[role].recovery_offset, pos);
		else if (act == RAID_SYNC_RESYNC)
			a->resync_offset = pos;
		pthread_mutex_lock(&a->sync_lock);
		a->sync_pos = pos;
		a->mismatch_cnt = res.mismatch;
		a->repaired_cnt = res.repaired;
		{
			double secs = (now_ms() - t0) / 1000.0;

			if (secs > 0.2)
				a->sync_speed = (pos - done0) / 2.0 / secs;
		}
		pthread_mutex_unlock(&a->sync_lock);
		if ((act == RAID_SYNC_RECOVER || act == RAID_SYNC_RESYNC) &&
		    now_ms() - last_persist > PERSIST_MS) {
			flush_members(a);
			meta_update(a);
			last_persist = now_ms();
		}
	}
	if (!interrupted && !a->failed && pos >= end) {
		if (act == RAID_SYNC_RECOVER) {
			flush_members(a);
			pthread_mutex_lock(&a->state_lock);
			if (atomic_load(&a->m[role].state) == RM_REBUILDING) {
				atomic_store(&a->m[role].state, RM_IN_SYNC);
				atomic_store(&a->m[role].recovery_offset, UINT64_MAX);
			}
			{
				/* recount */
				unsigned d = 0;

				for (unsigned i = 0; i < a->g.disks; i++)
					if (atomic_load(&a->m[i].state) != RM_IN_SYNC)
						d++;
				a->degraded = d;
			}
			pthread_mutex_unlock(&a->state_lock);
			bs_info("%s: recovery of role %d complete", a->name, role);
		} else if (act == RAID_SYNC_RESYNC) {
			flush_members(a);
			a->resync_offset = UINT64_MAX;
			bitmap_daemon(a, true);
			bs_info("%s: resync complete", a->name);
		} else {
			bs_info("%s: %s complete, %llu mismatched sectors, %llu sectors repaired",
				a->name, raid_sync_action_name(act),
				(unsigned long long)res.mismatch, (unsigned long long)res.repaired);
		}
	}
	if (act == RAID_SYNC_RECOVER || act == RAID_SYNC_RESYNC)
		meta_update(a);
	pthread_mutex_lock(&a->sync_lock);
	a->action = RAID_SYNC_IDLE;
	a->mismatch_cnt = res.mismatch;
	a->repaired_cnt = res.repaired;
	if (a->requested == act)
		a->requested = RAID_SYNC_IDLE;
	pthread_cond_broadcast(&a->sync_cv);
	pthread_mutex_unlock(&a->sync_lock);
	raise_event(a);
}

static void *sync_main(void *arg)
{
	struct raid_array *a = arg;
	uint64_t last_daemon = now_ms();

	pthread_mutex_lock(&a->sync_lock);
	while (!a->quit) {
		int role;
		enum raid_sync_action act = next_action(a, &role);

		if (act != RAID_SYNC_IDLE) {
			pthread_mutex_unlock(&a->sync_lock);
			run_action(a, act, role);
			pthread_mutex_lock(&a->sync_lock);
			continue;
		}
		{
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 250 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&a->sync_cv, &a->sync_lock, &ts);
		}
		if (!a->paused && now_ms() - last_daemon >= 1000) {
			uint32_t sleep = a->cfg.daemon_sleep ? a->cfg.daemon_sleep : 5;

			pthread_mutex_unlock(&a->sync_lock);
			try_mark_clean(a, false);
			if (now_ms() - last_daemon >= sleep * 1000u) {
				bitmap_daemon(a, false);
				last_daemon = now_ms();
			}
			pthread_mutex_lock(&a->sync_lock);
		}
	}
	pthread_mutex_unlock(&a->sync_lock);
	bs_scratch_release_thread();
	return NULL;
}

int sync_start(struct raid_array *a)
{
	return pthread_create(&a->sync_thread, NULL, sync_main, a) ? -EAGAIN : 0;
}

void sync_stop(struct raid_array *a)
{
	pthread_mutex_lock(&a->sync_lock);
	a->quit = true;
	pthread_cond_broadcast(&a->sync_cv);
	pthread_mutex_unlock(&a->sync_lock);
	pthread_join(a->sync_thread, NULL);
}

void sync_kick(struct raid_array *a)
{
	pthread_mutex_lock(&a->sync_lock);
	pthread_cond_broadcast(&a->sync_cv);
	pthread_mutex_unlock(&a->sync_lock);
}

int raid_array_sync_action(struct raid_array *a, enum raid_sync_action act, struct strbuf *err)
{
	if (a->g.level == 0) {
		sb_puts(err, "RAID0 has no redundancy to check");
		return -EINVAL;
	}
	pthread_mutex_lock(&a->sync_lock);
	switch (act) {
	case RAID_SYNC_CHECK:
	case RAID_SYNC_REPAIR:
		if (a->rs) {
			pthread_mutex_unlock(&a->sync_lock);
			sb_printf(err, "%s is busy with reshape", a->name);
			return -EBUSY;
		}
		if (a->action != RAID_SYNC_IDLE && a->action != act) {
			pthread_mutex_unlock(&a->sync_lock);
			sb_printf(err, "%s is busy with %s", a->name,
				  raid_sync_action_name(a->action));
			return -EBUSY;
		}
		a->requested = act;
		a->frozen = false;
		break;
	case RAID_SYNC_IDLE:
		a->requested = RAID_SYNC_IDLE;
		a->frozen = false;
		break;
	case RAID_SYNC_FROZEN:
		a->frozen = true;
		break;
	default:
		pthread_mutex_unlock(&a->sync_lock);
		sb_puts(err, "resync and recovery start by themselves");
		return -EINVAL;
	}
	pthread_cond_broadcast(&a->sync_cv);
	pthread_mutex_unlock(&a->sync_lock);
	return 0;
}

void raid_array_wait_idle(struct raid_array *a)
{
	pthread_mutex_lock(&a->sync_lock);
	for (;;) {
		int role;
		enum raid_sync_action next;

		if (a->quit || a->frozen)
			break;
		if (a->action == RAID_SYNC_IDLE) {
			next = next_action(a, &role);
			if (next == RAID_SYNC_IDLE)
				break;
		}
		pthread_cond_wait(&a->sync_cv, &a->sync_lock);
	}
	pthread_mutex_unlock(&a->sync_lock);
}

void raid_array_quiesce(struct raid_array *a, bool pause)
{
	pthread_mutex_lock(&a->sync_lock);
	a->paused = pause;
	pthread_cond_broadcast(&a->sync_cv);
	pthread_mutex_unlock(&a->sync_lock);
}
