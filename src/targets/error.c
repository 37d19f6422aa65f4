/*
 * error.c - the `error` target: every request fails with EIO.
 *
 * Table: error      (no arguments; like Linux, extra arguments are ignored)
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
	(void)io;
	return -EIO;
}

const struct bs_target_type bs_error_target = {
    .name = "error",
    .version = {1, 6, 0},
    .ctr = error_ctr,
    .submit = error_submit,
};
