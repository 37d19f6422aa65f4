/*
 * array_reshape.c - online grow of RAID4/5/6 onto more members (mdadm --grow --raid-devices),
 * without a backup file: every member's data area moves HEADROOM sectors (H/C = h chunks)
 * down, into free space before the data, as md does with a new data offset.
 *
 * Geometry.  Old: N members, D data chunks per stripe; new: N' members, D' > D.  Both use the
 * same chunk C and the same S sectors per member.  New stripe t holds array chunks
 * [tD', (t+1)D') and lives h rows below old stripe t on the members, i.e. it overwrites
 * the old row t - h.  The array is split at POS (a new-stripe boundary): array sectors below
 * it are in the new geometry, those above in the old one.
 *
 * Copying.  Windows of new stripes [t, te) are copied from the old geometry; requests
 * touching the window wait.  Writing the window overwrites old rows below te - h, and the
 * window reads old stripes from floor(tD'/D) on.  With te <= h + floor(tD'/D) every row
 * written holds old stripes that lie entirely below t (already copied, no longer used by
 * anything), so the old copy of everything from t on stays intact until the superblocks say
 * it was moved.  After each window: flush every member, persist reshape_position = te
 * (the meta callback), and only then let requests into the window.  A crash at any moment
 * leaves reshape_position at a window start whose old data is intact: resuming copies that
 * window again, which is idempotent.  Windows are h new stripes at first and grow as the
 * copy advances (floor(tD'/D) - t grows).
 *
 * What the grow does not keep: the journal is emptied (after a flush) and off while it runs,
 * and the write-intent bitmap is not trusted: after an unclean stop during a grow, the whole
 * array is resynced once the grow has finished.  A member failure pauses the grow (the
 * array goes on serving); a degraded array cannot start or resume one.
 */
#include "raid/array_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/scratch.h"

#define MAX_WINDOW 256 /* new stripes per window, at most */

struct reshape {
	struct raid_array *shadow; /* the new geometry over the same members, data at new offsets */
	unsigned old_disks, new_disks;
	uint64_t headroom; /* sectors */
	uint64_t wstripe;  /* array sectors per new stripe */
	uint64_t total;	   /* new stripes */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t pos;		 /* array sectors in the new geometry */
	uint64_t committed;	 /* what the superblocks may say (flushed) */
	uint64_t win_lo, win_hi; /* being copied: requests wait */
	enum raid_policy policy; /* to restore at the end */
	bool need_resync;	 /* an unclean stop happened during the grow */
	bool quit, running, stalled;
	uint64_t max_kbs; /* BLKSTACK_RAID_SPEED_MAX, 0 = unlimited */
	double speed;
	pthread_t thread;
};

/* ---- requests ------------------------------------------------------------------------------ */

int reshape_io(struct raid_array *a, struct bs_io *io)
{
	struct reshape *rs = a->rs;
	uint64_t s = io->off >> 9, e = s + (io->len >> 9), pos;
	struct bs_io lo, hi;
	int r;

	if (io->op == BS_OP_FLUSH)
		return array_dispatch(rs->shadow, io); /* the shadow holds every member */
	pthread_mutex_lock(&rs->mu);
	while (s < rs->win_hi && e > rs->win_lo)
		pthread_cond_wait(&rs->cv, &rs->mu);
	pos = rs->pos;
	pthread_mutex_unlock(&rs->mu);
	if (e <= pos)
		return array_dispatch(rs->shadow, io);
	if (s >= pos)
		return array_dispatch(a, io);
	lo = *io;
	lo.len = (pos - s) << 9;
	hi = *io;
	hi.off = pos << 9;
	hi.len = (e - pos) << 9;
	if (io->buf)
		hi.buf = (char *)io->buf + lo.len;
	r = array_dispatch(rs->shadow, &lo);
	if (!r)
		r = array_dispatch(a, &hi);
	return r;
}

int reshape_flush_new(struct raid_array *a)
{
	struct reshape *rs = a->rs_mem;
	int r = 0;

	if (!rs)
		return 0;
	for (unsigned i = rs->old_disks; i < rs->new_disks && i >= a->g.disks; i++) {
		int e = member_io_raw(a, i, BS_OP_FLUSH, NULL, 0, 0, 0);

		if (e && !r)
			r = e;
	}
	return r;
}

/* ---- state for front ends ------------------------------------------------------------------ */

unsigned reshape_member_count(struct raid_array *a)
{
	return a->rs_mem->new_disks;
}

void reshape_status(struct raid_array *a, struct raid_status *st)
{
	struct reshape *rs = a->rs_mem;

	if (!rs || !a->rs)
		return;
	pthread_mutex_lock(&a->state_lock);
	for (unsigned i = rs->old_disks; i < rs->new_disks; i++) {
		st->state[i] = (enum raid_member_state)atomic_load(&a->m[i].state);
		st->recovery_offset[i] = 0;
		if (st->state[i] != RM_IN_SYNC)
			st->degraded++;
	}
	pthread_mutex_unlock(&a->state_lock);
	pthread_mutex_lock(&rs->mu);
	st->reshaping = true;
	st->reshape_old_disks = rs->old_disks;
	st->disks = rs->new_disks;
	st->reshape_pos = rs->committed;
	st->reshape_headroom = rs->headroom;
	st->reshape_stalled = rs->stalled;
	if (st->action != RAID_SYNC_FROZEN)
		st->action = RAID_SYNC_RESHAPE;
	st->sync_done = rs->pos / rs->wstripe * a->g.chunk;
	st->sync_total = rs->total * a->g.chunk;
	st->sync_speed = rs->speed;
	st->sync_pending = true;
	pthread_mutex_unlock(&rs->mu);
}

void reshape_rebind(struct raid_array *a, struct bs_bdev *old, struct bs_bdev *new)
{
	struct reshape *rs = a->rs;

	if (rs && rs->shadow)
		raid_array_rebind(rs->shadow, old, new);
}

/* ---- the copy ------------------------------------------------------------------------------- */

/* Copies new stripe U from the old geometry (zeroes past the old end). */
static int copy_stripe(struct raid_array *a, struct reshape *rs, uint64_t u, char *buf)
{
	uint64_t lo = u * rs->wstripe, hi = lo + rs->wstripe, old_end = a->g.array_sectors;
	struct bs_io io;
	int r;

	memset(buf, 0, rs->wstripe << 9);
	if (lo < old_end) {
		io = (struct bs_io){.op = BS_OP_READ,
				    .off = lo << 9,
				    .len = ((hi < old_end ? hi : old_end) - lo) << 9,
				    .buf = buf};
		r = array_dispatch(a, &io);
		if (r)
			return r;
	}
	io = (struct bs_io){.op = BS_OP_WRITE, .off = lo << 9, .len = rs->wstripe << 9, .buf = buf};
	return array_dispatch(rs->shadow, &io);
}

static bool should_quit(struct reshape *rs)
{
	bool q;

	pthread_mutex_lock(&rs->mu);
	q = rs->quit;
	pthread_mutex_unlock(&rs->mu);
	return q;
}

/* Sleeps MS milliseconds or until asked to quit. */
static void nap(struct reshape *rs, uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&rs->mu);
	if (!rs->quit)
		pthread_cond_timedwait(&rs->cv, &rs->mu, &ts);
	pthread_mutex_unlock(&rs->mu);
}

/* Sleeps as long as copying DONE stripes since MS0 is ahead of the speed limit. */
static void throttle(struct reshape *rs, uint64_t done, uint64_t chunk, uint64_t ms0)
{
	uint64_t want = done * chunk / 2 * 1000 / rs->max_kbs, spent = now_ms() - ms0;

	if (want > spent)
		nap(rs, want - spent);
}

static bool healthy(struct raid_array *a, struct reshape *rs)
{
	bool ok;

	pthread_mutex_lock(&a->state_lock);
	ok = !a->failed && !a->degraded;
	for (unsigned i = rs->old_disks; i < rs->new_disks && ok; i++)
		ok = atomic_load(&a->m[i].state) == RM_IN_SYNC;
	pthread_mutex_unlock(&a->state_lock);
	if (ok) {
		pthread_mutex_lock(&rs->shadow->state_lock);
		ok = !rs->shadow->failed && !rs->shadow->degraded;
		pthread_mutex_unlock(&rs->shadow->state_lock);
	}
	return ok;
}

static bool paused(struct raid_array *a)
{
	bool p;

	pthread_mutex_lock(&a->sync_lock);
	p = a->paused || a->frozen;
	pthread_mutex_unlock(&a->sync_lock);
	return p;
}

/* Switches the array to the new geometry for good; the gate is taken here. */
static int finish(struct raid_array *a, struct reshape *rs)
{
	struct raid_geom ng;
	uint64_t sizes[RAID_MAX_DISKS];
	struct strbuf err = STRBUF_INIT;
	const char *why;
	int r;

	for (unsigned i = 0; i < rs->new_disks; i++)
		sizes[i] = a->g.dev_sectors;
	r = raid_geom_init(&ng, a->g.level, rs->new_disks, a->g.layout, a->g.chunk, sizes, &why);
	if (r) {
		bs_err("%s: grow cannot finish: %s", a->name, why);
		return r;
	}
	pthread_rwlock_wrlock(&a->gate);
	flush_members(rs->shadow);
	pthread_rwlock_wrlock(&a->mlock);
	for (unsigned i = 0; i < rs->new_disks; i++) {
		a->m[i].data_offset -= rs->headroom;
		a->m[i].data_sectors += rs->headroom;
	}
	for (unsigned i = 0; i < a->nspares; i++)
		if (a->spare[i].data_offset >= rs->headroom) {
			a->spare[i].data_offset -= rs->headroom;
			a->spare[i].data_sectors += rs->headroom;
		}
	raid_geom_free(&a->g);
	a->g = ng;
	a->cfg.disks = rs->new_disks;
	pthread_rwlock_unlock(&a->mlock);
	pthread_mutex_lock(&a->state_lock);
	a->degraded = 0;
	for (unsigned i = 0; i < a->g.disks; i++)
		if (atomic_load(&a->m[i].state) != RM_IN_SYNC)
			a->degraded++;
	pthread_mutex_unlock(&a->state_lock);
	if (rs->policy == RAID_POLICY_JOURNAL) {
		/* The rings were emptied when the grow started and nothing was logged since. */
		for (unsigned i = 0; i < RAID_MAX_DISKS; i++) {
			a->ring[i].head = 0;
			a->ring[i].half = 0;
			memset(a->ring[i].hactive, 0, sizeof(a->ring[i].hactive));
			memset(a->ring[i].hepoch, 0, sizeof(a->ring[i].hepoch));
		}
		a->cfg.policy = RAID_POLICY_JOURNAL;
		if (journal_init(a, &err)) {
			bs_err("%s: journal after the grow: %s; going on without it", a->name,
			       sb_str(&err));
			a->cfg.policy = RAID_POLICY_RESYNC;
		}
	}
	if (rs->need_resync) {
		/* Writes during the grow were not journaled and the bitmap was not kept. */
		pthread_mutex_lock(&a->bm_lock);
		if (a->bits)
			memset(a->bits, 0xff, (a->nbits + 7) / 8);
		pthread_mutex_unlock(&a->bm_lock);
		pthread_mutex_lock(&a->sync_lock);
		a->resync_offset = 0;
		pthread_mutex_unlock(&a->sync_lock);
		__atomic_store_n(&a->clean, false, __ATOMIC_SEQ_CST);
	}
	a->rs = NULL;
	pthread_rwlock_unlock(&a->gate);
	meta_update(a); /* the final superblocks: new raid_disks and data offsets */
	sb_free(&err);
	bs_info("%s: grow to %u members complete: %llu sectors", a->name, rs->new_disks,
		(unsigned long long)a->g.array_sectors);
	raise_event(a);
	sync_kick(a);
	return 0;
}

static void *reshape_main(void *arg)
{
	struct raid_array *a = arg;
	struct reshape *rs = a->rs_mem;
	const uint64_t C = a->g.chunk, h = rs->headroom / C;
	const unsigned D = a->g.data_disks, D2 = rs->shadow->g.data_disks;
	uint64_t t = rs->pos / rs->wstripe, t0 = t, ms0 = now_ms();
	char *buf = malloc(rs->wstripe << 9);
	bool warned = false;
	uint64_t max_window = MAX_WINDOW;

	/*
	 * Progress is counted per member, as md's speed limits are.  A limited copy sleeps
	 * inside its windows (so an interruption finds one open, which the crash test wants),
	 * and a window then lasts about a quarter of a second at most.
	 */
	if (rs->max_kbs && rs->max_kbs / 4 / (C / 2) < max_window)
		max_window = rs->max_kbs / 4 / (C / 2) ? rs->max_kbs / 4 / (C / 2) : 1;

	if (!buf) {
		bs_err("%s: grow: out of memory", a->name);
		return NULL;
	}
	bs_info("%s: grow from %u to %u members %s at stripe %llu of %llu", a->name, rs->old_disks,
		rs->new_disks, t ? "resumed" : "started", (unsigned long long)t,
		(unsigned long long)rs->total);
	while (t < rs->total && !should_quit(rs)) {
		uint64_t te = h + t * D2 / D, u;
		int r = 0;

		if (paused(a)) {
			nap(rs, 200); /* the device is suspended, or frozen */
			continue;
		}
		if (!healthy(a, rs)) {
			if (!warned)
				bs_err("%s: grow paused: a member is missing or faulty", a->name);
			warned = true;
			pthread_mutex_lock(&rs->mu);
			rs->stalled = true;
			pthread_mutex_unlock(&rs->mu);
			nap(rs, 500);
			continue;
		}
		if (te > rs->total)
			te = rs->total;
		if (te > t + max_window)
			te = t + max_window;
		pthread_rwlock_wrlock(&a->gate);
		pthread_mutex_lock(&rs->mu);
		rs->win_lo = t * rs->wstripe;
		rs->win_hi = te * rs->wstripe;
		pthread_mutex_unlock(&rs->mu);
		pthread_rwlock_unlock(&a->gate);
		for (u = t; u < te && !r; u++) {
			r = copy_stripe(a, rs, u, buf);
			if (!r && rs->max_kbs)
				throttle(rs, u + 1 - t0, C, ms0);
			if (!r && u + 1 < te && should_quit(rs))
				r = -EINTR; /* abandoned: the window stays in the old geometry */
		}
		if (!r)
			r = flush_members(rs->shadow);
		if (r) {
			/* Nothing below the window changed: it stays in the old geometry. */
			if (r != -EINTR)
				bs_err("%s: grow stopped at stripe %llu: %s", a->name,
				       (unsigned long long)t, strerror(-r));
			pthread_mutex_lock(&rs->mu);
			rs->win_lo = rs->win_hi = 0;
			rs->stalled = r != -EINTR;
			pthread_cond_broadcast(&rs->cv);
			pthread_mutex_unlock(&rs->mu);
			if (r != -EINTR)
				nap(rs, 1000);
			continue;
		}
		pthread_mutex_lock(&rs->mu);
		rs->committed = te * rs->wstripe;
		pthread_mutex_unlock(&rs->mu);
		if (meta_update(a)) {
			pthread_mutex_lock(&rs->mu);
			rs->committed = t * rs->wstripe;
			rs->win_lo = rs->win_hi = 0;
			pthread_cond_broadcast(&rs->cv);
			pthread_mutex_unlock(&rs->mu);
			nap(rs, 1000);
			continue;
		}
		pthread_mutex_lock(&rs->mu);
		rs->pos = te * rs->wstripe;
		rs->win_lo = rs->win_hi = 0;
		rs->stalled = false;
		{
			double secs = (now_ms() - ms0) / 1000.0;

			if (secs > 0.2)
				rs->speed = (double)(te - t0) * C / 2.0 / secs;
		}
		pthread_cond_broadcast(&rs->cv);
		pthread_mutex_unlock(&rs->mu);
		raise_event(a);
		warned = false;
		t = te;
	}
	free(buf);
	if (t >= rs->total)
		finish(a, rs);
	bs_scratch_release_thread();
	return NULL;
}

/* ---- start, resume, stop ------------------------------------------------------------------ */

/*
 * A member the shadow failed (a write below the split) is failed in the array too, which
 * persists it; and the other way round (reshape_member_failed).  Either pauses the grow.
 */
static void shadow_event(void *arg)
{
	struct raid_array *a = arg;
	struct reshape *rs = a->rs_mem;

	if (!rs || !rs->shadow)
		return;
	for (unsigned i = 0; i < rs->new_disks; i++)
		if (atomic_load(&rs->shadow->m[i].state) == RM_FAULTY &&
		    atomic_load(&a->m[i].state) != RM_FAULTY)
			fail_member(a, i, "failed in the new geometry of the grow");
}

void reshape_member_failed(struct raid_array *a, unsigned r)
{
	struct reshape *rs = a->rs_mem;

	if (a->rs && rs->shadow && r < rs->new_disks)
		fail_member(rs->shadow, r, "failed in the old geometry of the grow");
}

/* Builds the shadow array and the state; the new members are in a->m[old..new). */
static int reshape_build(struct raid_array *a, unsigned new_disks, uint64_t headroom, uint64_t pos,
			 struct strbuf *err)
{
	struct raid_member_spec specs[RAID_MAX_DISKS];
	struct raid_config sc = {0};
	struct reshape *rs;
	char name[160];
	int r;

	if (a->g.level < 4 || a->g.level > 6) {
		sb_printf(err, "%s: only RAID4/5/6 can grow onto more members", a->name);
		return -EOPNOTSUPP;
	}
	if (a->cfg.csum) {
		sb_printf(err, "%s: arrays with a checksum log cannot grow", a->name);
		return -EOPNOTSUPP;
	}
	if (!headroom || headroom % a->g.chunk) {
		sb_printf(err, "%s: grow headroom of %llu sectors is not a multiple of the chunk",
			  a->name, (unsigned long long)headroom);
		return -EINVAL;
	}
	for (unsigned i = 0; i < new_disks; i++) {
		struct member *m = &a->m[i];
		int st = atomic_load(&m->state);

		if (!m->bdev || st == RM_MISSING || st == RM_FAULTY) {
			/* Resumed degraded: the grow waits, the array serves in both geometries. */
			specs[i] = (struct raid_member_spec){.role = (int)i, .state = RM_MISSING};
			continue;
		}
		if (m->data_offset < headroom || m->data_sectors + headroom < a->g.dev_sectors) {
			sb_printf(err, "%s: %s has no room to move its data %llu sectors down",
				  a->name, m->bdev->name, (unsigned long long)headroom);
			return -ENOSPC;
		}
		specs[i] = (struct raid_member_spec){
		    .bdev = m->bdev,
		    .role = (int)i,
		    .data_offset = m->data_offset - headroom,
		    .data_sectors = m->data_sectors + headroom,
		    .state = RM_IN_SYNC,
		};
	}
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	snprintf(name, sizeof(name), "%s (grow)", a->name);
	sc.level = a->g.level;
	sc.disks = new_disks;
	sc.layout = a->g.layout;
	sc.chunk = a->g.chunk;
	sc.dev_sectors = a->g.dev_sectors;
	sc.policy = RAID_POLICY_RESYNC;
	memcpy(sc.uuid, a->cfg.uuid, 16);
	sc.resync_offset = UINT64_MAX;
	sc.start_degraded = true;
	sc.event = shadow_event;
	sc.event_arg = a;
	sc.name = name;
	r = raid_array_create(&sc, specs, new_disks, &rs->shadow, err);
	if (r) {
		free(rs);
		return r;
	}
	pthread_mutex_init(&rs->mu, NULL);
	pthread_cond_init(&rs->cv, NULL);
	rs->old_disks = a->g.disks;
	rs->new_disks = new_disks;
	rs->headroom = headroom;
	rs->wstripe = rs->shadow->g.data_disks * a->g.chunk;
	rs->total = a->g.dev_sectors / a->g.chunk;
	rs->pos = rs->committed = pos - pos % rs->wstripe;
	if (rs->pos > rs->total * rs->wstripe)
		rs->pos = rs->committed = rs->total * rs->wstripe;
	rs->policy = a->cfg.policy;
	{
		const char *lim = getenv("BLKSTACK_RAID_SPEED_MAX");

		rs->max_kbs = lim ? strtoull(lim, NULL, 10) : 0;
	}
	a->cfg.policy = RAID_POLICY_RESYNC;
	a->rs_mem = rs;
	return 0;
}

static int reshape_run(struct raid_array *a)
{
	struct reshape *rs = a->rs_mem;

	if (pthread_create(&rs->thread, NULL, reshape_main, a))
		return -EAGAIN;
	rs->running = true;
	return 0;
}

int reshape_setup(struct raid_array *a, const struct raid_config *cfg, struct strbuf *err)
{
	int r;

	if (cfg->reshape_disks <= cfg->disks || cfg->reshape_disks > RAID_MAX_DISKS) {
		sb_printf(err, "grow from %u to %u members is not supported", cfg->disks,
			  cfg->reshape_disks);
		return -EINVAL;
	}
	r = reshape_build(a, cfg->reshape_disks, cfg->reshape_headroom, cfg->reshape_pos, err);
	if (r)
		return r;
	a->rs_mem->policy = cfg->policy;
	a->rs_mem->need_resync = cfg->resync_offset != UINT64_MAX;
	a->rs = a->rs_mem;
	r = reshape_run(a);
	if (r)
		sb_puts(err, "cannot start the grow thread");
	return r;
}

/* Empties the journal rings of the first N members (their records are all in place). */
static int journal_clear(struct raid_array *a, unsigned n)
{
	const uint64_t piece = 2048;
	char *z = calloc(piece, 512);
	int r = 0;

	if (!z)
		return -ENOMEM;
	for (unsigned i = 0; i < n && !r; i++) {
		struct member *m = &a->m[i];

		if (!m->bdev || !m->journal_offset)
			continue;
		for (uint64_t o = 0; o < a->cfg.journal_sectors && !r; o += piece) {
			uint64_t k =
			    a->cfg.journal_sectors - o < piece ? a->cfg.journal_sectors - o : piece;

			r = bs_bdev_write(m->bdev, z, k << 9, (m->journal_offset + o) << 9, 0);
		}
		if (!r)
			r = bs_bdev_flush(m->bdev);
	}
	free(z);
	return r;
}

int raid_array_grow(struct raid_array *a, unsigned new_disks, uint64_t headroom, struct strbuf *err)
{
	unsigned old = a->g.disks, need, taken = 0;
	int r;

	if (a->rs) {
		sb_printf(err, "%s: a grow is already in progress", a->name);
		return -EBUSY;
	}
	if (a->rs_mem) {
		/* What a finished grow left (its thread has ended or is ending). */
		reshape_stop(a);
		reshape_free(a);
	}
	if (a->g.level < 4 || a->g.level > 6) {
		sb_printf(err, "%s: only RAID4/5/6 can grow onto more members", a->name);
		return -EOPNOTSUPP;
	}
	if (new_disks == old) {
		sb_printf(err, "%s already has %u members", a->name, old);
		return -EALREADY;
	}
	if (new_disks < old || new_disks > RAID_MAX_DISKS) {
		sb_printf(err,
			  "%s: growing from %u to %u members is not supported (only more, up "
			  "to %d)",
			  a->name, old, new_disks, RAID_MAX_DISKS);
		return -EINVAL;
	}
	need = new_disks - old;
	pthread_mutex_lock(&a->sync_lock);
	pthread_mutex_lock(&a->state_lock);
	if (a->failed || a->degraded) {
		r = -EBUSY;
		sb_printf(err, "%s is degraded: rebuild it before growing", a->name);
	} else if (a->action != RAID_SYNC_IDLE || a->requested != RAID_SYNC_IDLE ||
		   a->resync_offset != UINT64_MAX) {
		r = -EBUSY;
		sb_printf(err, "%s is busy with %s: wait for it to finish before growing", a->name,
			  raid_sync_action_name(a->action != RAID_SYNC_IDLE ? a->action
									    : RAID_SYNC_RESYNC));
	} else {
		unsigned spares = 0;

		for (unsigned i = 0; i < a->nspares; i++)
			spares += atomic_load(&a->spare[i].state) == RM_SPARE &&
				  a->spare[i].data_sectors >= a->g.dev_sectors;
		r = spares < need ? -ENOSPC : 0;
		if (r)
			sb_printf(err,
				  "%s: growing to %u members needs %u spares (add them first), "
				  "%u available",
				  a->name, new_disks, need, spares);
	}
	pthread_mutex_unlock(&a->state_lock);
	pthread_mutex_unlock(&a->sync_lock);
	if (r)
		return r;

	/* Every request drains; nothing else starts while the gate is held. */
	pthread_rwlock_wrlock(&a->gate);
	pthread_rwlock_wrlock(&a->mlock);
	pthread_mutex_lock(&a->state_lock);
	for (unsigned i = 0; i < a->nspares && taken < need;) {
		struct member *s = &a->spare[i];

		if (atomic_load(&s->state) != RM_SPARE || s->data_sectors < a->g.dev_sectors) {
			i++;
			continue;
		}
		a->m[old + taken] = *s;
		atomic_store(&a->m[old + taken].state, RM_IN_SYNC);
		atomic_store(&a->m[old + taken].recovery_offset, 0);
		taken++;
		*s = a->spare[--a->nspares];
		memset(&a->spare[a->nspares], 0, sizeof(*s));
	}
	pthread_mutex_unlock(&a->state_lock);
	pthread_rwlock_unlock(&a->mlock);
	r = flush_members(a);
	for (unsigned i = old; i < new_disks && !r; i++)
		r = member_io_raw(a, i, BS_OP_FLUSH, NULL, 0, 0, 0);
	if (!r && a->cfg.policy == RAID_POLICY_JOURNAL)
		r = journal_clear(a, new_disks);
	if (!r)
		r = reshape_build(a, new_disks, headroom, 0, err);
	else
		sb_printf(err, "%s: cannot prepare the members for the grow: %s", a->name,
			  strerror(-r));
	if (r) {
		/* Give the spares back. */
		pthread_rwlock_wrlock(&a->mlock);
		pthread_mutex_lock(&a->state_lock);
		for (unsigned i = old; i < new_disks; i++) {
			if (a->m[i].bdev && a->nspares < RAID_MAX_SPARES) {
				a->spare[a->nspares] = a->m[i];
				atomic_store(&a->spare[a->nspares++].state, RM_SPARE);
			}
			memset(&a->m[i], 0, sizeof(a->m[i]));
		}
		pthread_mutex_unlock(&a->state_lock);
		pthread_rwlock_unlock(&a->mlock);
		pthread_rwlock_unlock(&a->gate);
		return r;
	}
	a->rs = a->rs_mem;
	/* The superblocks say RESHAPE_ACTIVE at 0 before any request or data moves. */
	r = meta_update(a);
	pthread_rwlock_unlock(&a->gate);
	if (r) {
		sb_printf(err, "%s: cannot write the superblocks: %s", a->name, strerror(-r));
		return r;
	}
	raise_event(a);
	r = reshape_run(a);
	if (r)
		sb_puts(err, "cannot start the grow thread");
	return r;
}

void reshape_stop(struct raid_array *a)
{
	struct reshape *rs = a->rs_mem;

	if (!rs || !rs->running)
		return;
	pthread_mutex_lock(&rs->mu);
	rs->quit = true;
	pthread_cond_broadcast(&rs->cv);
	pthread_mutex_unlock(&rs->mu);
	pthread_join(rs->thread, NULL);
	rs->running = false;
}

void reshape_free(struct raid_array *a)
{
	struct reshape *rs = a->rs_mem;

	if (!rs)
		return;
	if (rs->shadow)
		raid_array_destroy(rs->shadow);
	pthread_mutex_destroy(&rs->mu);
	pthread_cond_destroy(&rs->cv);
	free(rs);
	a->rs_mem = NULL;
	a->rs = NULL;
}
