/*
 * ctl.h - what a control request handler sees.
 *
 * Handlers are grouped by command family (ctl_dm.c, ctl_export.c, ...), each exporting a
 * NULL-terminated table of struct ctl_op that control_server.c searches by the request's
 * "op".  A handler reads rq->in (and rq->data, the locked data blob), adds reply fields to
 * rq->out (and text that may carry keys to rq->out_data), and returns 0 or -errno with one
 * line in rq->err.
 */
#ifndef BS_DAEMON_CTL_H
#define BS_DAEMON_CTL_H

#include <json-c/json.h>
#include <stdint.h>

#include "engine/device.h"
#include "util/strbuf.h"

struct ctl_req {
	struct json_object *in;
	const char *data; /* locked memory, NUL-terminated, or NULL */
	size_t data_len;
	struct json_object *out;
	struct strbuf out_data; /* locked: may carry keys */
	struct strbuf err;
	int fd; /* the client connection, to notice a client that went away */
};

struct ctl_op {
	const char *op;
	int (*fn)(struct ctl_req *rq);
};

extern const struct ctl_op bs_ctl_dm_ops[];
extern const struct ctl_op bs_ctl_export_ops[];
extern const struct ctl_op bs_ctl_raid_ops[];


/* "name" of the request, or NULL with rq->err set. */
const char *ctl_need_name(struct ctl_req *rq);
/* The device named by "name" (a reference), or NULL with rq->err set. */
struct bs_device *ctl_need_device(struct ctl_req *rq);
/* True once the client has hung up or the daemon is stopping (arg: int *fd). */
bool ctl_peer_gone(void *arg);

void ctl_add_str(struct json_object *o, const char *key, const char *val);
void ctl_add_int(struct json_object *o, const char *key, int64_t val);
void ctl_add_bool(struct json_object *o, const char *key, bool val);

#endif
