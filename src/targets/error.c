/*
 * error.c - the `error` target: every request fails with EIO, except a flush.
 *
 * Table: error      (no arguments; like Linux, extra arguments are ignored)
 *
 * Linux's dm-error takes no flushes (it asks for no flush bios, so dm completes an empty
 * flush without it): a flush of a device with an error segment succeeds there, and so here.
 * There is nothing to make durable.
 */
#include <errno.h>

#include "engine/target.h"

static int error_ctr(struct bs_target *t, unsigned argc, char **argv)
{
	(void)t;
	(void)argc;
	(void)argv;
	return 0;
}

static int error_submit(struct bs_target *t, struct bs_io *io)
{
	(void)t;
	return io->op == BS_OP_FLUSH ? 0 : -EIO;
}

const struct bs_target_type bs_error_target = {
    .name = "error",
    .version = {1, 6, 0},
    .ctr = error_ctr,
    .submit = error_submit,
};
