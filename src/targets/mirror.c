/*
 * mirror.c - the `mirror` target: Linux dm-mirror's table syntax on the RAID1 engine.
 *
 * Table: mirror <log_type> <#log_args> <log_args...> <#mirrors> <dev> <offset>...
 *               [<#features> <features...>]
 *   core <region_size> [sync|nosync]            region state in memory
 *   disk <log_dev> <region_size> [sync|nosync]  region state on LOG_DEV in dm-log's disk
 *                                               format (header "MiRr" v2, then one bit per
 *                                               region, set when the region is in sync)
 *   features: handle_errors, keep_log
 * The first leg is copied to the others in the background (unless nosync, or the disk log
 * says the region is in sync); until a region is copied, reads go to the first leg.  Writes
 * go to every leg.  A leg that fails is dropped and the others continue.
 * Status: <#mirrors> <dev>... <in-sync regions>/<regions> 1 <A|D per leg> <log status>
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/target.h"
#include "raid/array.h"
#include "util/parse.h"

#define MIRROR_LOG_MAGIC   0x4D695272u /* "MiRr" */
#define MIRROR_LOG_VERSION 2u
#define MIRROR_LOG_BITS	   1024u /* byte offset of the bits (LOG_OFFSET 2 sectors) */

enum sync_mode { SYNC_DEFAULT, SYNC_FORCE, SYNC_NONE };

struct mirror {
	struct raid_array *array;
	bool disk_log;
	struct bs_bdev *log_dev;
	uint32_t region;
	enum sync_mode sync;
	unsigned nmirrors;
	struct bs_bdev *leg[RAID_MAX_DISKS];
	uint64_t offset[RAID_MAX_DISKS];
	bool handle_errors, keep_log;
	uint64_t nr_regions;
	uint8_t *dirty; /* initial dirty bits for the engine */
	uint8_t *log;	/* image of the disk log */
	int log_error;
};

static void mirror_event(void *arg)
{
	bs_target_event(arg);
}

/* Byte size of the disk log image: header sectors, then one bit per region. */
static uint64_t log_bytes(const struct mirror *mr)
{
	return (MIRROR_LOG_BITS + (mr->nr_regions + 7) / 8 + 511) / 512 * 512;
}

/* The engine's dirty bits are the log's in-sync bits inverted; rewrite the sectors touched. */
static int log_write(struct raid_array *a, void *priv, const uint8_t *bytes, uint64_t first,
		     uint64_t n)
{
	struct mirror *mr = priv;
	uint64_t s0 = (MIRROR_LOG_BITS + first) / 512, s1 = (MIRROR_LOG_BITS + first + n - 1) / 512;
	int r;

	(void)a;
	for (uint64_t i = 0; i < n; i++)
		mr->log[MIRROR_LOG_BITS + first + i] = (uint8_t)~bytes[i];
	r = bs_bdev_write(mr->log_dev, mr->log + s0 * 512, (s1 - s0 + 1) * 512, s0 * 512,
			  BS_IO_FUA);
	if (r)
		mr->log_error = r;
	return r;
}

/* Writes the whole log: header and the current in-sync bits. */
static int log_init(struct mirror *mr)
{
	uint32_t v32;
	uint64_t v64;

	memset(mr->log, 0, log_bytes(mr));
	v32 = htole32(MIRROR_LOG_MAGIC);
	memcpy(mr->log, &v32, 4);
	v32 = htole32(MIRROR_LOG_VERSION);
	memcpy(mr->log + 4, &v32, 4);
	v64 = htole64(mr->nr_regions);
	memcpy(mr->log + 8, &v64, 8);
	for (uint64_t i = 0; i < (mr->nr_regions + 7) / 8; i++)
		mr->log[MIRROR_LOG_BITS + i] = (uint8_t)~mr->dirty[i];
	return bs_bdev_write(mr->log_dev, mr->log, log_bytes(mr), 0, BS_IO_FUA);
}

static const struct raid_meta_ops disk_log_ops = {
    .bitmap_write = log_write,
};

static int parse_log(struct bs_target *t, struct mirror *mr, unsigned argc, char **argv,
		     unsigned *used)
{
	uint32_t nargs;
	unsigned need_min, i = 0;

	if (argc < 2)
		return bs_target_error(t, "missing log arguments");
	if (!strcmp(argv[0], "core"))
		need_min = 1;
	else if (!strcmp(argv[0], "disk"))
		need_min = 2, mr->disk_log = true;
	else
		return bs_target_error(t, "unrecognised dirty log type \"%s\"", argv[0]);
	if (bs_parse_u32(argv[1], &nargs) || nargs < need_min || nargs > need_min + 1 ||
	    nargs > argc - 2)
		return bs_target_error(t, "invalid number of %s log arguments", argv[0]);
	argv += 2;
	if (mr->disk_log) {
		int r = bs_target_get_device(t, argv[i++], "log device", &mr->log_dev);

		if (r)
			return r;
	}
	if (bs_parse_u32(argv[i], &mr->region) || mr->region < 2 ||
	    (mr->region & (mr->region - 1)) || mr->region > t->len)
		return bs_target_error(t, "invalid region size \"%s\"", argv[i]);
	i++;
	if (i < nargs) {
		if (!strcmp(argv[i], "sync"))
			mr->sync = SYNC_FORCE;
		else if (!strcmp(argv[i], "nosync"))
			mr->sync = SYNC_NONE;
		else
			return bs_target_error(t, "unrecognised sync argument \"%s\"", argv[i]);
	}
	*used = 2 + nargs;
	return 0;
}

/* Reads the disk log; returns true when it holds valid state for this mirror. */
static bool load_disk_log(struct mirror *mr)
{
	uint8_t *buf = mr->log;
	bool ok = false;

	if (!bs_bdev_read(mr->log_dev, buf, log_bytes(mr), 0)) {
		uint32_t magic, version;
		uint64_t nr;

		memcpy(&magic, buf, 4);
		memcpy(&version, buf + 4, 4);
		memcpy(&nr, buf + 8, 8);
		if (le32toh(magic) == MIRROR_LOG_MAGIC && le32toh(version) == MIRROR_LOG_VERSION &&
		    le64toh(nr) == mr->nr_regions) {
			for (uint64_t i = 0; i < (mr->nr_regions + 7) / 8; i++)
				mr->dirty[i] = (uint8_t)~buf[MIRROR_LOG_BITS + i];
			ok = true;
		}
	}
	return ok;
}

static int mirror_ctr(struct bs_target *t, unsigned argc, char **argv)
{
	struct mirror *mr = calloc(1, sizeof(*mr));
	struct raid_member_spec specs[RAID_MAX_DISKS];
	struct raid_config cfg = {0};
	struct strbuf err = STRBUF_INIT;
	unsigned used = 0, i;
	uint32_t n;
	int r;

	if (!mr)
		return -ENOMEM;
	r = parse_log(t, mr, argc, argv, &used);
	if (r)
		goto fail;
	argc -= used;
	argv += used;
	if (argc < 1 || bs_parse_u32(argv[0], &n) || n < 2 || n > RAID_MAX_DISKS ||
	    argc < 1 + 2 * n) {
		r = bs_target_error(t, "invalid number of mirrors");
		goto fail;
	}
	mr->nmirrors = n;
	for (i = 0; i < n; i++) {
		r = bs_target_parse_sector(t, argv[2 + 2 * i], "mirror offset", &mr->offset[i]);
		if (!r)
			r = bs_target_get_device(t, argv[1 + 2 * i], "mirror device", &mr->leg[i]);
		if (!r)
			r = bs_target_check_area(t, mr->leg[i], mr->offset[i], t->len);
		if (r)
			goto fail;
		specs[i] = (struct raid_member_spec){
		    .bdev = mr->leg[i],
		    .role = (int)i,
		    .data_offset = mr->offset[i],
		    .data_sectors = t->len,
		    .state = RM_IN_SYNC,
		};
	}
	argc -= 1 + 2 * n;
	argv += 1 + 2 * n;
	if (argc) {
		uint32_t nf;

		if (bs_parse_u32(argv[0], &nf) || nf != argc - 1 || nf > 2) {
			r = bs_target_error(t, "invalid number of features");
			goto fail;
		}
		for (i = 1; i < argc; i++) {
			if (!strcmp(argv[i], "handle_errors"))
				mr->handle_errors = true;
			else if (!strcmp(argv[i], "keep_log"))
				mr->keep_log = true;
			else {
				r = bs_target_error(t, "unrecognised feature \"%s\"", argv[i]);
				goto fail;
			}
		}
		if (mr->keep_log && !mr->handle_errors) {
			r = bs_target_error(t,
					    "keep_log feature requires the handle_errors feature");
			goto fail;
		}
	}
	mr->nr_regions = (t->len + mr->region - 1) / mr->region;
	mr->dirty = calloc((mr->nr_regions + 7) / 8 + 1, 1);
	if (!mr->dirty) {
		r = -ENOMEM;
		goto fail;
	}
	if (mr->disk_log) {
		if (bs_bdev_size(mr->log_dev) < log_bytes(mr)) {
			r = bs_target_error(t, "log device too small for %llu regions",
					    (unsigned long long)mr->nr_regions);
			goto fail;
		}
		mr->log = calloc(1, log_bytes(mr));
		if (!mr->log) {
			r = -ENOMEM;
			goto fail;
		}
	}
	/* Which regions need copying: all, none, or what the disk log says. */
	if (mr->sync == SYNC_NONE) {
		cfg.resync_offset = UINT64_MAX;
	} else if (mr->sync == SYNC_DEFAULT && mr->disk_log && load_disk_log(mr)) {
		cfg.resync_offset = 0;
	} else {
		memset(mr->dirty, 0xff, (mr->nr_regions + 7) / 8);
		cfg.resync_offset = 0;
	}
	if (mr->disk_log && log_init(mr)) {
		r = bs_target_error(t, "cannot write the log device");
		goto fail;
	}
	cfg.level = 1;
	cfg.disks = n;
	cfg.dev_sectors = t->len;
	cfg.policy = RAID_POLICY_RESYNC;
	cfg.bitmap_chunk = mr->region;
	cfg.bitmap = mr->dirty;
	cfg.start_degraded = true;
	cfg.meta = mr->disk_log ? &disk_log_ops : NULL;
	cfg.meta_priv = mr;
	cfg.event = mirror_event;
	cfg.event_arg = t;
	cfg.name = "mirror";
	r = raid_array_create(&cfg, specs, n, &mr->array, &err);
	if (r) {
		bs_target_error(t, "%s", sb_str(&err));
		sb_free(&err);
		goto fail;
	}
	sb_free(&err);
	t->private = mr;
	return 0;
fail:
	free(mr->log);
	free(mr->dirty);
	free(mr);
	return r < 0 ? r : -EINVAL;
}

static void mirror_dtr(struct bs_target *t)
{
	struct mirror *mr = t->private;

	raid_array_destroy(mr->array);
	free(mr->log);
	free(mr->dirty);
	free(mr);
}

static int mirror_submit(struct bs_target *t, struct bs_io *io)
{
	return raid_array_submit(((struct mirror *)t->private)->array, io);
}

static uint64_t in_sync_regions(struct mirror *mr, const struct raid_status *st)
{
	if (st->action == RAID_SYNC_RESYNC)
		return st->sync_done / mr->region;
	if (st->action == RAID_SYNC_RECOVER)
		return st->sync_done / mr->region;
	return mr->nr_regions;
}

static void mirror_status(struct bs_target *t, enum bs_status_type type, unsigned flags,
			  struct strbuf *out)
{
	struct mirror *mr = t->private;
	struct raid_status st;

	(void)flags;
	if (type == BS_STATUS_INFO) {
		raid_array_status(mr->array, &st);
		sb_printf(out, "%u ", mr->nmirrors);
		for (unsigned i = 0; i < mr->nmirrors; i++)
			sb_printf(out, "%s ", mr->leg[i]->name);
		sb_printf(out, "%llu/%llu 1 ", (unsigned long long)in_sync_regions(mr, &st),
			  (unsigned long long)mr->nr_regions);
		for (unsigned i = 0; i < mr->nmirrors; i++)
			sb_putc(out, st.state[i] == RM_IN_SYNC || st.state[i] == RM_REBUILDING
					 ? 'A'
					 : 'D');
		if (mr->disk_log)
			sb_printf(out, " 3 disk %s %c", mr->log_dev->name,
				  mr->log_error ? 'D' : 'A');
		else
			sb_puts(out, " 1 core");
		return;
	}
	if (mr->disk_log)
		sb_printf(out, "disk %u %s %u ", mr->sync == SYNC_DEFAULT ? 2 : 3,
			  mr->log_dev->name, mr->region);
	else
		sb_printf(out, "core %u %u ", mr->sync == SYNC_DEFAULT ? 1 : 2, mr->region);
	if (mr->sync != SYNC_DEFAULT)
		sb_printf(out, "%ssync ", mr->sync == SYNC_NONE ? "no" : "");
	sb_printf(out, "%u", mr->nmirrors);
	for (unsigned i = 0; i < mr->nmirrors; i++)
		sb_printf(out, " %s %llu", mr->leg[i]->name, (unsigned long long)mr->offset[i]);
	if (mr->handle_errors || mr->keep_log) {
		sb_printf(out, " %u", mr->handle_errors + mr->keep_log);
		if (mr->handle_errors)
			sb_puts(out, " handle_errors");
		if (mr->keep_log)
			sb_puts(out, " keep_log");
	}
}

static void mirror_postsuspend(struct bs_target *t)
{
	struct mirror *mr = t->private;

	raid_array_quiesce(mr->array, true);
	raid_array_mark_clean(mr->array);
}

static void mirror_resume(struct bs_target *t)
{
	raid_array_quiesce(((struct mirror *)t->private)->array, false);
}

const struct bs_target_type bs_mirror_target = {
    .name = "mirror",
    .version = {1, 14, 0},
    .ctr = mirror_ctr,
    .dtr = mirror_dtr,
    .submit = mirror_submit,
    .status = mirror_status,
    .postsuspend = mirror_postsuspend,
    .resume = mirror_resume,
};
