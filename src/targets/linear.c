/*
 * linear.c - the `linear` target: a range of one device.
 *
 * Table: linear <dev> <offset>     (offset in sectors on dev)
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/target.h"

struct linear {
	struct bs_bdev *dev;
	uint64_t start; /* sectors */
};

static int linear_ctr(struct bs_target *t, unsigned argc, char **argv)
{
	struct linear *lc;
	struct bs_bdev *dev;
	uint64_t start;
	int r;

	if (argc != 2)
		return bs_target_error(t, "invalid argument count (expected <dev> <offset>)");
	r = bs_target_parse_sector(t, argv[1], "device sector", &start);
	if (r)
		return r;
	r = bs_target_get_device(t, argv[0], "device", &dev);
	if (r)
		return r;
	r = bs_target_check_area(t, dev, start, t->len);
	if (r)
		return r;
	lc = malloc(sizeof(*lc));
	if (!lc)
		return -ENOMEM;
	lc->dev = dev;
	lc->start = start;
	t->private = lc;
	return 0;
}

static void linear_dtr(struct bs_target *t)
{
	free(t->private);
}

static int linear_submit(struct bs_target *t, struct bs_io *io)
{
	struct linear *lc = t->private;

	if (io->op != BS_OP_FLUSH)
		io->off += lc->start << BS_SECTOR_SHIFT;
	return bs_bdev_submit(lc->dev, io);
}

static void linear_status(struct bs_target *t, enum bs_status_type type, unsigned flags,
			  struct strbuf *out)
{
	struct linear *lc = t->private;

	(void)flags;
	if (type == BS_STATUS_TABLE) {
		sb_put_arg(out, lc->dev->name);
		sb_printf(out, " %llu", (unsigned long long)lc->start);
	}
}

const struct bs_target_type bs_linear_target = {
    .name = "linear",
    .version = {1, 4, 0},
    .ctr = linear_ctr,
    .dtr = linear_dtr,
    .submit = linear_submit,
    .status = linear_status,
};
