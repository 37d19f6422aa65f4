/*
 * zero.c - the `zero` target: reads return zeroes, writes are discarded.
 *
 * Table: zero      (no arguments)
 */
#include <string.h>

#include "engine/target.h"

static int zero_ctr(struct bs_target *t, unsigned argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return bs_target_error(t, "no arguments required");
	return 0;
}

static int zero_submit(struct bs_target *t, struct bs_io *io)
{
	(void)t;
	if (io->op == BS_OP_READ)
		memset(io->buf, 0, io->len);
	return 0;
}

const struct bs_target_type bs_zero_target = {
    .name = "zero",
    .version = {1, 2, 0},
    .ctr = zero_ctr,
    .submit = zero_submit,
};
