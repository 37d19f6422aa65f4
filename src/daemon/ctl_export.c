/*
 * ctl_export.c - control requests of the `export` family: FUSE exports of devices.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ctl.h"
#include "proto/control.h"
#include "daemon/fuse_export.h"

/* ---- exports and daemon --------------------------------------------------------------------- */

static int h_export_fuse(struct ctl_req *rq)
{
	const char *name = ctl_need_name(rq), *file = bs_json_str(rq->in, "file");

	if (!name)
		return -EINVAL;
	if (!file || file[0] != '/') {
		sb_puts(&rq->err, "export needs an absolute \"file\"");
		return -EINVAL;
	}
	return bs_fuse_export_add(name, file, &rq->err);
}

static int h_export_remove(struct ctl_req *rq)
{
	const char *file = bs_json_str(rq->in, "file");

	if (!file || file[0] != '/') {
		sb_puts(&rq->err, "export remove needs an absolute \"file\"");
		return -EINVAL;
	}
	return bs_fuse_export_remove(file, &rq->err);
}

static int h_export_list(struct ctl_req *rq)
{
	struct strbuf sb = STRBUF_INIT;

	bs_fuse_export_list(&sb);
	ctl_add_str(rq->out, "fuse", sb_str(&sb));
	sb_free(&sb);
	return 0;
}

const struct ctl_op bs_ctl_export_ops[] = {
    {"export.fuse", h_export_fuse},
    {"export.remove", h_export_remove},
    {"export.list", h_export_list},
    {NULL, NULL},
};
