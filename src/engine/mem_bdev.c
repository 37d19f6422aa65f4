/*
 * mem_bdev.c - see mem_bdev.h.
 */
#include "engine/mem_bdev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct mem_bdev {
	struct bs_bdev b;
	uint8_t *data;
	uint64_t size;
};

static int mem_submit(struct bs_bdev *b, struct bs_io *io)
{
	struct mem_bdev *m = (struct mem_bdev *)b;

	if (bs_op_is_write(io->op) && b->readonly)
		return -EROFS;
	if (io->op == BS_OP_FLUSH)
		return 0;
	if (io->off > m->size || io->len > m->size - io->off)
		return -EIO;
	switch (io->op) {
	case BS_OP_READ:
		memcpy(io->buf, m->data + io->off, io->len);
		return 0;
	case BS_OP_WRITE:
		memcpy(m->data + io->off, io->buf, io->len);
		return 0;
	case BS_OP_DISCARD:
	case BS_OP_WRITE_ZEROES:
		memset(m->data + io->off, 0, io->len);
		return 0;
	default:
		return -EINVAL;
	}
}

static uint64_t mem_size(struct bs_bdev *b)
{
	return ((struct mem_bdev *)b)->size;
}

static void mem_close(struct bs_bdev *b)
{
	free(((struct mem_bdev *)b)->data);
}

static const struct bs_bdev_ops mem_ops = {
    .submit = mem_submit,
    .size = mem_size,
    .close = mem_close,
};

int bs_mem_bdev_create(const char *name, uint64_t size, bool readonly, struct bs_bdev **out)
{
	struct mem_bdev *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->data = calloc(1, size ? size : 1);
	m->b.name = strdup(name ? name : "mem");
	if (!m->data || !m->b.name) {
		free(m->data);
		free(m->b.name);
		free(m);
		return -ENOMEM;
	}
	m->size = size;
	m->b.ops = &mem_ops;
	m->b.kind = BS_BDEV_OTHER;
	m->b.block_size = 512;
	m->b.readonly = readonly;
	*out = &m->b;
	return 0;
}

uint8_t *bs_mem_bdev_data(struct bs_bdev *b)
{
	return ((struct mem_bdev *)b)->data;
}
