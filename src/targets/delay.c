/*
 * delay.c - the `delay` target: requests wait a fixed time before they are issued.
 *
 * Table: delay <dev> <offset> <delay ms>
 *              [<write dev> <write offset> <write delay ms>
 *               [<flush dev> <flush offset> <flush delay ms>]]
 *   Without the write (flush) group, writes (flushes) use the previous group.  Discards and
 *   write-zeroes count as writes.
 * Status: <reads waiting> <writes waiting> <flushes waiting>
 *
 * A request sleeps on its I/O thread.  Suspending the device releases every sleeper at once
 * and issues new requests without delay until resume, as Linux does, so a suspend never has
 * to wait out the delays.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "engine/target.h"
#include "util/parse.h"

struct delay_class {
	struct bs_bdev *dev;
	uint64_t start;
	uint32_t delay_ms;
	atomic_uint waiting;
};

struct delay {
	unsigned argc;
	struct delay_class read, write, flush;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool may_delay;
};

static int parse_class(struct bs_target *t, struct delay_class *c, char **argv, const char *what)
{
	int r;

	r = bs_target_parse_sector(t, argv[1], "device sector", &c->start);
	if (r)
		return r;
	if (bs_parse_u32(argv[2], &c->delay_ms))
		return bs_target_error(t, "invalid %s delay \"%s\"", what, argv[2]);
	r = bs_target_get_device(t, argv[0], what, &c->dev);
	if (!r)
		r = bs_target_check_area(t, c->dev, c->start, t->len);
	return r;
}

static int delay_ctr(struct bs_target *t, unsigned argc, char **argv)
{
	struct delay *dc;
	int r;

	if (argc != 3 && argc != 6 && argc != 9)
		return bs_target_error(t, "requires exactly 3, 6 or 9 arguments");
	dc = calloc(1, sizeof(*dc));
	if (!dc)
		return -ENOMEM;
	dc->argc = argc;
	r = parse_class(t, &dc->read, argv, "read device");
	if (!r && argc >= 6)
		r = parse_class(t, &dc->write, argv + 3, "write device");
	if (!r && argc >= 9)
		r = parse_class(t, &dc->flush, argv + 6, "flush device");
	if (r) {
		free(dc);
		return r;
	}
	if (argc < 6) {
		dc->write.dev = dc->read.dev;
		dc->write.start = dc->read.start;
		dc->write.delay_ms = dc->read.delay_ms;
	}
	if (argc < 9) {
		dc->flush.dev = dc->write.dev;
		dc->flush.start = dc->write.start;
		dc->flush.delay_ms = dc->write.delay_ms;
	}
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&dc->lock, NULL);
	pthread_cond_init(&dc->cond, &ca);
	pthread_condattr_destroy(&ca);
	dc->may_delay = true;
	t->private = dc;
	return 0;
}

static void delay_dtr(struct bs_target *t)
{
	struct delay *dc = t->private;

	pthread_mutex_destroy(&dc->lock);
	pthread_cond_destroy(&dc->cond);
	free(dc);
}

static void wait_delay(struct delay *dc, struct delay_class *c)
{
	struct timespec until;

	if (!c->delay_ms)
		return;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += c->delay_ms / 1000;
	until.tv_nsec += (long)(c->delay_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	atomic_fetch_add(&c->waiting, 1);
	pthread_mutex_lock(&dc->lock);
	/* dc->cond runs on CLOCK_MONOTONIC, so until is an absolute deadline for it. */
	while (dc->may_delay && pthread_cond_timedwait(&dc->cond, &dc->lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&dc->lock);
	atomic_fetch_sub(&c->waiting, 1);
}

static int delay_submit(struct bs_target *t, struct bs_io *io)
{
	struct delay *dc = t->private;
	struct delay_class *c;

	switch (io->op) {
	case BS_OP_READ:
		c = &dc->read;
		break;
	case BS_OP_FLUSH:
		c = &dc->flush;
		break;
	default:
		c = &dc->write;
		break;
	}
	wait_delay(dc, c);
	if (io->op != BS_OP_FLUSH)
		io->off += c->start << BS_SECTOR_SHIFT;
	return bs_bdev_submit(c->dev, io);
}

static void set_may_delay(struct bs_target *t, bool on)
{
	struct delay *dc = t->private;

	pthread_mutex_lock(&dc->lock);
	dc->may_delay = on;
	pthread_cond_broadcast(&dc->cond);
	pthread_mutex_unlock(&dc->lock);
}

static void delay_presuspend(struct bs_target *t)
{
	set_may_delay(t, false);
}

static void delay_resume(struct bs_target *t)
{
	set_may_delay(t, true);
}

static void delay_status(struct bs_target *t, enum bs_status_type type, unsigned flags,
			 struct strbuf *out)
{
	struct delay *dc = t->private;
	struct delay_class *cls[3] = {&dc->read, &dc->write, &dc->flush};

	(void)flags;
	if (type == BS_STATUS_INFO) {
		sb_printf(out, "%u %u %u", atomic_load(&dc->read.waiting),
			  atomic_load(&dc->write.waiting), atomic_load(&dc->flush.waiting));
		return;
	}
	for (unsigned i = 0; i < dc->argc / 3; i++) {
		if (i)
			sb_putc(out, ' ');
		sb_put_arg(out, cls[i]->dev->name);
		sb_printf(out, " %llu %u", (unsigned long long)cls[i]->start, cls[i]->delay_ms);
	}
}

const struct bs_target_type bs_delay_target = {
    .name = "delay",
    .version = {1, 3, 0},
    .ctr = delay_ctr,
    .dtr = delay_dtr,
    .submit = delay_submit,
    .status = delay_status,
    .presuspend = delay_presuspend,
    .resume = delay_resume,
};
