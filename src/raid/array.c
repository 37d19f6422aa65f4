/*
 * array.c - RAID requests and member state (see array.h; private state in array_int.h).
 *
 * Request paths by level:
 *   RAID0     map each chunk run to its member.
 *   RAID1/10  reads go to one readable copy (another on error, then the bad copy is rewritten
 *             from the good one); writes go to every writable copy under the region lock.
 *   RAID4/5/6 reads go to the data member; when it is missing or fails, the stripe range is
 *             rebuilt from the others under the stripe lock (and the bad range rewritten).
 *             Writes update one stripe at a time under its lock, by read-modify-write (old
 *             data and parity) or reconstruct-write (the untouched data), whichever reads
 *             less; degraded stripes always reconstruct.  With the journal policy the new
 *             blocks of the stripe are logged to the parity members' journals first.
 * A member that fails a write, or fails a read and then the repair write, is marked faulty
 * and the state persisted before any write completes (meta_pending); when too many members
 * are gone the array fails and every request returns EIO.
 */
#include "raid/array_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raid/parity.h"
#include "util/log.h"
#include "util/scratch.h"

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *raid_sync_action_name(enum raid_sync_action act)
{
	static const char *const names[] = {"idle",   "resync", "recover", "check",
					    "repair", "frozen", "reshape"};

	return act <= RAID_SYNC_RESHAPE ? names[act] : "?";
}

/* ---- locks ------------------------------------------------------------------------------ */

void lock_id(struct raid_array *a, uint64_t id)
{
	struct lock_bucket *b = &a->buckets[id % LOCK_BUCKETS];

	pthread_mutex_lock(&b->mu);
	for (;;) {
		bool held = false;

		for (unsigned i = 0; i < b->n && !held; i++)
			held = b->held[i] == id;
		if (!held && b->n < LOCKS_PER_BUCKET)
			break;
		pthread_cond_wait(&b->cv, &b->mu);
	}
	b->held[b->n++] = id;
	pthread_mutex_unlock(&b->mu);
}

void unlock_id(struct raid_array *a, uint64_t id)
{
	struct lock_bucket *b = &a->buckets[id % LOCK_BUCKETS];

	pthread_mutex_lock(&b->mu);
	for (unsigned i = 0; i < b->n; i++)
		if (b->held[i] == id) {
			b->held[i] = b->held[--b->n];
			break;
		}
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

/* ---- members ------------------------------------------------------------------------------ */

bool member_readable(struct raid_array *a, unsigned r, uint64_t end)
{
	int s = atomic_load(&a->m[r].state);

	return s == RM_IN_SYNC ||
	       (s == RM_REBUILDING && end <= atomic_load(&a->m[r].recovery_offset));
}

bool member_writable(struct raid_array *a, unsigned r)
{
	int s = atomic_load(&a->m[r].state);

	return s == RM_IN_SYNC || s == RM_REBUILDING;
}

bool is_media_error(int r)
{
	return r == -EIO || r == -EILSEQ || r == -ENXIO || r == -ENODATA;
}

int member_io(struct raid_array *a, unsigned r, enum bs_op op, void *buf, uint64_t sector,
	      uint64_t nsect, unsigned flags)
{
	if (op != BS_OP_FLUSH && csum_on(a, r))
		return csum_member_io(a, r, op, buf, sector, nsect, flags);
	return member_io_raw(a, r, op, buf, sector, nsect, flags);
}

int member_io_raw(struct raid_array *a, unsigned r, enum bs_op op, void *buf, uint64_t sector,
		  uint64_t nsect, unsigned flags)
{
	struct member *m = &a->m[r];
	struct bs_io io = {
	    .op = op, .flags = flags & ~RAID_IO_QUIET, .len = nsect << 9, .buf = buf};
	int e;

	pthread_rwlock_rdlock(&a->mlock);
	if (!m->bdev) {
		pthread_rwlock_unlock(&a->mlock);
		return -ENXIO;
	}
	io.off = (m->data_offset + sector) << 9;
	if (op == BS_OP_FLUSH)
		io.off = io.len = 0;
	e = bs_bdev_submit(m->bdev, &io);
	pthread_rwlock_unlock(&a->mlock);
	return e;
}

/*
 * Sectors of the smallest unit every member can read and rewrite alone: what an integrity
 * error (one member block) or a checksum-log error (one 4 KiB block) concerns.
 */
static uint64_t repair_unit(struct raid_array *a)
{
	uint64_t u = a->cfg.csum ? RAID_CSUM_BLOCK : 1;

	pthread_rwlock_rdlock(&a->mlock);
	for (unsigned i = 0; i < a->g.disks; i++)
		if (a->m[i].bdev && a->m[i].bdev->block_size / 512 > u)
			u = a->m[i].bdev->block_size / 512;
	pthread_rwlock_unlock(&a->mlock);
	return u;
}

/*
 * Repair after a read error: reads member R's range [ms, ms+n) again unit by unit (see
 * repair_unit) and rewrites each unit that still fails with a media error (EIO, EILSEQ from
 * an integrity member or the checksum log) from GOOD, the data rebuilt from redundancy.  So
 * only the damaged blocks are written, and the count is exact.  A failed rewrite fails the
 * member.  Returns the sectors rewritten (also added to a->corrected).  The caller holds the
 * stripe or region lock, so no user write of the range runs meanwhile: a unit that a write
 * replaced since GOOD was read reads fine now and is left alone.  Members that failed in the
 * meantime, or are rebuilding and not there yet, are left alone too (nothing to repair).
 */
uint64_t rewrite_bad(struct raid_array *a, unsigned r, uint64_t ms, uint64_t n, const char *good,
		     const char *from)
{
	uint64_t u = repair_unit(a), done = 0, first = 0, last = 0;
	char *tmp;

	if (!member_readable(a, r, ms + n))
		return 0;
	tmp = bs_scratch_get(u << 9);
	if (!tmp)
		return 0;
	for (uint64_t o = 0; o < n;) {
		uint64_t e = ((ms + o) / u + 1) * u - ms;
		int rr;

		if (e > n)
			e = n;
		rr = member_io(a, r, BS_OP_READ, tmp, ms + o, e - o, RAID_IO_QUIET);
		if (rr && is_media_error(rr)) {
			if (member_io(a, r, BS_OP_WRITE, (void *)(good + (o << 9)), ms + o, e - o,
				      0)) {
				fail_member(a, r, "read error, and rewriting the block failed");
				break;
			}
			if (!done)
				first = ms + o;
			last = ms + e;
			done += e - o;
		}
		o = e;
	}
	bs_scratch_put(tmp);
	if (done) {
		atomic_fetch_add(&a->corrected, done);
		bs_warn("%s: repaired %llu bad sectors in %llu-%llu on %s from %s", a->name,
			(unsigned long long)done, (unsigned long long)first,
			(unsigned long long)last - 1, a->m[r].bdev ? a->m[r].bdev->name : "?",
			from);
	}
	return done;
}

int flush_members(struct raid_array *a)
{
	/* Every write completed before this point is durable if the flush succeeds. */
	uint64_t epoch = atomic_fetch_add(&a->fepoch, 1), done;
	int r = csum_flush(a);

	for (unsigned i = 0; i < a->g.disks; i++) {
		int e;

		if (!member_writable(a, i))
			continue;
		e = member_io(a, i, BS_OP_FLUSH, NULL, 0, 0, 0);
		if (e && is_media_error(e)) {
			fail_member(a, i, "flush failed");
			continue;
		}
		if (e && !r)
			r = e;
	}
	if (a->rs) {
		int e = reshape_flush_new(a);

		if (e && !r)
			r = e;
	}
	done = atomic_load(&a->fdone);
	while (!r && done < epoch + 1 && !atomic_compare_exchange_weak(&a->fdone, &done, epoch + 1))
		;
	return r;
}

void raise_event(struct raid_array *a)
{
	if (a->cfg.event)
		a->cfg.event(a->cfg.event_arg);
}

int meta_update(struct raid_array *a)
{
	int r = 0;

	pthread_mutex_lock(&a->meta_lock);
	if (a->cfg.meta && a->cfg.meta->update)
		r = a->cfg.meta->update(a, a->cfg.meta_priv);
	pthread_mutex_unlock(&a->meta_lock);
	if (r)
		bs_err("%s: cannot update the array metadata: %s", a->name, strerror(-r));
	return r;
}

void wait_meta(struct raid_array *a)
{
	if (!atomic_load(&a->meta_pending))
		return;
	pthread_mutex_lock(&a->state_lock);
	while (atomic_load(&a->meta_pending))
		pthread_cond_wait(&a->state_cv, &a->state_lock);
	pthread_mutex_unlock(&a->state_lock);
}

unsigned raid10_copies(struct raid_array *a, uint64_t s, struct raid_loc *loc, uint64_t *run)
{
	return raid_map(&a->g, s, loc, run);
}

/* True while every RAID10 chunk still has a readable copy (checks one full rotation). */
bool raid10_enough(struct raid_array *a)
{
	uint64_t period = (uint64_t)a->g.disks * a->g.near;

	for (uint64_t c = 0; c < period; c++) {
		struct raid_loc loc[RAID_MAX_DISKS];
		uint64_t run;
		unsigned n = raid_map(&a->g, c * a->g.chunk, loc, &run);
		bool any = false;

		if (c * a->g.chunk >= a->g.array_sectors)
			break;
		for (unsigned i = 0; i < n && !any; i++)
			any = member_writable(a, loc[i].member);
		if (!any)
			return false;
	}
	return true;
}

/* Recomputes degraded/failed; state_lock held. */
static void recount(struct raid_array *a)
{
	unsigned d = 0;

	for (unsigned i = 0; i < a->g.disks; i++)
		if (atomic_load(&a->m[i].state) != RM_IN_SYNC)
			d++;
	a->degraded = d;
	if (a->g.level == 10) {
		a->failed = !raid10_enough(a);
	} else if (a->g.level == 1) {
		bool any = false;

		for (unsigned i = 0; i < a->g.disks && !any; i++)
			any = member_writable(a, i);
		a->failed = !any;
	} else {
		unsigned missing = 0;

		for (unsigned i = 0; i < a->g.disks; i++)
			if (!member_writable(a, i))
				missing++;
		a->failed = missing > a->max_degraded;
	}
}

void fail_member(struct raid_array *a, unsigned r, const char *why)
{
	int s;

	pthread_mutex_lock(&a->state_lock);
	s = atomic_load(&a->m[r].state);
	if (s == RM_FAULTY || s == RM_MISSING) {
		pthread_mutex_unlock(&a->state_lock);
		return;
	}
	atomic_store(&a->m[r].state, RM_FAULTY);
	recount(a);
	atomic_fetch_add(&a->meta_pending, 1);
	pthread_mutex_unlock(&a->state_lock);

	bs_err("%s: member %s (role %u) marked faulty: %s%s", a->name,
	       a->m[r].bdev ? a->m[r].bdev->name : "?", r, why,
	       a->failed ? "; the array has failed" : "; continuing degraded");
	meta_update(a);
	if (a->rs)
		reshape_member_failed(a, r);

	pthread_mutex_lock(&a->state_lock);
	atomic_fetch_sub(&a->meta_pending, 1);
	pthread_cond_broadcast(&a->state_cv);
	pthread_mutex_unlock(&a->state_lock);
	raise_event(a);
	sync_kick(a); /* a spare may take the role */
}

/*
 * After a read error that nothing could make up for (more members failed a range than the
 * redundancy covers): are the members in BAD still alive?  One that cannot read the first
 * 4 KiB of its data area either, with a device error (not a checksum mismatch), is marked
 * faulty, as md fails a member whose read error it could not correct; so an array whose
 * members are dying fails as a whole instead of serving what the rest can still read.  A
 * member with bad blocks elsewhere (rot found by an integrity device or the checksum log)
 * reads it and stays, as self-healing wants.  Called under the stripe or region lock.
 */
void probe_members(struct raid_array *a, uint64_t bad)
{
	char *buf;

	if (!bad)
		return;
	buf = bs_scratch_get(4096);
	if (!buf)
		return;
	for (unsigned i = 0; i < a->g.disks; i++) {
		int e;

		if (!(bad & (1ull << i)) || !member_readable(a, i, 8))
			continue;
		e = member_io_raw(a, i, BS_OP_READ, buf, 0, 8, 0);
		if (e && e != -EILSEQ && is_media_error(e))
			fail_member(a, i,
				    "a read error nothing could recover, and its first block "
				    "does not read either");
	}
	bs_scratch_put(buf);
}

static bool array_failed(struct raid_array *a)
{
	bool f;

	pthread_mutex_lock(&a->state_lock);
	f = a->failed;
	pthread_mutex_unlock(&a->state_lock);
	return f;
}

/* ---- RAID0 -------------------------------------------------------------------------------- */

static int raid0_io(struct raid_array *a, struct bs_io *io)
{
	uint64_t s = io->off >> 9, left = io->len >> 9;
	char *buf = io->buf;

	if (io->op == BS_OP_FLUSH)
		return flush_members(a);
	while (left) {
		struct raid_loc loc;
		uint64_t run, n;
		int r;

		raid_map(&a->g, s, &loc, &run);
		n = run < left ? run : left;
		r = member_io(a, loc.member, io->op, buf, loc.sector, n, io->flags);
		if (r)
			return r;
		s += n;
		left -= n;
		if (buf)
			buf += n << 9;
	}
	return 0;
}

/* ---- RAID1 / RAID10 ------------------------------------------------------------------------ */

static uint64_t mirror_lock_id(struct raid_array *a, uint64_t s)
{
	return a->g.level == 1 ? s / RAID1_REGION : s / a->g.chunk;
}

static unsigned mirror_copies(struct raid_array *a, uint64_t s, struct raid_loc *loc, uint64_t *run)
{
	unsigned n = raid_map(&a->g, s, loc, run);

	if (a->g.level == 1) {
		uint64_t region_left = RAID1_REGION - s % RAID1_REGION;

		if (*run > region_left)
			*run = region_left;
	}
	return n;
}

/*
 * Fills BUF with [0, n) of the copies in LOC (all but member SKIP) unit by unit, each unit
 * from the first copy that reads it: when every copy fails a whole range, the bad blocks may
 * lie in different places.  Returns 0, -EIO when a unit reads on no copy, or another error.
 */
int mirror_fill_units(struct raid_array *a, const struct raid_loc *loc, unsigned nc, uint64_t n,
		      char *buf, int skip)
{
	uint64_t u = repair_unit(a);

	for (uint64_t o = 0; o < n;) {
		uint64_t e = ((loc[0].sector + o) / u + 1) * u - loc[0].sector;
		bool ok = false;

		if (e > n)
			e = n;
		for (unsigned k = 0; k < nc && !ok; k++) {
			int r;

			if ((int)loc[k].member == skip ||
			    !member_readable(a, loc[k].member, loc[k].sector + n))
				continue;
			r = member_io(a, loc[k].member, BS_OP_READ, buf + (o << 9),
				      loc[k].sector + o, e - o, RAID_IO_QUIET); /* counted before */
			if (!r)
				ok = true;
			else if (!is_media_error(r))
				return r;
		}
		if (!ok)
			return -EIO;
		o = e;
	}
	return 0;
}

/* Reads one run from some copy; repairs copies that failed. Caller holds no lock. */
static int mirror_read_run(struct raid_array *a, uint64_t s, uint64_t n, char *buf)
{
	struct raid_loc loc[RAID_MAX_DISKS];
	uint64_t run;
	unsigned nc = mirror_copies(a, s, loc, &run), start, bad = 0;
	unsigned badidx[RAID_MAX_DISKS];
	int r = -EIO;
	bool ok = false;

	/*
	 * Spread reads over the copies by region - except where a resync has not reached yet:
	 * there the copies may differ, and the first one is the reference, as in md.
	 */
	start = (unsigned)((s / 2048) % nc);
	if (a->resync_offset != UINT64_MAX && s + n > a->resync_offset)
		start = 0;
	for (unsigned k = 0; k < nc && !ok; k++) {
		struct raid_loc *l = &loc[(start + k) % nc];

		if (!member_readable(a, l->member, l->sector + n))
			continue;
		r = member_io(a, l->member, BS_OP_READ, buf, l->sector, n, 0);
		if (!r)
			ok = true;
		else if (is_media_error(r))
			badidx[bad++] = (start + k) % nc;
		else
			return r;
	}
	/*
	 * Every copy failed the whole run.  Integrity and checksum-log errors concern single
	 * blocks, so the copies may still cover the run between them, block by block.
	 */
	if (!ok && (!bad || mirror_fill_units(a, loc, nc, n, buf, -1))) {
		uint64_t id = mirror_lock_id(a, s), mask = 0;

		for (unsigned i = 0; i < bad; i++)
			mask |= 1ull << loc[badidx[i]].member;
		lock_id(a, id);
		probe_members(a, mask);
		unlock_id(a, id);
		return -EIO;
	}
	if (bad) {
		/*
		 * Rewrite what the failed copies cannot read with the good data (repair on read).
		 * Only blocks that still fail under the region lock are written: a write since
		 * our unlocked read would have made them readable, so BUF is current for them.
		 */
		uint64_t id = mirror_lock_id(a, s);

		lock_id(a, id);
		for (unsigned i = 0; i < bad; i++)
			rewrite_bad(a, loc[badidx[i]].member, loc[badidx[i]].sector, n, buf,
				    "another copy");
		unlock_id(a, id);
	}
	return 0;
}

static int mirror_write_run(struct raid_array *a, const struct bs_io *io, uint64_t s, uint64_t n,
			    char *buf)
{
	struct raid_loc loc[RAID_MAX_DISKS];
	uint64_t run, id = mirror_lock_id(a, s);
	unsigned nc;
	int ok = 0, r = 0;

	lock_id(a, id);
	nc = mirror_copies(a, s, loc, &run);
	/* md's bitmap counts array sectors for RAID1 and RAID10 (equal to member for RAID1). */
	bitmap_startwrite(a, s, n);
	for (unsigned k = 0; k < nc; k++) {
		int e;

		if (!member_writable(a, loc[k].member))
			continue;
		e = member_io(a, loc[k].member, io->op, buf, loc[k].sector, n, io->flags);
		if (!e)
			ok++;
		else if (is_media_error(e))
			fail_member(a, loc[k].member, "write error");
		else if (!r)
			r = e;
	}
	bitmap_endwrite(a, s, n);
	unlock_id(a, id);
	if (r)
		return r;
	return ok ? 0 : -EIO;
}

static int mirror_io(struct raid_array *a, struct bs_io *io)
{
	uint64_t s = io->off >> 9, left = io->len >> 9;
	char *buf = io->buf;

	if (io->op == BS_OP_FLUSH)
		return flush_members(a);
	while (left) {
		struct raid_loc loc[RAID_MAX_DISKS];
		uint64_t run, n;
		int r;

		mirror_copies(a, s, loc, &run);
		n = run < left ? run : left;
		r = io->op == BS_OP_READ ? mirror_read_run(a, s, n, buf)
					 : mirror_write_run(a, io, s, n, buf);
		if (r)
			return r;
		s += n;
		left -= n;
		if (buf)
			buf += n << 9;
	}
	return 0;
}

/* ---- parity RAID: reconstruction -------------------------------------------------------- */

/* Reconstructs the members in MISSING (bitmask) from the others, all in bufs. */
static int reconstruct(struct raid_array *a, const struct raid_stripe *lay, uint64_t missing,
		       char **bufs, size_t len)
{
	unsigned dd = a->g.data_disks;

	if (a->g.level != 6) {
		const void *src[RAID_MAX_DISKS];
		unsigned n = 0, target = 0;

		if (__builtin_popcountll(missing) > 1)
			return -EIO;
		if (!missing)
			return 0;
		for (unsigned i = 0; i < a->g.disks; i++) {
			if (missing & (1ull << i))
				target = i;
			else
				src[n++] = bufs[i];
		}
		raid_xor(n, src, bufs[target], len);
		return 0;
	}
	{
		const void *data[RAID_MAX_DISKS];
		void *out[RAID_MAX_DISKS];
		unsigned q = (unsigned)lay->qd;

		if (__builtin_popcountll(missing) > 2)
			return -EIO;
		for (unsigned k = 0; k < dd; k++) {
			unsigned m = lay->data[k];

			data[k] = (missing & (1ull << m)) ? NULL : bufs[m];
			out[k] = bufs[m];
		}
		return raid6_recover(
		    dd, lay->qslot, data, (missing & (1ull << lay->pd)) ? NULL : bufs[lay->pd],
		    (missing & (1ull << q)) ? NULL : bufs[q], out, bufs[lay->pd], bufs[q], len);
	}
}

/*
 * When more members failed the range [ms, ms+n) than redundancy covers: integrity and
 * checksum-log errors concern single blocks, so the members that failed (BAD) are read again
 * unit by unit and each unit is rebuilt from the members that read it.  MISSING: the members
 * without data for the whole range (BAD included).  -EIO when a unit is lost.
 */
static int fill_units(struct raid_array *a, const struct raid_stripe *lay, uint64_t ms, uint64_t n,
		      uint64_t missing, uint64_t bad, char **bufs)
{
	uint64_t u = repair_unit(a);

	for (uint64_t o = 0; o < n;) {
		uint64_t e = ((ms + o) / u + 1) * u - ms, miss = missing;
		char *b[RAID_MAX_DISKS];
		int r;

		if (e > n)
			e = n;
		for (unsigned i = 0; i < a->g.disks; i++) {
			b[i] = bufs[i] + (o << 9);
			if (!(bad & (1ull << i)))
				continue;
			r = member_io(a, i, BS_OP_READ, b[i], ms + o, e - o,
				      RAID_IO_QUIET); /* counted by stripe_fill */
			if (!r)
				miss &= ~(1ull << i);
			else if (!is_media_error(r))
				return r;
		}
		r = reconstruct(a, lay, miss, b, (e - o) << 9);
		if (r)
			return r;
		o = e;
	}
	return 0;
}

int stripe_fill(struct raid_array *a, uint64_t stripe, const struct raid_stripe *lay, uint64_t off,
		uint64_t n, uint64_t want, uint64_t avoid, char **bufs, uint64_t *bad)
{
	const uint64_t ms = stripe * a->g.chunk + off;
	uint64_t have = 0, all = (a->g.disks >= 64) ? ~0ull : ((1ull << a->g.disks) - 1);
	int r;

	*bad = 0;
	/* First what is wanted, then, if something wanted is missing, everything else. */
	for (int pass = 0; pass < 2; pass++) {
		uint64_t todo = pass == 0 ? want : all & ~have;

		if (pass == 1 && !(want & ~have))
			return 0;
		for (unsigned i = 0; i < a->g.disks; i++) {
			if (!(todo & (1ull << i)) || (have & (1ull << i)) ||
			    (avoid & (1ull << i)) || (*bad & (1ull << i)) ||
			    !member_readable(a, i, ms + n))
				continue;
			r = member_io(a, i, BS_OP_READ, bufs[i], ms, n, 0);
			if (!r)
				have |= 1ull << i;
			else if (is_media_error(r))
				*bad |= 1ull << i;
			else
				return r;
		}
	}
	r = reconstruct(a, lay, all & ~have, bufs, n << 9);
	if (r == -EIO && *bad)
		r = fill_units(a, lay, ms, n, all & ~have, *bad, bufs);
	if (r == -EIO)
		probe_members(a, *bad);
	return r;
}

/* Rewrites reconstructed ranges onto members that returned media errors. */
static void repair_bad(struct raid_array *a, uint64_t bad, uint64_t ms, uint64_t n, char **bufs)
{
	for (unsigned i = 0; i < a->g.disks; i++)
		if (bad & (1ull << i))
			rewrite_bad(a, i, ms, n, bufs[i], "parity");
}

/* Per-thread buffer set for one stripe range: disks+1 buffers of len bytes. */
static char *stripe_bufs(struct raid_array *a, size_t len, char **bufs)
{
	char *mem = bs_scratch_get((a->g.disks + 1) * len);

	if (!mem)
		return NULL;
	for (unsigned i = 0; i <= a->g.disks; i++)
		bufs[i] = mem + i * len;
	return mem;
}

/* ---- parity RAID: reads --------------------------------------------------------------------- */

static int parity_read_run(struct raid_array *a, uint64_t s, uint64_t n, char *buf)
{
	uint64_t c = s / a->g.chunk, off = s % a->g.chunk, stripe = c / a->g.data_disks;
	unsigned k = (unsigned)(c % a->g.data_disks);
	struct raid_stripe lay;
	char *bufs[RAID_MAX_DISKS + 1], *mem;
	uint64_t bad = 0, ms = stripe * a->g.chunk + off;
	unsigned m;
	int r;

	raid_stripe_layout(&a->g, stripe, &lay);
	m = lay.data[k];
	if (member_readable(a, m, ms + n)) {
		r = member_io(a, m, BS_OP_READ, buf, ms, n, RAID_IO_QUIET);
		if (!r || !is_media_error(r))
			return r;
	}
	/* Degraded, or the member failed this read: rebuild the range from the others. */
	lock_id(a, stripe);
	mem = stripe_bufs(a, n << 9, bufs);
	if (!mem) {
		unlock_id(a, stripe);
		return -ENOMEM;
	}
	bufs[m] = buf;
	r = stripe_fill(a, stripe, &lay, off, n, 1ull << m, 0, bufs, &bad);
	if (!r && bad)
		repair_bad(a, bad, ms, n, bufs);
	bs_scratch_put(mem);
	unlock_id(a, stripe);
	return r;
}

/* ---- parity RAID: writes -------------------------------------------------------------------- */

struct stripe_write {
	uint64_t stripe;
	struct raid_stripe lay;
	uint64_t lo[RAID_MAX_DISKS], hi[RAID_MAX_DISKS]; /* per data slot, in-chunk sectors */
	const char *src[RAID_MAX_DISKS];		 /* new data at lo */
	uint64_t plo, phi;
	unsigned flags;
};

/* Whether W replaces every data block of its stripe. */
static bool full_cover(const struct stripe_write *w, unsigned dd)
{
	for (unsigned k = 0; k < dd; k++)
		if (w->lo[k] != w->plo || w->hi[k] != w->phi)
			return false;
	return true;
}

static int parity_write_stripe(struct raid_array *a, struct stripe_write *w)
{
	const unsigned dd = a->g.data_disks, P = w->lay.pd;
	const int Q = w->lay.qd;
	const uint64_t base = w->stripe * a->g.chunk, len = w->phi - w->plo;
	const size_t L = len << 9;
	char *bufs[RAID_MAX_DISKS + 1], *mem;
	uint64_t bad = 0;
	bool healthy = true, rmw;
	unsigned rmw_reads = 0, rcw_reads = 0, nparity = Q >= 0 ? 2 : 1;
	int r = 0;

	for (unsigned k = 0; k < dd; k++) {
		unsigned m = w->lay.data[k];
		bool mod = w->lo[k] < w->hi[k];
		bool full = mod && w->lo[k] <= w->plo && w->hi[k] >= w->phi;

		if (!member_readable(a, m, base + w->phi))
			healthy = false;
		rmw_reads += mod;
		rcw_reads += !full;
	}
	if (!member_readable(a, P, base + w->phi) ||
	    (Q >= 0 && !member_readable(a, (unsigned)Q, base + w->phi)))
		healthy = false;
	rmw = healthy && rmw_reads + nparity < rcw_reads;

	mem = stripe_bufs(a, L, bufs);
	if (!mem)
		return -ENOMEM;

	if (rmw) {
		/*
		 * Old data of the modified chunks and old parity; parity ^= delta.  A chunk the
		 * write does not cover over all of [plo, phi) is read again by the
		 * reconstruct-write below if this read fails, so a bad block there is counted
		 * then, not here too.
		 */
		for (unsigned k = 0; k < dd && !r; k++) {
			unsigned m = w->lay.data[k];
			bool again = !(w->lo[k] <= w->plo && w->hi[k] >= w->phi);

			if (w->lo[k] < w->hi[k]) {
				r = member_io(a, m, BS_OP_READ,
					      bufs[m] + ((w->lo[k] - w->plo) << 9), base + w->lo[k],
					      w->hi[k] - w->lo[k], again ? RAID_IO_QUIET : 0);
				if (r && is_media_error(r)) {
					rmw = false; /* fall back: reconstruct instead */
					r = 0;
					break;
				}
			}
		}
		if (rmw && !r)
			r = member_io(a, P, BS_OP_READ, bufs[P], base + w->plo, len, 0);
		if (rmw && !r && Q >= 0)
			r = member_io(a, (unsigned)Q, BS_OP_READ, bufs[Q], base + w->plo, len, 0);
		if (r && is_media_error(r)) {
			rmw = false;
			r = 0;
		}
		if (rmw && !r) {
			for (unsigned k = 0; k < dd; k++) {
				unsigned m = w->lay.data[k];
				size_t o = (w->lo[k] - w->plo) << 9, n = (w->hi[k] - w->lo[k]) << 9;

				if (!n)
					continue;
				raid_xor_into(bufs[m] + o, w->src[k], n); /* delta = old ^ new */
				raid_xor_into(bufs[P] + o, bufs[m] + o, n);
				if (Q >= 0)
					raid_gf_mul_add(raid_gf_exp2(w->lay.qslot[k]), bufs[m] + o,
							bufs[Q] + o, n);
			}
		}
	}
	if (!rmw && !r) {
		/*
		 * Reconstruct-write: the old contents of every data chunk over [plo, phi) that is
		 * not entirely overwritten.  If one of those cannot be read, stripe_fill reads all
		 * the others (old contents, fully overwritten ones included) and the parity, and
		 * rebuilds it.  Then the new data goes on top and the parity is computed afresh.
		 */
		uint64_t want = 0;
		const void *dat[RAID_MAX_DISKS];

		for (unsigned k = 0; k < dd; k++) {
			unsigned m = w->lay.data[k];

			if (!(w->lo[k] <= w->plo && w->hi[k] >= w->phi))
				want |= 1ull << m;
		}
		r = stripe_fill(a, w->stripe, &w->lay, w->plo, len, want, 0, bufs, &bad);
		if (!r) {
			for (unsigned k = 0; k < dd; k++) {
				unsigned m = w->lay.data[k];

				/*
				 * A chunk the write covers entirely is taken from the caller's
				 * buffer as it is (no copy: on a full-stripe write that is all of
				 * them), unless repair_bad() below needs it in bufs[m].
				 */
				if (!(want & (1ull << m)) && !(bad & (1ull << m))) {
					dat[k] = w->src[k];
					continue;
				}
				if (w->lo[k] < w->hi[k])
					memcpy(bufs[m] + ((w->lo[k] - w->plo) << 9), w->src[k],
					       (w->hi[k] - w->lo[k]) << 9);
				dat[k] = bufs[m];
			}
			if (Q >= 0)
				raid_pq_exp(dd, w->lay.qslot, dat, bufs[P], bufs[Q], L);
			else
				raid_xor(dd, dat, bufs[P], L);
		}
	}
	if (r) {
		bs_scratch_put(mem);
		return r;
	}

	/*
	 * Journal the new blocks, then write them in place.  The record holds the new blocks
	 * of every member, missing ones included: a member that comes back later (added again
	 * and rebuilt) must not be left with what an older record of the stripe says, when a
	 * replay applies both.
	 */
	{
		struct jentry je[RAID_MAX_DISKS];
		bool wr[RAID_MAX_DISKS];
		unsigned nj = 0, nwr = 0, rings[2], nrings = 0;
		bool logged, skipped = false;
		struct jticket jt = {0};

		for (unsigned k = 0; k < dd; k++) {
			unsigned m = w->lay.data[k];

			if (w->lo[k] < w->hi[k])
				je[nj++] = (struct jentry){m, base + w->lo[k], w->hi[k] - w->lo[k],
							   w->src[k]};
		}
		je[nj++] = (struct jentry){P, base + w->plo, len, bufs[P]};
		if (Q >= 0)
			je[nj++] = (struct jentry){(unsigned)Q, base + w->plo, len, bufs[Q]};
		for (unsigned i = 0; i < nj; i++) {
			wr[i] = member_writable(a, je[i].role);
			nwr += wr[i];
		}
		if (member_writable(a, P))
			rings[nrings++] = P;
		if (Q >= 0 && member_writable(a, (unsigned)Q))
			rings[nrings++] = (unsigned)Q;
		logged = a->cfg.policy == RAID_POLICY_JOURNAL && nrings;
		/*
		 * A healthy full-stripe write leaves nothing of the stripe's old contents for a
		 * torn update to damage: no record, unless an older one of the stripe could be
		 * replayed over it (array_journal.c).
		 */
		if (logged && nwr == a->g.disks && w->plo == 0 && len == a->g.chunk && !bad &&
		    full_cover(w, dd) && journal_may_skip(a, w->stripe)) {
			logged = false;
			skipped = true;
		}
		if (logged) {
			r = journal_before_record(a, w->stripe);
			if (!r)
				r = journal_write(a, w->stripe, rings, nrings, je, nj, &jt);
			if (r) {
				bs_scratch_put(mem);
				return r;
			}
		}
		for (unsigned i = 0; i < nj; i++) {
			int e = wr[i] ? member_io(a, je[i].role, BS_OP_WRITE, (void *)je[i].data,
						  je[i].sector, je[i].nsect, w->flags)
				      : 0;

			if (e && is_media_error(e))
				fail_member(a, je[i].role, "write error");
			else if (e && !r)
				r = e;
		}
		if (logged)
			journal_done(a, &jt);
		else if (skipped)
			journal_skipped(a, w->stripe);
	}
	/*
	 * Data members that failed a read here get the whole range back (reconstructed, with
	 * any new data merged in); parity members were rewritten above anyway.
	 */
	bad &= ~(1ull << P) & ~(Q >= 0 ? 1ull << Q : 0);
	if (bad)
		repair_bad(a, bad, base + w->plo, len, bufs);
	bs_scratch_put(mem);
	if (!r && array_failed(a))
		r = -EIO;
	return r;
}

static int parity_write(struct raid_array *a, struct bs_io *io)
{
	const uint64_t chunk = a->g.chunk, dd = a->g.data_disks, width = chunk * dd;
	uint64_t s = io->off >> 9, end = s + (io->len >> 9);
	const char *buf = io->buf;
	char *zeros = NULL;
	int r = 0;

	if (io->op == BS_OP_WRITE_ZEROES) {
		zeros = bs_scratch_get(width << 9);
		if (!zeros)
			return -ENOMEM;
		memset(zeros, 0, width << 9);
	}
	while (s < end && !r) {
		struct stripe_write w = {.flags = io->flags & BS_IO_FUA};
		uint64_t sstart, send, first, last;

		w.stripe = s / width;
		sstart = w.stripe * width;
		send = sstart + width;
		first = s - sstart;
		last = (end < send ? end : send) - sstart; /* in-stripe [first, last) */
		w.plo = UINT64_MAX;
		w.phi = 0;
		for (unsigned k = 0; k < dd; k++) {
			uint64_t c0 = k * chunk, c1 = c0 + chunk;
			uint64_t lo = first > c0 ? first : c0, hi = last < c1 ? last : c1;

			if (lo < hi) {
				w.lo[k] = lo - c0;
				w.hi[k] = hi - c0;
				w.src[k] = zeros ? zeros + ((lo - first) << 9)
						 : buf + ((sstart + lo - (io->off >> 9)) << 9);
				if (w.lo[k] < w.plo)
					w.plo = w.lo[k];
				if (w.hi[k] > w.phi)
					w.phi = w.hi[k];
			} else {
				w.lo[k] = w.hi[k] = 0;
			}
		}
		raid_stripe_layout(&a->g, w.stripe, &w.lay);
		lock_id(a, w.stripe);
		bitmap_startwrite(a, w.stripe * chunk + w.plo, w.phi - w.plo);
		r = parity_write_stripe(a, &w);
		bitmap_endwrite(a, w.stripe * chunk + w.plo, w.phi - w.plo);
		unlock_id(a, w.stripe);
		s = sstart + last;
	}
	if (zeros)
		bs_scratch_put(zeros);
	return r;
}

static int parity_io(struct raid_array *a, struct bs_io *io)
{
	uint64_t s = io->off >> 9, left = io->len >> 9;
	char *buf = io->buf;

	switch (io->op) {
	case BS_OP_FLUSH:
		return flush_members(a);
	case BS_OP_DISCARD:
		return 0; /* would leave parity inconsistent with what reads return */
	case BS_OP_WRITE:
	case BS_OP_WRITE_ZEROES:
		return parity_write(a, io);
	case BS_OP_READ:
		break;
	}
	while (left) {
		uint64_t run = a->g.chunk - s % a->g.chunk, n = run < left ? run : left;
		int r = parity_read_run(a, s, n, buf);

		if (r)
			return r;
		s += n;
		left -= n;
		buf += n << 9;
	}
	return 0;
}

/* ---- entry points ------------------------------------------------------------------------- */

int raid_array_submit(struct raid_array *a, struct bs_io *io)
{
	bool write = bs_op_is_write(io->op);
	int r;

	if ((io->off | io->len) & 511)
		return -EINVAL;
	if (io->op != BS_OP_FLUSH && (io->off >> 9 > a->g.array_sectors ||
				      io->len >> 9 > a->g.array_sectors - (io->off >> 9)))
		return -EINVAL;
	if (array_failed(a))
		return -EIO;
	if (write) {
		atomic_fetch_add(&a->writers, 1);
		mark_dirty(a);
	}
	pthread_rwlock_rdlock(&a->gate);
	r = a->rs ? reshape_io(a, io) : array_dispatch(a, io);
	pthread_rwlock_unlock(&a->gate);
	if (write) {
		atomic_store(&a->last_write_ms, now_ms());
		atomic_fetch_sub(&a->writers, 1);
		/* No write completes before a member failure it saw is on disk. */
		wait_meta(a);
		if (!r && array_failed(a))
			r = -EIO;
	}
	return r;
}

int array_dispatch(struct raid_array *a, struct bs_io *io)
{
	switch (a->g.level) {
	case 0:
		return raid0_io(a, io);
	case 1:
	case 10:
		return mirror_io(a, io);
	default:
		return parity_io(a, io);
	}
}

uint64_t raid_array_sectors(struct raid_array *a)
{
	return a->g.array_sectors;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

int raid_array_create(const struct raid_config *cfg, struct raid_member_spec *specs,
		      unsigned nspecs, struct raid_array **out, struct strbuf *err)
{
	struct raid_array *a = calloc(1, sizeof(*a));
	uint64_t sizes[RAID_MAX_DISKS] = {0};
	const char *why;
	int r = -EINVAL;

	if (!a) {
		sb_puts(err, "out of memory");
		return -ENOMEM;
	}
	a->cfg = *cfg;
	a->cfg.bitmap = NULL;
	a->name = strdup(cfg->name ? cfg->name : "raid");
	pthread_mutex_init(&a->state_lock, NULL);
	pthread_cond_init(&a->state_cv, NULL);
	pthread_rwlock_init(&a->mlock, NULL);
	{
		/* A grow waiting to start a window must not starve behind a stream of requests. */
		pthread_rwlockattr_t ga;

		pthread_rwlockattr_init(&ga);
		pthread_rwlockattr_setkind_np(&ga, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&a->gate, &ga);
		pthread_rwlockattr_destroy(&ga);
	}
	pthread_mutex_init(&a->meta_lock, NULL);
	pthread_mutex_init(&a->bm_lock, NULL);
	pthread_mutex_init(&a->sync_lock, NULL);
	pthread_cond_init(&a->sync_cv, NULL);
	for (unsigned i = 0; i < LOCK_BUCKETS; i++) {
		pthread_mutex_init(&a->buckets[i].mu, NULL);
		pthread_cond_init(&a->buckets[i].cv, NULL);
	}
	pthread_mutex_init(&a->jreserve, NULL);
	for (unsigned i = 0; i < RAID_MAX_DISKS; i++) {
		pthread_mutex_init(&a->ring[i].mu, NULL);

		pthread_cond_init(&a->ring[i].cv, NULL);
	}
	a->clean = cfg->resync_offset == UINT64_MAX;
	a->resync_offset = cfg->resync_offset;

	if (cfg->disks == 0 || cfg->disks > RAID_MAX_DISKS) {
		sb_printf(err, "invalid number of members %u", cfg->disks);
		goto fail;
	}
	for (unsigned i = 0; i < nspecs; i++) {
		struct raid_member_spec *s = &specs[i];
		struct member *m;

		if (s->role >= (int)(cfg->reshape_disks ? cfg->reshape_disks : cfg->disks)) {
			sb_printf(err, "member %s has role %d beyond %u members",
				  s->bdev ? s->bdev->name : "?", s->role, cfg->disks);
			goto fail;
		}
		if (s->role < 0) {
			if (a->nspares == RAID_MAX_SPARES) {
				sb_puts(err, "too many spares");
				goto fail;
			}
			m = &a->spare[a->nspares++];
			atomic_store(&m->state, RM_SPARE);
		} else {
			m = &a->m[s->role];
			if (m->bdev) {
				sb_printf(err, "two members claim role %d", s->role);
				goto fail;
			}
			atomic_store(&m->state, s->bdev ? s->state : RM_MISSING);
			atomic_store(&m->recovery_offset, s->recovery_offset);
			if (s->bdev)
				sizes[s->role] = s->data_sectors;
		}
		m->bdev = s->bdev;
		m->data_offset = s->data_offset;
		m->data_sectors = s->data_sectors;
		m->journal_offset = s->journal_offset;
		m->csum_offset = s->csum_offset;
		pthread_mutex_init(&m->csum_lock, NULL);
	}
	if (cfg->dev_sectors)
		for (unsigned i = 0; i < cfg->disks; i++) {
			if (sizes[i] && sizes[i] < cfg->dev_sectors) {
				sb_printf(err, "member %s is smaller than the array's member size",
					  a->m[i].bdev->name);
				goto fail;
			}
			if (sizes[i] && cfg->level != 0)
				sizes[i] = cfg->dev_sectors;
		}
	r = raid_geom_init(&a->g, cfg->level, cfg->disks, cfg->layout, cfg->chunk, sizes, &why);
	if (r) {
		sb_printf(err, "%s", why);
		goto fail;
	}
	a->max_degraded = cfg->level == 6   ? 2
			  : cfg->level == 0 ? 0
			  : cfg->level == 1 ? cfg->disks - 1
					    : 1;
	pthread_mutex_lock(&a->state_lock);
	recount(a);
	pthread_mutex_unlock(&a->state_lock);
	if (a->failed) {
		r = -EIO;
		sb_printf(err, "not enough members to run a RAID%d of %u (%u missing or faulty)",
			  cfg->level, cfg->disks, a->degraded);
		goto fail;
	}
	if (a->degraded && !cfg->start_degraded) {
		bool only_rebuilding = true;

		for (unsigned i = 0; i < cfg->disks; i++) {
			int s = atomic_load(&a->m[i].state);

			if (s != RM_IN_SYNC && s != RM_REBUILDING)
				only_rebuilding = false;
		}
		if (!only_rebuilding) {
			r = -EBUSY;
			sb_printf(err,
				  "%u of %u members missing: not starting degraded without --run",
				  a->degraded, cfg->disks);
			goto fail;
		}
	}
	if (cfg->bitmap_chunk && cfg->level != 0) {
		/* md's bitmap covers array sectors for RAID10, member sectors otherwise. */
		uint64_t span = cfg->level == 10 ? a->g.array_sectors : a->g.dev_sectors;

		a->nbits = (span + cfg->bitmap_chunk - 1) / cfg->bitmap_chunk;
		a->bits = calloc((a->nbits + 7) / 8 + 1, 1);
		a->bits_disk = calloc((a->nbits + 7) / 8 + 1, 1);
		a->bcount = calloc(a->nbits + 1, sizeof(*a->bcount));
		a->bage = calloc(a->nbits + 1, 1);
		if (!a->bits || !a->bits_disk || !a->bcount || !a->bage) {
			r = -ENOMEM;
			sb_puts(err, "out of memory");
			goto fail;
		}
		if (cfg->bitmap) {
			memcpy(a->bits, cfg->bitmap, (a->nbits + 7) / 8);
			memcpy(a->bits_disk, cfg->bitmap, (a->nbits + 7) / 8);
		}
	}
	/*
	 * The checksum log before the journal: replaying a record rewrites blocks whose
	 * checksums on disk may predate them (the log is written at flushes), so the replay's
	 * writes must go through the log and update it.
	 */
	if (cfg->csum) {
		r = csum_init(a, err);
		if (r)
			goto fail;
	}
	if (cfg->policy == RAID_POLICY_JOURNAL && !cfg->reshape_disks) {
		if (cfg->level < 4 || cfg->level > 6) {
			r = -EINVAL;
			sb_puts(err, "the journal policy applies to RAID4/5/6 only");
			goto fail;
		}
		r = journal_init(a, err);
		if (r)
			goto fail;
	}
	if (cfg->reshape_disks) {
		r = reshape_setup(a, cfg, err);
		if (r)
			goto fail;
	}
	r = sync_start(a);
	if (r) {
		sb_puts(err, "cannot start the array's background thread");
		goto fail;
	}
	*out = a;
	return 0;

fail:
	reshape_stop(a);
	reshape_free(a);
	csum_free(a);
	journal_free(a);
	raid_geom_free(&a->g);
	free(a->bits);
	free(a->bits_disk);
	free(a->bcount);
	free(a->bage);
	free(a->name);
	free(a);
	return r;
}

void raid_array_destroy(struct raid_array *a)
{
	if (!a)
		return;
	reshape_stop(a);
	sync_stop(a);
	raid_array_mark_clean(a);
	reshape_free(a);
	csum_free(a);
	journal_free(a);
	raid_geom_free(&a->g);
	free(a->bits);
	free(a->bits_disk);
	free(a->bcount);
	free(a->bage);
	pthread_rwlock_destroy(&a->mlock);
	pthread_rwlock_destroy(&a->gate);
	free(a->name);
	free(a);
}

/* ---- management ------------------------------------------------------------------------------ */

int raid_array_rebind(struct raid_array *a, struct bs_bdev *old, struct bs_bdev *new)
{
	int r = -ENOENT;

	pthread_rwlock_wrlock(&a->mlock);
	for (unsigned i = 0; i < a->g.disks; i++)
		if (a->m[i].bdev == old) {
			a->m[i].bdev = new;
			r = 0;
		}
	for (unsigned i = 0; i < a->nspares; i++)
		if (a->spare[i].bdev == old) {
			a->spare[i].bdev = new;
			r = 0;
		}
	for (unsigned i = a->g.disks; i < RAID_MAX_DISKS; i++)
		if (a->m[i].bdev == old) {
			a->m[i].bdev = new; /* a new member of a grow */
			r = 0;
		}
	pthread_rwlock_unlock(&a->mlock);
	reshape_rebind(a, old, new);
	return r;
}

static int find_member(struct raid_array *a, const char *name, bool *spare)
{
	for (unsigned i = 0; i < a->g.disks; i++)
		if (a->m[i].bdev && !strcmp(a->m[i].bdev->name, name)) {
			*spare = false;
			return (int)i;
		}
	for (unsigned i = 0; i < a->nspares; i++)
		if (a->spare[i].bdev && !strcmp(a->spare[i].bdev->name, name)) {
			*spare = true;
			return (int)i;
		}
	return -1;
}

int raid_array_fail_member(struct raid_array *a, const char *name, struct strbuf *err)
{
	bool spare;
	int i = find_member(a, name, &spare);

	if (i < 0) {
		sb_printf(err, "%s is not a member of %s", name, a->name);
		return -ENOENT;
	}
	if (spare) {
		sb_printf(err, "%s is a spare; remove it instead", name);
		return -EINVAL;
	}
	fail_member(a, (unsigned)i, "failed by request");
	return 0;
}

int raid_array_remove_member(struct raid_array *a, const char *name, struct bs_bdev **out,
			     struct strbuf *err)
{
	bool spare;
	int i;
	struct bs_bdev *victim = NULL;

	pthread_rwlock_wrlock(&a->mlock);
	i = find_member(a, name, &spare);

	if (i < 0) {
		pthread_rwlock_unlock(&a->mlock);
		sb_printf(err, "%s is not a member of %s", name, a->name);
		return -ENOENT;
	}
	pthread_mutex_lock(&a->state_lock);
	if (spare) {
		victim = a->spare[i].bdev;
		a->spare[i] = a->spare[--a->nspares];
		memset(&a->spare[a->nspares], 0, sizeof(a->spare[0]));
	} else {
		int s = atomic_load(&a->m[i].state);

		if (s != RM_FAULTY) {
			pthread_mutex_unlock(&a->state_lock);
			pthread_rwlock_unlock(&a->mlock);
			sb_printf(err,
				  "%s is active in %s: fail it first (Device or resource busy)",
				  name, a->name);
			return -EBUSY;
		}
		victim = a->m[i].bdev;
		a->m[i].bdev = NULL;
		atomic_store(&a->m[i].state, RM_MISSING);
	}
	pthread_mutex_unlock(&a->state_lock);
	/* Holding mlock exclusively, no member I/O is in flight: the bdev can go. */
	pthread_rwlock_unlock(&a->mlock);
	meta_update(a);
	*out = victim;
	raise_event(a);
	return 0;
}

int raid_array_add_spare(struct raid_array *a, struct bs_bdev *b, uint64_t data_offset,
			 uint64_t data_sectors, uint64_t journal_offset, uint64_t csum_offset,
			 struct strbuf *err)
{
	uint64_t need = a->g.level == 0 ? 0 : a->g.dev_sectors;
	struct member *m;

	if (data_sectors < need) {
		sb_printf(err, "%s is too small: %llu sectors of data, the array needs %llu",
			  b->name, (unsigned long long)data_sectors, (unsigned long long)need);
		return -ENOSPC;
	}
	pthread_mutex_lock(&a->state_lock);
	if (a->nspares == RAID_MAX_SPARES) {
		pthread_mutex_unlock(&a->state_lock);
		sb_puts(err, "too many spares");
		return -ENOSPC;
	}
	m = &a->spare[a->nspares];
	memset(m, 0, sizeof(*m));
	m->bdev = b;
	m->data_offset = data_offset;
	m->data_sectors = data_sectors;
	m->journal_offset = journal_offset;
	m->csum_offset = csum_offset;
	pthread_mutex_init(&m->csum_lock, NULL);
	if (csum_add(a, m)) {
		pthread_mutex_unlock(&a->state_lock);
		sb_puts(err, "out of memory");
		return -ENOMEM;
	}
	atomic_store(&m->state, RM_SPARE);
	a->nspares++;
	pthread_mutex_unlock(&a->state_lock);
	meta_update(a);
	raise_event(a);
	sync_kick(a);
	return 0;
}

unsigned raid_array_members(struct raid_array *a, struct raid_member_info *out, unsigned max)
{
	unsigned n = 0, disks = a->rs ? reshape_member_count(a) : a->g.disks;

	pthread_mutex_lock(&a->state_lock);
	for (unsigned i = 0; i < disks && n < max; i++, n++)
		out[n] = (struct raid_member_info){
		    a->m[i].bdev, (int)i, (enum raid_member_state)atomic_load(&a->m[i].state),
		    atomic_load(&a->m[i].recovery_offset)};
	for (unsigned i = 0; i < a->nspares && n < max; i++, n++)
		out[n] = (struct raid_member_info){
		    a->spare[i].bdev, -1, (enum raid_member_state)atomic_load(&a->spare[i].state),
		    0};
	pthread_mutex_unlock(&a->state_lock);
	return n;
}

const char *raid_array_member_name(struct raid_array *a, unsigned idx)
{
	if (idx < a->g.disks)
		return a->m[idx].bdev ? a->m[idx].bdev->name : NULL;
	idx -= a->g.disks;
	return idx < a->nspares && a->spare[idx].bdev ? a->spare[idx].bdev->name : NULL;
}

struct bs_bdev *raid_array_member_bdev(struct raid_array *a, unsigned role)
{
	return role < a->g.disks ? a->m[role].bdev : NULL;
}

void raid_array_status(struct raid_array *a, struct raid_status *st)
{
	memset(st, 0, sizeof(*st));
	st->level = a->g.level;
	st->disks = a->g.disks;
	st->layout = a->g.layout;
	st->chunk = a->g.chunk;
	st->array_sectors = a->g.array_sectors;
	st->dev_sectors = a->g.dev_sectors;
	st->policy = a->cfg.policy;
	pthread_mutex_lock(&a->state_lock);
	st->degraded = a->degraded;
	st->failed = a->failed;
	st->nspares = a->nspares;
	for (unsigned i = 0; i < a->g.disks; i++) {
		st->state[i] = (enum raid_member_state)atomic_load(&a->m[i].state);
		st->recovery_offset[i] = atomic_load(&a->m[i].recovery_offset);
		if (st->state[i] == RM_REBUILDING)
			st->sync_pending = true;
		if ((st->state[i] == RM_MISSING || st->state[i] == RM_FAULTY) && !a->failed)
			for (unsigned k = 0; k < a->nspares; k++)
				if (atomic_load(&a->spare[k].state) == RM_SPARE)
					st->sync_pending = true;
	}

	pthread_mutex_unlock(&a->state_lock);
	pthread_mutex_lock(&a->sync_lock);
	st->clean = a->clean;
	st->action = a->frozen ? RAID_SYNC_FROZEN : a->action;
	st->sync_done = a->sync_pos;
	st->sync_total = a->sync_end;
	st->sync_speed = a->sync_speed;
	st->sync_pending = !a->frozen && !a->failed &&
			   (st->sync_pending || a->requested != RAID_SYNC_IDLE ||
			    (a->resync_offset != UINT64_MAX && !a->degraded && a->g.level != 0));

	st->mismatch_cnt = a->mismatch_cnt;
	st->repaired_cnt = a->repaired_cnt;
	pthread_mutex_unlock(&a->sync_lock);
	st->corrected = atomic_load(&a->corrected);
	/*
	 * What the superblock records: the resync checkpoint while a resync runs, but 0 (dirty)
	 * for an array in use - also right after a resync ends, until safe mode marks it clean.
	 */
	st->resync_offset = st->clean ? a->resync_offset
			    : st->action == RAID_SYNC_RESYNC && a->resync_offset != UINT64_MAX
				? a->resync_offset
				: 0;
	st->bitmap_bits = a->nbits;
	st->csum = a->cfg.csum;
	st->csum_errors = atomic_load(&a->csum_errors);
	st->journal_replayed = a->journal_replayed;
	st->journal_skipped = atomic_load(&a->jskipped);
	st->journal_flushes = atomic_load(&a->jflushes);
	pthread_mutex_lock(&a->bm_lock);
	for (uint64_t i = 0; i < a->nbits; i++)
		st->bitmap_dirty += (a->bits[i / 8] >> (i % 8)) & 1;
	pthread_mutex_unlock(&a->bm_lock);
	if (a->rs)
		reshape_status(a, st);
}
