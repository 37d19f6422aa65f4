/*
 * raid.c - the `raid` target: Linux dm-raid's table syntax over blkstack's RAID engine.
 *
 * Table: raid <raid_type> <#raid_params> <chunk_size> [<param>...]
 *             <#raid_devs> <meta_dev> <data_dev> [<meta_dev> <data_dev>...]
 *   raid_type   raid0 raid1 raid10 raid4 raid4_n raid5_0 raid5_n raid5_la raid5_ra raid5_ls
 *               raid5_rs raid6_zr raid6_nr raid6_nc raid6_la_6 raid6_ra_6 raid6_ls_6
 *               raid6_rs_6 raid6_0_6 raid6_n_6 (as Linux maps them to md levels/layouts)
 *   params      sync | nosync, rebuild <idx>, region_size <sectors>, daemon_sleep <ms>,
 *               min_recovery_rate <kB/s>, max_recovery_rate <kB/s>, write_mostly <idx>,
 *               max_write_behind <sectors>, stripe_cache <sectors>, raid10_copies <n>,
 *               raid10_format near|far|offset, data_offset <sectors>
 *   devices     meta_dev must be "-" (no dm-raid metadata devices); data_dev "-" is a
 *               missing member.  Without metadata nothing persists, so an array resyncs
 *               fully at every activation unless "nosync" is given, as in Linux.
 * Status: <raid_type> <#devs> <health> <synced>/<total> <sync_action> <mismatch_cnt>
 *         <data_offset> <journal_char>      (health: A in sync, a alive not in sync, D dead)
 * Messages: idle, frozen, check, repair.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/target.h"
#include "raid/array.h"
#include "util/parse.h"

static const struct raid_type {
	const char *name;
	int level;
	unsigned layout;
	unsigned parity;
	unsigned min_devs;
} raid_types[] = {
    {"raid0", 0, 0, 0, 2},
    {"raid1", 1, 0, 0, 2},
    {"raid10", 10, 0, 0, 2},
    {"raid4", 5, MD_ALG_PARITY_0, 1, 2},
    {"raid4_n", 4, MD_ALG_PARITY_N, 1, 2},
    {"raid5_0", 5, MD_ALG_PARITY_0, 1, 2},
    {"raid5_n", 5, MD_ALG_PARITY_N, 1, 2},
    {"raid5_ls", 5, MD_ALG_LEFT_SYMMETRIC, 1, 2},
    {"raid5_rs", 5, MD_ALG_RIGHT_SYMMETRIC, 1, 2},
    {"raid5_la", 5, MD_ALG_LEFT_ASYMMETRIC, 1, 2},
    {"raid5_ra", 5, MD_ALG_RIGHT_ASYMMETRIC, 1, 2},
    {"raid6_zr", 6, MD_ALG_ROTATING_ZERO_RESTART, 2, 4},
    {"raid6_nr", 6, MD_ALG_ROTATING_N_RESTART, 2, 4},
    {"raid6_nc", 6, MD_ALG_ROTATING_N_CONTINUE, 2, 4},
    {"raid6_ls_6", 6, MD_ALG_LEFT_SYMMETRIC_6, 2, 4},
    {"raid6_rs_6", 6, MD_ALG_RIGHT_SYMMETRIC_6, 2, 4},
    {"raid6_la_6", 6, MD_ALG_LEFT_ASYMMETRIC_6, 2, 4},
    {"raid6_ra_6", 6, MD_ALG_RIGHT_ASYMMETRIC_6, 2, 4},
    {"raid6_0_6", 6, MD_ALG_PARITY_0_6, 2, 4},
    {"raid6_n_6", 6, MD_ALG_PARITY_N, 2, 4},
};

enum {
	P_SYNC = 1 << 0,
	P_NOSYNC = 1 << 1,
	P_REGION = 1 << 2,
	P_SLEEP = 1 << 3,
	P_MINRATE = 1 << 4,
	P_MAXRATE = 1 << 5,
	P_BEHIND = 1 << 6,
	P_STRIPE_CACHE = 1 << 7,
	P_COPIES = 1 << 8,
	P_FORMAT = 1 << 9,
	P_DATA_OFFSET = 1 << 10,
};

struct raid_tgt {
	const struct raid_type *type;
	struct raid_array *array;
	unsigned ndevs;
	struct bs_bdev **dev; /* NULL for "-" */
	uint32_t chunk;
	unsigned given; /* P_* */
	uint32_t region, sleep_ms, minrate, maxrate, behind, stripe_cache, copies;
	uint64_t data_offset;
	const char *format; /* near/far/offset */
	uint64_t rebuild_mask, write_mostly_mask;
};

static void raid_event(void *arg)
{
	bs_target_event(arg);
}

static const struct raid_type *find_type(const char *name)
{
	for (size_t i = 0; i < sizeof(raid_types) / sizeof(raid_types[0]); i++)
		if (!strcmp(raid_types[i].name, name))
			return &raid_types[i];
	return NULL;
}

static int parse_params(struct bs_target *t, struct raid_tgt *rt, unsigned n, char **p)
{
	for (unsigned i = 0; i < n; i++) {
		const char *k = p[i];
		uint32_t v;

		if (!strcmp(k, "sync") || !strcmp(k, "nosync")) {
			if (rt->given & (P_SYNC | P_NOSYNC))
				return bs_target_error(t, "only one of sync and nosync");
			rt->given |= !strcmp(k, "sync") ? P_SYNC : P_NOSYNC;
			continue;
		}
		if (i + 1 == n)
			return bs_target_error(t, "parameter %s needs a value", k);
		if (!strcmp(k, "raid10_format")) {
			const char *f = p[++i];

			if (strcmp(f, "near") && strcmp(f, "far") && strcmp(f, "offset"))
				return bs_target_error(t, "invalid raid10_format \"%s\"", f);
			rt->format = f;
			rt->given |= P_FORMAT;
			continue;
		}
		if (!strcmp(k, "journal_dev") || !strcmp(k, "journal_mode") ||
		    !strcmp(k, "delta_disks"))
			return bs_target_error(t, "%s is not supported", k);
		if (!strcmp(k, "data_offset")) {
			if (bs_target_parse_sector(t, p[++i], "data_offset", &rt->data_offset))
				return -EINVAL;
			rt->given |= P_DATA_OFFSET;
			continue;
		}
		if (bs_parse_u32(p[i + 1], &v))
			return bs_target_error(t, "invalid value \"%s\" for %s", p[i + 1], k);
		i++;
		if (!strcmp(k, "rebuild") || !strcmp(k, "write_mostly")) {
			if (v >= 64)
				return bs_target_error(t, "invalid device index %u for %s", v, k);
			if (!strcmp(k, "rebuild"))
				rt->rebuild_mask |= 1ull << v;
			else
				rt->write_mostly_mask |= 1ull << v;
		} else if (!strcmp(k, "region_size")) {
			if (!v || (v & (v - 1)))
				return bs_target_error(t, "region_size must be a power of two");
			rt->region = v;
			rt->given |= P_REGION;
		} else if (!strcmp(k, "daemon_sleep")) {
			if (!v || v > 100000)
				return bs_target_error(t, "daemon_sleep out of range");
			rt->sleep_ms = v;
			rt->given |= P_SLEEP;
		} else if (!strcmp(k, "min_recovery_rate")) {
			rt->minrate = v;
			rt->given |= P_MINRATE;
		} else if (!strcmp(k, "max_recovery_rate")) {
			rt->maxrate = v;
			rt->given |= P_MAXRATE;
		} else if (!strcmp(k, "max_write_behind")) {
			rt->behind = v;
			rt->given |= P_BEHIND;
		} else if (!strcmp(k, "stripe_cache")) {
			rt->stripe_cache = v;
			rt->given |= P_STRIPE_CACHE;
		} else if (!strcmp(k, "raid10_copies")) {
			if (v < 2 || v > 64)
				return bs_target_error(t, "invalid raid10_copies %u", v);
			rt->copies = v;
			rt->given |= P_COPIES;
		} else {
			return bs_target_error(t, "unknown parameter \"%s\"", k);
		}
	}
	return 0;
}

static unsigned raid10_layout(const struct raid_tgt *rt)
{
	unsigned copies = rt->copies ? rt->copies : 2;

	if (!rt->format || !strcmp(rt->format, "near"))
		return 0x100 | copies;
	if (!strcmp(rt->format, "far"))
		return (1u << 17) | (copies << 8) | 1;
	return (1u << 17) | (1u << 16) | (copies << 8) | 1;
}

static int raid_ctr(struct bs_target *t, unsigned argc, char **argv)
{
	struct raid_tgt *rt;
	struct raid_config cfg = {0};
	struct raid_member_spec specs[RAID_MAX_DISKS];
	struct strbuf err = STRBUF_INIT;
	uint32_t nparams, ndevs;
	uint64_t dev_sectors;
	unsigned data_disks;
	int r;

	if (argc < 4)
		return bs_target_error(t, "not enough arguments");
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	rt->type = find_type(argv[0]);
	if (!rt->type) {
		r = bs_target_error(t, "unrecognised raid_type \"%s\"", argv[0]);
		goto fail;
	}
	if (bs_parse_u32(argv[1], &nparams) || nparams < 1 || nparams > argc - 3) {
		r = bs_target_error(t, "invalid number of raid parameters");
		goto fail;
	}
	if (bs_parse_u32(argv[2], &rt->chunk)) {
		r = bs_target_error(t, "invalid chunk size \"%s\"", argv[2]);
		goto fail;
	}
	r = parse_params(t, rt, nparams - 1, argv + 3);
	if (r)
		goto fail;
	argv += 2 + nparams;
	argc -= 2 + nparams;
	if (argc < 1 || bs_parse_u32(argv[0], &ndevs) || ndevs < rt->type->min_devs ||
	    ndevs > RAID_MAX_DISKS || argc != 1 + 2 * ndevs) {
		r = bs_target_error(t, "invalid number of devices (%s needs at least %u pairs)",
				    rt->type->name, rt->type->min_devs);
		goto fail;
	}
	if (rt->type->level != 1 && rt->type->level != 0 &&
	    (rt->chunk < 8 || (rt->chunk & (rt->chunk - 1)))) {
		r = bs_target_error(t, "chunk size must be a power of two of at least 8 sectors");
		goto fail;
	}
	if (rt->type->level == 0 && !rt->chunk) {
		r = bs_target_error(t, "raid0 needs a chunk size");
		goto fail;
	}
	rt->ndevs = ndevs;
	rt->dev = calloc(ndevs, sizeof(*rt->dev));
	if (!rt->dev) {
		r = -ENOMEM;
		goto fail;
	}

	cfg.level = rt->type->level;
	cfg.disks = ndevs;
	cfg.layout = rt->type->level == 10 ? raid10_layout(rt) : rt->type->layout;
	cfg.chunk = rt->type->level == 1 ? 0 : rt->chunk;
	/* The segment length fixes how much of each member is used. */
	data_disks = ndevs - rt->type->parity;
	if (rt->type->level == 1)
		dev_sectors = t->len;
	else if (rt->type->level == 10) {
		unsigned copies = rt->copies ? rt->copies : 2;

		if (copies > ndevs) {
			r = bs_target_error(t, "raid10_copies exceeds the number of devices");
			goto fail;
		}
		/* As dm-raid: each member holds len * copies / members sectors. */
		if ((t->len * copies) % ndevs) {
			r = bs_target_error(
			    t, "segment length times copies not divisible by the devices");
			goto fail;
		}
		dev_sectors = t->len * copies / ndevs;
	} else {
		if (t->len % data_disks || (t->len / data_disks) % (rt->chunk ? rt->chunk : 1)) {
			r = bs_target_error(
			    t, "segment length not divisible by the data devices and chunk size");
			goto fail;
		}
		dev_sectors = t->len / data_disks;
	}
	for (unsigned i = 0; i < ndevs; i++) {
		const char *meta = argv[1 + 2 * i], *data = argv[2 + 2 * i];

		if (strcmp(meta, "-")) {
			r = bs_target_error(t, "metadata devices are not supported (give \"-\")");
			goto fail;
		}
		specs[i] =
		    (struct raid_member_spec){.role = (int)i, .data_offset = rt->data_offset};
		if (!strcmp(data, "-")) {
			specs[i].state = RM_MISSING;
			continue;
		}
		r = bs_target_get_device(t, data, "data device", &rt->dev[i]);
		if (!r)
			r = bs_target_check_area(t, rt->dev[i], rt->data_offset, dev_sectors);
		if (r)
			goto fail;
		specs[i].bdev = rt->dev[i];
		specs[i].data_sectors = (bs_bdev_size(rt->dev[i]) >> 9) - rt->data_offset;
		specs[i].state = (rt->rebuild_mask & (1ull << i)) ? RM_REBUILDING : RM_IN_SYNC;
		specs[i].recovery_offset = 0;
	}
	cfg.dev_sectors = rt->type->level == 0 ? 0 : dev_sectors;
	cfg.policy = RAID_POLICY_RESYNC;
	cfg.resync_offset = (rt->given & P_NOSYNC) || rt->type->level == 0 ? UINT64_MAX : 0;
	cfg.start_degraded = true;
	cfg.bitmap_chunk = rt->type->level == 0 ? 0 : (rt->region ? rt->region : 1024);
	cfg.daemon_sleep = rt->sleep_ms ? (rt->sleep_ms + 999) / 1000 : 0;
	cfg.event = raid_event;
	cfg.event_arg = t;
	cfg.name = "raid";
	r = raid_array_create(&cfg, specs, ndevs, &rt->array, &err);
	if (r) {
		bs_target_error(t, "%s", sb_str(&err));
		sb_free(&err);
		goto fail;
	}
	if (raid_array_sectors(rt->array) < t->len) {
		uint64_t have = raid_array_sectors(rt->array);

		raid_array_destroy(rt->array);
		r = bs_target_error(t, "the array holds %llu sectors, less than the segment's %llu",
				    (unsigned long long)have, (unsigned long long)t->len);
		goto fail;
	}
	sb_free(&err);
	t->private = rt;
	return 0;
fail:
	free(rt->dev);
	free(rt);
	return r < 0 ? r : -EINVAL;
}

static void raid_dtr(struct bs_target *t)
{
	struct raid_tgt *rt = t->private;

	raid_array_destroy(rt->array);
	free(rt->dev);
	free(rt);
}

static int raid_submit(struct bs_target *t, struct bs_io *io)
{
	return raid_array_submit(((struct raid_tgt *)t->private)->array, io);
}

static void raid_status(struct bs_target *t, enum bs_status_type type, unsigned flags,
			struct strbuf *out)
{
	struct raid_tgt *rt = t->private;
	struct raid_status st;

	(void)flags;
	if (type == BS_STATUS_INFO) {
		uint64_t done;

		raid_array_status(rt->array, &st);
		sb_printf(out, "%s %u ", rt->type->name, rt->ndevs);
		for (unsigned i = 0; i < rt->ndevs; i++) {
			char c;

			switch (st.state[i]) {
			case RM_IN_SYNC:
				c = st.action == RAID_SYNC_RESYNC ? 'a' : 'A';
				break;
			case RM_REBUILDING:
				c = 'a';
				break;
			case RM_MISSING:
				c = '-';
				break;
			default:
				c = 'D';
				break;
			}
			sb_putc(out, c);
		}
		done = st.action == RAID_SYNC_RESYNC || st.action == RAID_SYNC_RECOVER ||
			       st.action == RAID_SYNC_CHECK || st.action == RAID_SYNC_REPAIR
			   ? st.sync_done
			   : st.dev_sectors;
		if (st.level == 0)
			done = st.dev_sectors;
		sb_printf(out, " %llu/%llu %s %llu %llu -", (unsigned long long)done,
			  (unsigned long long)st.dev_sectors, raid_sync_action_name(st.action),
			  (unsigned long long)st.mismatch_cnt, (unsigned long long)rt->data_offset);
		return;
	}
	{
		unsigned n = 1;
		struct strbuf p = STRBUF_INIT;

		if (rt->given & P_SYNC)
			n++, sb_puts(&p, " sync");
		if (rt->given & P_NOSYNC)
			n++, sb_puts(&p, " nosync");
		for (unsigned i = 0; i < 64; i++)
			if (rt->rebuild_mask & (1ull << i))
				n += 2, sb_printf(&p, " rebuild %u", i);
		if (rt->given & P_SLEEP)
			n += 2, sb_printf(&p, " daemon_sleep %u", rt->sleep_ms);
		if (rt->given & P_MINRATE)
			n += 2, sb_printf(&p, " min_recovery_rate %u", rt->minrate);
		if (rt->given & P_MAXRATE)
			n += 2, sb_printf(&p, " max_recovery_rate %u", rt->maxrate);
		for (unsigned i = 0; i < 64; i++)
			if (rt->write_mostly_mask & (1ull << i))
				n += 2, sb_printf(&p, " write_mostly %u", i);
		if (rt->given & P_BEHIND)
			n += 2, sb_printf(&p, " max_write_behind %u", rt->behind);
		if (rt->given & P_STRIPE_CACHE)
			n += 2, sb_printf(&p, " stripe_cache %u", rt->stripe_cache);
		if (rt->given & P_REGION)
			n += 2, sb_printf(&p, " region_size %u", rt->region);
		if (rt->given & P_COPIES)
			n += 2, sb_printf(&p, " raid10_copies %u", rt->copies);
		if (rt->given & P_FORMAT)
			n += 2, sb_printf(&p, " raid10_format %s", rt->format);
		if (rt->given & P_DATA_OFFSET)
			n += 2,
			    sb_printf(&p, " data_offset %llu", (unsigned long long)rt->data_offset);
		sb_printf(out, "%s %u %u%s %u", rt->type->name, n, rt->chunk, sb_str(&p),
			  rt->ndevs);
		sb_free(&p);
		for (unsigned i = 0; i < rt->ndevs; i++)
			sb_printf(out, " - %s", rt->dev[i] ? rt->dev[i]->name : "-");
	}
}

static int raid_message(struct bs_target *t, unsigned argc, char **argv, struct strbuf *out)
{
	struct raid_tgt *rt = t->private;
	struct strbuf err = STRBUF_INIT;
	enum raid_sync_action act;
	int r;

	(void)out;
	if (argc != 1)
		return bs_target_error(t, "expected one of idle, frozen, check, repair");
	if (!strcmp(argv[0], "idle"))
		act = RAID_SYNC_IDLE;
	else if (!strcmp(argv[0], "frozen"))
		act = RAID_SYNC_FROZEN;
	else if (!strcmp(argv[0], "check"))
		act = RAID_SYNC_CHECK;
	else if (!strcmp(argv[0], "repair"))
		act = RAID_SYNC_REPAIR;
	else if (!strcmp(argv[0], "resync") || !strcmp(argv[0], "recover"))
		return 0; /* they start by themselves when needed */
	else
		return bs_target_error(t, "unrecognised message \"%s\"", argv[0]);
	r = raid_array_sync_action(rt->array, act, &err);
	if (r)
		bs_target_error(t, "%s", sb_str(&err));
	sb_free(&err);
	return r;
}

static void raid_postsuspend(struct bs_target *t)
{
	struct raid_tgt *rt = t->private;

	raid_array_quiesce(rt->array, true);
	raid_array_mark_clean(rt->array);
}

static void raid_resume(struct bs_target *t)
{
	raid_array_quiesce(((struct raid_tgt *)t->private)->array, false);
}

const struct bs_target_type bs_raid_target = {
    .name = "raid",
    .version = {1, 15, 1},
    .ctr = raid_ctr,
    .dtr = raid_dtr,
    .submit = raid_submit,
    .status = raid_status,
    .message = raid_message,
    .postsuspend = raid_postsuspend,
    .resume = raid_resume,
};
