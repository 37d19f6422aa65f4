/*
 * device.c - the device registry, dm state machine and the request gate.
 *
 * Locking, outermost first:
 *   load_lock      serialises table construction, so that cycle checks see a stable graph
 *   dev->ctl_lock  serialises control operations (load/suspend/resume/remove/status) on one
 *                  device; table pointers only change under it
 *   reg_lock       registry membership, open and holder counts, table pointers for readers
 *                  that walk the graph (cycle checks, deps)
 *   dev->lock      suspended flag, in-flight count, event counter; guards the request gate
 * Requests only take dev->lock, twice, briefly.
 */
#include "engine/device.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/scratch.h"

#define RMW_LOCKS 32

struct bs_device {
	char name[BS_DEVICE_NAME_MAX];
	char uuid[BS_DEVICE_UUID_MAX];
	unsigned minor;
	bool readonly;
	atomic_uint refs;

	pthread_mutex_t ctl_lock;

	/* reg_lock */
	bool creating; /* invisible to lookups until its first table is in place */
	bool dead;
	unsigned open_count;
	unsigned holders;
	struct bs_device *next;

	/* ctl_lock to change; reg_lock or dev->lock (gate) to read */
	struct bs_table *live;
	struct bs_table *inactive;

	/* dev->lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool suspended;
	unsigned inflight;
	uint32_t event_nr;

	pthread_mutex_t rmw_lock[RMW_LOCKS];
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t close_cond = PTHREAD_COND_INITIALIZER; /* an open went away */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool holding_stopped; /* shutdown: suspended devices fail requests */
static struct bs_device *devices;

const char *bs_device_name_invalid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0)
		return "empty name";
	if (n >= BS_DEVICE_NAME_MAX)
		return "name longer than 127 characters";
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return "reserved name";
	for (const char *p = name; *p; p++) {
		if (*p == '/')
			return "name contains '/'";
		if (iscntrl((unsigned char)*p) || isspace((unsigned char)*p))
			return "name contains white space or control characters";
	}
	return NULL;
}

static struct bs_device *find_locked(const char *name)
{
	for (struct bs_device *d = devices; d; d = d->next)
		if (!strcmp(d->name, name))
			return d;
	return NULL;
}

void bs_device_get(struct bs_device *dev)
{
	atomic_fetch_add(&dev->refs, 1);
}

void bs_device_put(struct bs_device *dev)
{
	if (!dev || atomic_fetch_sub(&dev->refs, 1) != 1)
		return;
	/* Tables were torn down by remove; only the shell is left. */
	pthread_mutex_destroy(&dev->ctl_lock);
	pthread_mutex_destroy(&dev->lock);
	pthread_cond_destroy(&dev->cond);
	for (unsigned i = 0; i < RMW_LOCKS; i++)
		pthread_mutex_destroy(&dev->rmw_lock[i]);
	free(dev);
}

struct bs_device *bs_device_lookup(const char *name)
{
	struct bs_device *d;

	pthread_mutex_lock(&reg_lock);
	d = find_locked(name);
	if (d && (d->creating || d->dead))
		d = NULL;
	if (d)
		bs_device_get(d);
	pthread_mutex_unlock(&reg_lock);
	return d;
}

int bs_device_open(struct bs_device *dev)
{
	int r = 0;

	pthread_mutex_lock(&reg_lock);
	if (dev->dead || dev->creating)
		r = -ENXIO;
	else
		dev->open_count++;
	pthread_mutex_unlock(&reg_lock);
	return r;
}

void bs_device_close(struct bs_device *dev)
{
	pthread_mutex_lock(&reg_lock);
	dev->open_count--;
	pthread_cond_broadcast(&close_cond);
	pthread_mutex_unlock(&reg_lock);
}

void bs_device_add_holder(struct bs_device *dev)
{
	pthread_mutex_lock(&reg_lock);
	dev->holders++;
	pthread_mutex_unlock(&reg_lock);
}

void bs_device_release_holder(struct bs_device *dev)
{
	pthread_mutex_lock(&reg_lock);
	dev->holders--;
	pthread_mutex_unlock(&reg_lock);
}

/* ---- cycle detection ----------------------------------------------------------------- */

static bool reaches_locked(struct bs_device *from, struct bs_device *target, unsigned depth)
{
	struct bs_table *tables[2] = {from->live, from->inactive};

	if (from == target)
		return true;
	if (depth > 64) /* deeper than any sane stack: treat as a cycle */
		return true;
	for (unsigned k = 0; k < 2; k++) {
		struct bs_table *t = tables[k];

		if (!t)
			continue;
		for (unsigned i = 0; i < t->nr_targets; i++)
			for (unsigned d = 0; d < t->targets[i].ndevs; d++) {
				struct bs_bdev *b = t->targets[i].devs[d].bdev;

				if (b->kind == BS_BDEV_DEVICE &&
				    reaches_locked(b->device, target, depth + 1))
					return true;
			}
	}
	return false;
}

bool bs_device_would_cycle(struct bs_device *owner, const char *path)
{
	static const char mapper[] = "/dev/mapper/";
	struct bs_device *d;
	bool r = false;

	if (strncmp(path, mapper, sizeof(mapper) - 1))
		return false;
	pthread_mutex_lock(&reg_lock);
	d = find_locked(path + sizeof(mapper) - 1);
	if (d)
		r = reaches_locked(d, owner, 0);
	pthread_mutex_unlock(&reg_lock);
	return r;
}

/* ---- life cycle ------------------------------------------------------------------------ */

static unsigned lowest_free_minor_locked(void)
{
	for (unsigned m = 0;; m++) {
		bool used = false;

		for (struct bs_device *d = devices; d && !used; d = d->next)
			used = d->minor == m;
		if (!used)
			return m;
	}
}

static void set_tables(struct bs_device *dev, struct bs_table *live, struct bs_table *inactive)
{
	pthread_mutex_lock(&reg_lock);
	pthread_mutex_lock(&dev->lock);
	dev->live = live;
	dev->inactive = inactive;
	pthread_mutex_unlock(&dev->lock);
	pthread_mutex_unlock(&reg_lock);
}

static int do_suspend(struct bs_device *dev, bool noflush)
{
	struct bs_table *t = dev->live;
	int r = 0;

	if (dev->suspended)
		return 0;
	if (t)
		bs_table_presuspend(t);
	pthread_mutex_lock(&dev->lock);
	dev->suspended = true;
	while (dev->inflight)
		pthread_cond_wait(&dev->cond, &dev->lock);
	pthread_mutex_unlock(&dev->lock);
	if (t && !noflush)
		r = bs_table_flush(t);
	if (t)
		bs_table_postsuspend(t);
	if (r)
		bs_warn("%s: flush on suspend failed: %s", dev->name, strerror(-r));
	return 0;
}

static void unsuspend(struct bs_device *dev)
{
	pthread_mutex_lock(&dev->lock);
	dev->suspended = false;
	pthread_cond_broadcast(&dev->cond);
	pthread_mutex_unlock(&dev->lock);
}

static int do_resume(struct bs_device *dev, struct strbuf *err)
{
	int r;

	if (dev->inactive) {
		struct bs_table *old = dev->live;

		do_suspend(dev, false);
		r = bs_table_preresume(dev->inactive, err);
		if (r)
			return r; /* stays suspended with both tables, as dm leaves it */
		set_tables(dev, dev->inactive, NULL);
		bs_table_destroy(old);
		bs_table_resume(dev->live);
	} else if (dev->suspended && dev->live) {
		r = bs_table_preresume(dev->live, err);
		if (r)
			return r;
		bs_table_resume(dev->live);
	}
	unsuspend(dev);
	return 0;
}

static int do_load(struct bs_device *dev, const char *text, struct strbuf *err)
{
	struct bs_table *t, *old;
	int r;

	pthread_mutex_lock(&load_lock);
	r = bs_table_create(text, dev, dev->readonly, &t, err);
	pthread_mutex_unlock(&load_lock);
	if (r)
		return r;
	old = dev->inactive;
	set_tables(dev, dev->live, t);
	bs_table_destroy(old);
	return 0;
}

/* Tears a device down; the caller has already unlinked it from the registry. */
static void destroy_device(struct bs_device *dev)
{
	struct bs_table *live, *inactive;

	pthread_mutex_lock(&dev->ctl_lock);
	do_suspend(dev, false);
	live = dev->live;
	inactive = dev->inactive;
	set_tables(dev, NULL, NULL);
	bs_table_destroy(inactive);
	bs_table_destroy(live);
	pthread_mutex_lock(&dev->lock);
	pthread_cond_broadcast(&dev->cond); /* waiters see dead */
	pthread_mutex_unlock(&dev->lock);
	pthread_mutex_unlock(&dev->ctl_lock);
	bs_device_put(dev);
}

static void unlink_locked(struct bs_device *dev)
{
	for (struct bs_device **pp = &devices; *pp; pp = &(*pp)->next)
		if (*pp == dev) {
			*pp = dev->next;
			break;
		}
	pthread_mutex_lock(&dev->lock);
	dev->dead = true;
	pthread_mutex_unlock(&dev->lock);
}

int bs_device_create(const char *name, const char *uuid, bool readonly, const char *table,
		     struct strbuf *err)
{
	struct bs_device *dev, **tail;
	const char *why = bs_device_name_invalid(name);
	int r;

	if (why) {
		sb_printf(err, "invalid device name: %s", why);
		return -EINVAL;
	}
	if (uuid && (strlen(uuid) >= BS_DEVICE_UUID_MAX || strpbrk(uuid, " \t\n"))) {
		sb_puts(err, "invalid uuid: longer than 128 characters or contains white space");
		return -EINVAL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		sb_puts(err, "out of memory");
		return -ENOMEM;
	}
	strcpy(dev->name, name);
	if (uuid)
		strcpy(dev->uuid, uuid);
	dev->readonly = readonly;
	dev->creating = true;
	atomic_init(&dev->refs, 1);
	pthread_mutex_init(&dev->ctl_lock, NULL);
	pthread_mutex_init(&dev->lock, NULL);
	pthread_cond_init(&dev->cond, NULL);
	for (unsigned i = 0; i < RMW_LOCKS; i++)
		pthread_mutex_init(&dev->rmw_lock[i], NULL);

	pthread_mutex_lock(&reg_lock);
	if (find_locked(name)) {
		pthread_mutex_unlock(&reg_lock);
		bs_device_put(dev);
		sb_printf(err, "device %s already exists", name);
		return -EEXIST;
	}
	if (uuid && *uuid)
		for (struct bs_device *d = devices; d; d = d->next)
			if (!strcmp(d->uuid, uuid)) {
				pthread_mutex_unlock(&reg_lock);
				bs_device_put(dev);
				sb_printf(err, "uuid %s is already used by device %s", uuid,
					  d->name);
				return -EEXIST;
			}
	dev->minor = lowest_free_minor_locked();
	for (tail = &devices; *tail; tail = &(*tail)->next)
		;
	*tail = dev;
	pthread_mutex_unlock(&reg_lock);

	if (table) {
		pthread_mutex_lock(&dev->ctl_lock);
		r = do_load(dev, table, err);
		if (!r)
			r = do_resume(dev, err);
		pthread_mutex_unlock(&dev->ctl_lock);
		if (r) {
			pthread_mutex_lock(&reg_lock);
			unlink_locked(dev);
			pthread_mutex_unlock(&reg_lock);
			destroy_device(dev);
			return r;
		}
	}
	pthread_mutex_lock(&reg_lock);
	dev->creating = false;
	pthread_mutex_unlock(&reg_lock);
	return 0;
}

int bs_device_load(struct bs_device *dev, const char *table, struct strbuf *err)
{
	int r;

	pthread_mutex_lock(&dev->ctl_lock);
	r = dev->dead ? -ENXIO : do_load(dev, table, err);
	pthread_mutex_unlock(&dev->ctl_lock);
	return r;
}

int bs_device_clear(struct bs_device *dev)
{
	struct bs_table *old;

	pthread_mutex_lock(&dev->ctl_lock);
	old = dev->inactive;
	set_tables(dev, dev->live, NULL);
	pthread_mutex_unlock(&dev->ctl_lock);
	bs_table_destroy(old);
	return 0;
}

int bs_device_suspend(struct bs_device *dev, bool noflush)
{
	int r;

	pthread_mutex_lock(&dev->ctl_lock);
	r = dev->dead ? -ENXIO : do_suspend(dev, noflush);
	pthread_mutex_unlock(&dev->ctl_lock);
	return r;
}

int bs_device_resume(struct bs_device *dev, struct strbuf *err)
{
	int r;

	pthread_mutex_lock(&dev->ctl_lock);
	r = dev->dead ? -ENXIO : do_resume(dev, err);
	pthread_mutex_unlock(&dev->ctl_lock);
	return r;
}

int bs_device_remove(const char *name, struct strbuf *err)
{
	struct bs_device *dev;

	pthread_mutex_lock(&reg_lock);
	dev = find_locked(name);
	if (!dev || dev->creating) {
		pthread_mutex_unlock(&reg_lock);
		sb_printf(err, "device %s does not exist", name);
		return -ENXIO;
	}
	/*
	 * A client that just disconnected may still be in its connection's teardown (a final
	 * flush); as a closed kernel block device would be, it should not count.  Give such
	 * opens a moment to go away before calling the device busy.
	 */
	if (dev->open_count && !dev->holders) {
		struct timespec until;
		bool dead;

		bs_device_get(dev); /* another remover may unlink it while we wait */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		while (dev->open_count && !dev->dead &&
		       pthread_cond_timedwait(&close_cond, &reg_lock, &until) == 0)
			;
		dead = dev->dead;
		if (dead) {
			pthread_mutex_unlock(&reg_lock);
			bs_device_put(dev);
			sb_printf(err, "device %s does not exist", name);
			return -ENXIO;
		}
		/* Still registered, so the registry's reference keeps it alive. */
		bs_device_put(dev);
	}
	if (dev->open_count || dev->holders) {
		pthread_mutex_unlock(&reg_lock);
		sb_printf(err, "device %s is busy: Device or resource busy (%s)", name,
			  dev->holders ? "used by another device" : "open");
		return -EBUSY;
	}
	unlink_locked(dev);
	pthread_mutex_unlock(&reg_lock);
	destroy_device(dev);
	return 0;
}

void bs_device_remove_all(void)
{
	for (;;) {
		struct bs_device *victim = NULL;

		pthread_mutex_lock(&reg_lock);
		/* A device nobody maps onto is the top of its stack: remove it first. */
		for (struct bs_device *d = devices; d && !victim; d = d->next)
			if (!d->holders)
				victim = d;
		if (!victim)
			victim = devices; /* only cycles could get here; they cannot exist */
		if (victim)
			unlink_locked(victim);
		pthread_mutex_unlock(&reg_lock);
		if (!victim)
			return;
		destroy_device(victim);
	}
}

/* ---- I/O --------------------------------------------------------------------------------- */

/* One partial block: read it, patch it, write it back (or just copy out for reads). */
static int partial_block(struct bs_device *dev, struct bs_table *t, const struct bs_io *io,
			 uint64_t blk, uint64_t skip, uint64_t n, char *buf)
{
	unsigned bsz = t->block_size;
	pthread_mutex_t *lk;
	char *tmp;
	struct bs_io sub = {.op = BS_OP_READ, .off = blk, .len = bsz};
	int r;

	if (io->op == BS_OP_DISCARD)
		return 0; /* advisory: partial blocks are simply kept */
	tmp = bs_scratch_get(bsz);
	if (!tmp)
		return -ENOMEM;
	sub.buf = tmp;
	if (io->op == BS_OP_READ) {
		r = bs_table_submit(t, &sub);
		if (!r)
			memcpy(buf, tmp + skip, n);
		bs_scratch_put(tmp);
		return r;
	}
	lk = &dev->rmw_lock[(blk / bsz) % RMW_LOCKS];
	pthread_mutex_lock(lk);
	r = bs_table_submit(t, &sub);
	if (!r) {
		if (io->op == BS_OP_WRITE)
			memcpy(tmp + skip, buf, n);
		else
			memset(tmp + skip, 0, n);
		sub.op = BS_OP_WRITE;
		sub.flags = io->flags & BS_IO_FUA;
		r = bs_table_submit(t, &sub);
	}
	pthread_mutex_unlock(lk);
	bs_scratch_put(tmp);
	return r;
}

static int device_io(struct bs_device *dev, struct bs_table *t, struct bs_io *io)
{
	uint64_t bsz = t->block_size, pos = io->off, end = io->off + io->len;
	char *buf = io->buf;

	if (io->op == BS_OP_FLUSH)
		return bs_table_submit(t, io);
	if (io->off > (t->size << BS_SECTOR_SHIFT) ||
	    io->len > (t->size << BS_SECTOR_SHIFT) - io->off)
		return -EINVAL;
	if (((io->off | io->len) & (bsz - 1)) == 0)
		return bs_table_submit(t, io);
	if (io->meta)
		return -EINVAL; /* integrity metadata comes only with whole blocks */

	while (pos < end) {
		uint64_t blk = pos & ~(bsz - 1);
		uint64_t n;
		int r;

		if (pos != blk || end - pos < bsz) {
			n = (blk + bsz < end ? blk + bsz : end) - pos;
			r = partial_block(dev, t, io, blk, pos - blk, n, buf);
		} else {
			struct bs_io sub = *io;

			n = (end - pos) & ~(bsz - 1);
			sub.off = pos;
			sub.len = n;
			sub.buf = buf;
			r = bs_table_submit(t, &sub);
		}
		if (r)
			return r;
		pos += n;
		if (buf)
			buf += n;
	}
	return 0;
}

int bs_device_submit(struct bs_device *dev, struct bs_io *io)
{
	struct bs_table *t;
	int r;

	pthread_mutex_lock(&dev->lock);
	while (dev->suspended && !dev->dead && !atomic_load(&holding_stopped))
		pthread_cond_wait(&dev->cond, &dev->lock);
	if (dev->dead || !dev->live) {
		pthread_mutex_unlock(&dev->lock);
		return -ENXIO;
	}
	if (dev->suspended) {
		pthread_mutex_unlock(&dev->lock);
		return -ESHUTDOWN; /* nothing will resume it: see bs_device_stop_holding */
	}
	if (bs_op_is_write(io->op) && dev->readonly) {
		pthread_mutex_unlock(&dev->lock);
		return -EROFS;
	}
	t = dev->live;
	dev->inflight++;
	pthread_mutex_unlock(&dev->lock);

	r = device_io(dev, t, io);

	pthread_mutex_lock(&dev->lock);
	if (--dev->inflight == 0 && dev->suspended)
		pthread_cond_broadcast(&dev->cond);
	pthread_mutex_unlock(&dev->lock);
	return r;
}

void bs_device_stop_holding(void)
{
	atomic_store(&holding_stopped, true);
	pthread_mutex_lock(&reg_lock);
	for (struct bs_device *d = devices; d; d = d->next) {
		pthread_mutex_lock(&d->lock);
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
	}
	pthread_mutex_unlock(&reg_lock);
}

int bs_device_flush_all(void)
{
	int r = 0;

	pthread_mutex_lock(&reg_lock);
	for (struct bs_device *d = devices; d; d = d->next) {
		struct bs_io io = {.op = BS_OP_FLUSH};
		int e;

		if (d->creating || !d->live)
			continue;
		bs_device_get(d);
		pthread_mutex_unlock(&reg_lock);
		e = bs_device_submit(d, &io);
		if (e == -ESHUTDOWN) {
			/*
			 * Suspended: its I/O is drained, so flushing the table underneath changes
			 * nothing but durability (suspend --noflush left it unflushed).
			 */
			pthread_mutex_lock(&d->ctl_lock);
			e = d->live ? bs_table_flush(d->live) : 0;
			pthread_mutex_unlock(&d->ctl_lock);
		}
		if (e && e != -ENXIO && !r)
			r = e;
		pthread_mutex_lock(&reg_lock);
		bs_device_put(d);
	}
	pthread_mutex_unlock(&reg_lock);
	return r;
}

/* ---- queries ----------------------------------------------------------------------------- */

uint64_t bs_device_size(struct bs_device *dev)
{
	uint64_t s;

	pthread_mutex_lock(&dev->lock);
	s = dev->live ? dev->live->size : 0;
	pthread_mutex_unlock(&dev->lock);
	return s;
}

unsigned bs_device_block_size(struct bs_device *dev)
{
	unsigned s;

	pthread_mutex_lock(&dev->lock);
	s = dev->live ? dev->live->block_size : BS_SECTOR_SIZE;
	pthread_mutex_unlock(&dev->lock);
	return s;
}

bool bs_device_readonly(struct bs_device *dev)
{
	return dev->readonly;
}

const char *bs_device_name(struct bs_device *dev)
{
	return dev->name;
}

void bs_device_get_info(struct bs_device *dev, struct bs_device_info *info)
{
	memset(info, 0, sizeof(*info));
	strcpy(info->name, dev->name);
	strcpy(info->uuid, dev->uuid);
	info->minor = dev->minor;
	info->readonly = dev->readonly;
	pthread_mutex_lock(&reg_lock);
	info->open_count = dev->open_count;
	info->holders = dev->holders;
	pthread_mutex_unlock(&reg_lock);
	pthread_mutex_lock(&dev->lock);
	info->suspended = dev->suspended;
	info->event_nr = dev->event_nr;
	info->live_table = dev->live != NULL;
	info->inactive_table = dev->inactive != NULL;
	if (dev->live) {
		info->nr_targets = dev->live->nr_targets;
		info->size = dev->live->size;
		info->block_size = dev->live->block_size;
	} else {
		info->block_size = BS_SECTOR_SIZE;
	}
	pthread_mutex_unlock(&dev->lock);
}

int bs_device_status(struct bs_device *dev, bool inactive, enum bs_status_type type, unsigned flags,
		     const char *target_filter, struct strbuf *out)
{
	struct bs_table *t;
	int r = 0;

	pthread_mutex_lock(&dev->ctl_lock);
	t = inactive ? dev->inactive : dev->live;
	if (t)
		bs_table_status(t, type, flags, target_filter, out);
	else
		r = -ENXIO;
	pthread_mutex_unlock(&dev->ctl_lock);
	return r;
}

int bs_device_message(struct bs_device *dev, uint64_t sector, unsigned argc, char **argv,
		      struct strbuf *out, struct strbuf *err)
{
	struct bs_target *tg;
	int r;

	pthread_mutex_lock(&dev->ctl_lock);
	if (!dev->live) {
		pthread_mutex_unlock(&dev->ctl_lock);
		sb_printf(err, "device %s has no live table", dev->name);
		return -ENXIO;
	}
	tg = bs_table_find_target(dev->live, sector);
	if (!tg) {
		r = -EINVAL;
		sb_printf(err, "sector %llu is beyond the end of %s", (unsigned long long)sector,
			  dev->name);
	} else if (!tg->type->message) {
		r = -EINVAL;
		sb_printf(err, "target %s does not take messages", tg->type->name);
	} else {
		tg->error = NULL;
		r = tg->type->message(tg, argc, argv, out);
		if (r)
			sb_printf(err, "%s: %s", tg->type->name,
				  tg->error ? tg->error : "message failed");
	}
	pthread_mutex_unlock(&dev->ctl_lock);
	return r;
}

static void dep_line(struct bs_bdev *b, void *arg)
{
	struct strbuf *out = arg;

	sb_printf(out, "%s\n", b->name);
}

int bs_device_deps(struct bs_device *dev, bool inactive, struct strbuf *out)
{
	struct bs_table *t;

	pthread_mutex_lock(&dev->ctl_lock);
	t = inactive ? dev->inactive : dev->live;
	if (t)
		bs_table_for_each_bdev(t, dep_line, out);
	pthread_mutex_unlock(&dev->ctl_lock);
	return t ? 0 : -ENXIO;
}

void bs_device_event(struct bs_device *dev)
{
	pthread_mutex_lock(&dev->lock);
	dev->event_nr++;
	pthread_cond_broadcast(&dev->cond);
	pthread_mutex_unlock(&dev->lock);
}

int bs_device_wait_event(struct bs_device *dev, uint32_t event_nr, bool (*cancelled)(void *),
			 void *arg)
{
	int r = 0;

	pthread_mutex_lock(&dev->lock);
	while (!dev->dead && dev->event_nr <= event_nr) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&dev->cond, &dev->lock, &ts);
		if (cancelled && cancelled(arg)) {
			r = -ECANCELED;
			break;
		}
	}
	if (!r && dev->dead)
		r = -ENXIO;
	pthread_mutex_unlock(&dev->lock);
	return r;
}

void bs_device_for_each(void (*fn)(struct bs_device *dev, void *arg), void *arg)
{
	struct bs_device **list;
	unsigned n = 0, i = 0;

	pthread_mutex_lock(&reg_lock);
	for (struct bs_device *d = devices; d; d = d->next)
		n++;
	list = calloc(n ? n : 1, sizeof(*list));
	if (list)
		for (struct bs_device *d = devices; d; d = d->next)
			if (!d->creating && !d->dead) {
				bs_device_get(d);
				list[i++] = d;
			}
	pthread_mutex_unlock(&reg_lock);
	if (!list)
		return;
	for (unsigned k = 0; k < i; k++) {
		fn(list[k], arg);
		bs_device_put(list[k]);
	}
	free(list);
}
