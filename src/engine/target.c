/*
 * target.c - target registry and helpers shared by target implementations.
 */
#include "engine/target.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/device.h"
#include "engine/table.h"
#include "util/parse.h"

/* Each target file defines one of these. */
extern const struct bs_target_type bs_linear_target;
extern const struct bs_target_type bs_striped_target;
extern const struct bs_target_type bs_zero_target;
extern const struct bs_target_type bs_error_target;
extern const struct bs_target_type bs_flakey_target;
extern const struct bs_target_type bs_delay_target;
extern const struct bs_target_type bs_crypt_target;
extern const struct bs_target_type bs_raid_target;
extern const struct bs_target_type bs_mirror_target;
extern const struct bs_target_type bs_md_target;
extern const struct bs_target_type bs_integrity_target;

static const struct bs_target_type *const target_types[] = {
    &bs_linear_target, &bs_striped_target, &bs_zero_target,	 &bs_error_target,
    &bs_flakey_target, &bs_delay_target,   &bs_crypt_target,	 &bs_raid_target,
    &bs_mirror_target, &bs_md_target,	   &bs_integrity_target, NULL,

};

const struct bs_target_type *const *bs_target_types(void)
{
	return target_types;
}

const struct bs_target_type *bs_target_type_find(const char *name)
{
	for (const struct bs_target_type *const *t = target_types; *t; t++)
		if (!strcmp((*t)->name, name))
			return *t;
	return NULL;
}

int bs_target_error(struct bs_target *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->errbuf, sizeof(t->errbuf), fmt, ap);
	va_end(ap);
	t->error = t->errbuf;
	return -EINVAL;
}

int bs_target_get_device(struct bs_target *t, const char *path, const char *what,
			 struct bs_bdev **out)
{
	struct bs_target_dev *nd;
	struct bs_bdev *b;
	const char *why;
	int r;

	if (t->table && t->table->owner && bs_device_would_cycle(t->table->owner, path)) {
		bs_target_error(t, "%s %s: would make the device use itself", what, path);
		return -ELOOP;
	}
	r = bs_bdev_open(path, t->readonly, &b, &why);
	if (r) {
		bs_target_error(t, "%s %s: %s", what, path, why);
		return r;
	}
	nd = realloc(t->devs, (t->ndevs + 1) * sizeof(*nd));
	if (!nd) {
		bs_bdev_close(b);
		bs_target_error(t, "out of memory");
		return -ENOMEM;
	}
	t->devs = nd;
	t->devs[t->ndevs++].bdev = b;
	if (b->block_size > t->block_size)
		t->block_size = b->block_size;
	*out = b;
	return 0;
}

void bs_target_put_device(struct bs_target *t, struct bs_bdev *b)
{
	for (unsigned i = 0; i < t->ndevs; i++)
		if (t->devs[i].bdev == b) {
			t->devs[i] = t->devs[--t->ndevs];
			bs_bdev_close(b);
			return;
		}
}

int bs_target_check_area(struct bs_target *t, struct bs_bdev *b, uint64_t start, uint64_t len)
{
	uint64_t size = bs_bdev_size(b) >> BS_SECTOR_SHIFT;

	if (start > size || len > size - start) {
		bs_target_error(t, "%s too small for target: start=%llu, len=%llu, dev_size=%llu",
				b->name, (unsigned long long)start, (unsigned long long)len,
				(unsigned long long)size);
		return -EINVAL;
	}
	return 0;
}

int bs_target_flush_devices(struct bs_target *t)
{
	int r = 0;

	for (unsigned i = 0; i < t->ndevs; i++) {
		int e = bs_bdev_flush(t->devs[i].bdev);

		if (e && !r)
			r = e;
	}
	return r;
}

void bs_target_event(struct bs_target *t)
{
	if (t->table && t->table->owner)
		bs_device_event(t->table->owner);
}

int bs_target_parse_sector(struct bs_target *t, const char *arg, const char *what, uint64_t *out)
{
	uint64_t v;

	/* Sectors must also be representable in bytes. */
	if (bs_parse_u64(arg, &v) || v > (UINT64_MAX >> BS_SECTOR_SHIFT))
		return bs_target_error(t, "invalid %s \"%s\"", what, arg);
	*out = v;
	return 0;
}
