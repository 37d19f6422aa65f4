/*
 * ctl_dm.c - control requests of the `dm` family: dmsetup's verbs on engine devices.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ctl.h"
#include "proto/control.h"
#include "util/parse.h"
#include "util/secmem.h"

/* Runs fn for one named device or, with no name, for every device. */
static int for_named_or_all(struct ctl_req *rq, void (*fn)(struct bs_device *, void *), void *arg)
{
	const char *n = bs_json_str(rq->in, "name");

	if (n) {
		struct bs_device *d = bs_device_lookup(n);

		if (!d) {
			sb_printf(&rq->err, "device %s does not exist", n);
			return -ENXIO;
		}
		fn(d, arg);
		bs_device_put(d);
		return 0;
	}
	bs_device_for_each(fn, arg);
	return 0;
}

/* ---- dm.* ----------------------------------------------------------------------------------- */

static int h_create(struct ctl_req *rq)
{
	const char *name = ctl_need_name(rq);

	if (!name)
		return -EINVAL;
	if (!rq->data && !bs_json_bool(rq->in, "notable")) {
		sb_puts(&rq->err, "no table given");
		return -EINVAL;
	}
	return bs_device_create(name, bs_json_str(rq->in, "uuid"), bs_json_bool(rq->in, "readonly"),
				rq->data, &rq->err);
}

static int h_reload(struct ctl_req *rq)
{
	struct bs_device *d = ctl_need_device(rq);
	int r;

	if (!d)
		return -ENXIO;
	if (!rq->data) {
		bs_device_put(d);
		sb_puts(&rq->err, "no table given");
		return -EINVAL;
	}
	r = bs_device_load(d, rq->data, &rq->err);
	bs_device_put(d);
	return r;
}

static int h_clear(struct ctl_req *rq)
{
	struct bs_device *d = ctl_need_device(rq);
	int r;

	if (!d)
		return -ENXIO;
	r = bs_device_clear(d);
	bs_device_put(d);
	return r;
}

static int h_suspend(struct ctl_req *rq)
{
	struct bs_device *d = ctl_need_device(rq);
	int r;

	if (!d)
		return -ENXIO;
	r = bs_device_suspend(d, bs_json_bool(rq->in, "noflush"));
	bs_device_put(d);
	return r;
}

static int h_resume(struct ctl_req *rq)
{
	struct bs_device *d = ctl_need_device(rq);
	int r;

	if (!d)
		return -ENXIO;
	r = bs_device_resume(d, &rq->err);
	bs_device_put(d);
	return r;
}

static int h_remove(struct ctl_req *rq)
{
	const char *name = ctl_need_name(rq);

	if (!name)
		return -EINVAL;
	return bs_device_remove(name, &rq->err);
}

struct table_ctx {
	struct ctl_req *rq;
	struct json_object *list;
	enum bs_status_type type;
	bool inactive;
	unsigned flags;
	const char *target;
};

static void table_one(struct bs_device *d, void *arg)
{
	struct table_ctx *tc = arg;
	struct json_object *o = json_object_new_object();
	size_t before = tc->rq->out_data.len;
	int r;

	r = bs_device_status(d, tc->inactive, tc->type, tc->flags, tc->target, &tc->rq->out_data);
	ctl_add_str(o, "name", bs_device_name(d));
	ctl_add_int(o, "length", r ? 0 : (int64_t)(tc->rq->out_data.len - before));
	json_object_object_add(o, "present", json_object_new_boolean(r == 0));
	json_object_array_add(tc->list, o);
}

static int h_table_or_status(struct ctl_req *rq, enum bs_status_type type)
{
	struct table_ctx tc = {
	    .rq = rq,
	    .list = json_object_new_array(),
	    .type = type,
	    .inactive = bs_json_bool(rq->in, "inactive"),
	    .flags = bs_json_bool(rq->in, "showkeys") ? BS_STATUS_SHOWKEYS : 0,
	    .target = bs_json_str(rq->in, "target"),
	};
	int r = for_named_or_all(rq, table_one, &tc);

	json_object_object_add(rq->out, "devices", tc.list);
	return r;
}

static int h_table(struct ctl_req *rq)
{
	return h_table_or_status(rq, BS_STATUS_TABLE);
}

static int h_status(struct ctl_req *rq)
{
	return h_table_or_status(rq, BS_STATUS_INFO);
}

static struct json_object *info_json(struct bs_device *d)
{
	struct bs_device_info in;
	struct json_object *o = json_object_new_object();

	bs_device_get_info(d, &in);
	ctl_add_str(o, "name", in.name);
	ctl_add_str(o, "uuid", in.uuid);
	ctl_add_int(o, "major", BS_DEVICE_MAJOR);
	ctl_add_int(o, "minor", in.minor);
	json_object_object_add(o, "suspended", json_object_new_boolean(in.suspended));
	json_object_object_add(o, "readonly", json_object_new_boolean(in.readonly));
	json_object_object_add(o, "live_table", json_object_new_boolean(in.live_table));
	json_object_object_add(o, "inactive_table", json_object_new_boolean(in.inactive_table));
	ctl_add_int(o, "open_count", in.open_count + in.holders);
	ctl_add_int(o, "event_nr", in.event_nr);
	ctl_add_int(o, "targets", in.nr_targets);
	ctl_add_int(o, "size", (int64_t)in.size);
	ctl_add_int(o, "block_size", in.block_size);
	return o;
}

struct list_ctx {
	struct json_object *list;
	const char *target;
};

static void info_one(struct bs_device *d, void *arg)
{
	struct list_ctx *lc = arg;

	if (lc->target) {
		struct strbuf sb = STRBUF_INIT;
		int r = bs_device_status(d, false, BS_STATUS_INFO, 0, lc->target, &sb);
		bool has = !r && sb.len;

		sb_free(&sb);
		if (!has)
			return;
	}
	json_object_array_add(lc->list, info_json(d));
}

static int h_info(struct ctl_req *rq)
{
	struct list_ctx lc = {json_object_new_array(), bs_json_str(rq->in, "target")};
	int r = for_named_or_all(rq, info_one, &lc);

	json_object_object_add(rq->out, "devices", lc.list);
	return r;
}

static void deps_one(struct bs_device *d, void *arg)
{
	struct json_object *list = arg;
	struct json_object *o = json_object_new_object(), *deps = json_object_new_array();
	struct strbuf sb = STRBUF_INIT;
	char *line, *save = NULL;

	bs_device_deps(d, false, &sb);
	for (line = strtok_r(sb.s, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		json_object_array_add(deps, json_object_new_string(line));
	sb_free(&sb);
	ctl_add_str(o, "name", bs_device_name(d));
	json_object_object_add(o, "deps", deps);
	json_object_array_add(list, o);
}

static int h_deps(struct ctl_req *rq)
{
	struct json_object *list = json_object_new_array();
	int r = for_named_or_all(rq, deps_one, list);

	json_object_object_add(rq->out, "devices", list);
	return r;
}

static int h_message(struct ctl_req *rq)
{
	struct bs_device *d = ctl_need_device(rq);
	unsigned long long sector = 0;
	struct strbuf out = STRBUF_INIT;
	char *copy;
	unsigned argc;
	char **argv;
	int r;

	if (!d)
		return -ENXIO;
	if (bs_json_u64(rq->in, "sector", &sector) || !rq->data) {
		bs_device_put(d);
		sb_puts(&rq->err, "message needs a sector and a message");
		return -EINVAL;
	}
	/* Messages can carry keys (crypt "key set"): split a locked copy. */
	copy = bs_secure_strdup(rq->data);
	if (!copy || bs_split_args(copy, &argc, &argv)) {
		bs_secure_free(copy);
		bs_device_put(d);
		return -ENOMEM;
	}
	if (argc == 0) {
		sb_puts(&rq->err, "empty message");
		r = -EINVAL;
	} else {
		r = bs_device_message(d, sector, argc, argv, &out, &rq->err);
	}
	if (!r && out.len)
		ctl_add_str(rq->out, "output", sb_str(&out));
	sb_free(&out);
	free(argv);
	bs_secure_free(copy);
	bs_device_put(d);
	return r;
}

static int h_wait(struct ctl_req *rq)
{
	struct bs_device *d = ctl_need_device(rq);
	struct bs_device_info in;
	unsigned long long ev;
	int r;

	if (!d)
		return -ENXIO;
	bs_device_get_info(d, &in);
	if (bs_json_u64(rq->in, "event_nr", &ev))
		ev = in.event_nr;
	r = bs_device_wait_event(d, (uint32_t)ev, ctl_peer_gone, &rq->fd);
	if (!r) {
		bs_device_get_info(d, &in);
		ctl_add_int(rq->out, "event_nr", in.event_nr);
	} else {
		sb_printf(&rq->err, "wait on %s ended: %s", bs_device_name(d),
			  r == -ENXIO ? "device removed" : "cancelled");
	}
	bs_device_put(d);
	return r;
}

static int h_targets(struct ctl_req *rq)
{
	struct json_object *list = json_object_new_array();

	for (const struct bs_target_type *const *t = bs_target_types(); *t; t++) {
		struct json_object *o = json_object_new_object();
		char v[48];

		snprintf(v, sizeof(v), "v%u.%u.%u", (*t)->version[0], (*t)->version[1],
			 (*t)->version[2]);
		ctl_add_str(o, "name", (*t)->name);
		ctl_add_str(o, "version", v);
		json_object_array_add(list, o);
	}
	json_object_object_add(rq->out, "targets", list);
	return 0;
}

const struct ctl_op bs_ctl_dm_ops[] = {
    {"dm.create", h_create},   {"dm.reload", h_reload},
    {"dm.clear", h_clear},     {"dm.suspend", h_suspend},
    {"dm.resume", h_resume},   {"dm.remove", h_remove},
    {"dm.table", h_table},     {"dm.status", h_status},
    {"dm.info", h_info},       {"dm.deps", h_deps},
    {"dm.message", h_message}, {"dm.wait", h_wait},
    {"dm.targets", h_targets}, {NULL, NULL},
};
