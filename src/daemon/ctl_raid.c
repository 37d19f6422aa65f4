/*
 * ctl_raid.c - control requests of the `raid` family that need more than a dm message:
 * creating an array (writing superblocks) and assembling arrays from their members.
 * Everything else (detail, fail, remove, add, check, stop) goes through dm requests on the
 * array's device and messages to its `md` target.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/ctl.h"
#include "proto/control.h"
#include "raid/layout.h"
#include "raid/md_array.h"
#include "util/parse.h"

#define MAX_ARGS 128

struct devlist {
	char *path[MAX_ARGS];
	struct bs_bdev *b[MAX_ARGS];
	unsigned n;
};

static void devlist_close(struct devlist *d)
{
	for (unsigned i = 0; i < d->n; i++) {
		bs_bdev_close(d->b[i]);
		free(d->path[i]);
	}
	d->n = 0;
}

/* Absolute form of P against the client's directory (as tables see it). */
static char *absolute(struct ctl_req *rq, const char *p)
{
	const char *cwd = bs_json_str(rq->in, "cwd");
	char buf[PATH_MAX];

	if (p[0] == '/' || !cwd)
		return strdup(p);
	snprintf(buf, sizeof(buf), "%s/%s", cwd, p);
	return strdup(buf);
}

/* Opens the devices named in array KEY; "missing" leaves a NULL entry when allowed. */
static int open_devices(struct ctl_req *rq, const char *key, bool allow_missing, struct devlist *d)
{
	struct json_object *arr;

	if (!json_object_object_get_ex(rq->in, key, &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		sb_printf(&rq->err, "request has no \"%s\" list", key);
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);
		const char *p = json_object_get_string(v), *why;
		int r;

		if (d->n == MAX_ARGS || !json_object_is_type(v, json_type_string)) {
			sb_puts(&rq->err, "too many devices, or a device is not a string");
			return -EINVAL;
		}
		if (!strcmp(p, "missing")) {
			if (!allow_missing) {
				sb_puts(&rq->err, "\"missing\" is only allowed among the members");
				return -EINVAL;
			}
			d->path[d->n] = NULL;
			d->b[d->n++] = NULL;
			continue;
		}
		d->path[d->n] = absolute(rq, p);
		r = bs_bdev_open(d->path[d->n], false, &d->b[d->n], &why);
		if (r) {
			sb_printf(&rq->err, "%s: %s", p, why);
			free(d->path[d->n]);
			return r;
		}
		for (unsigned k = 0; k < d->n; k++)
			if (d->path[k] && !strcmp(d->path[k], d->path[d->n])) {
				sb_printf(&rq->err, "%s is given twice", p);
				bs_bdev_close(d->b[d->n]);
				free(d->path[d->n]);
				return -EINVAL;
			}
		d->n++;
	}
	return 0;
}

/* "0 <sectors> md <uuid> <n> <devs...> [1 run]" */
static void md_table(struct strbuf *t, uint64_t sectors, const uint8_t uuid[16], struct devlist *d,
		     bool run)
{
	char u[40];
	unsigned n = 0;

	md_uuid_format(uuid, u);
	for (unsigned i = 0; i < d->n; i++)
		n += d->path[i] != NULL;
	sb_printf(t, "0 %llu md %s %u", (unsigned long long)sectors, u, n);
	for (unsigned i = 0; i < d->n; i++)
		if (d->path[i]) {
			/* Paths with white space are escaped as the table parser expects. */
			sb_putc(t, ' ');
			for (const char *c = d->path[i]; *c; c++) {
				if (*c == ' ' || *c == '\t' || *c == '\\')
					sb_putc(t, '\\');
				sb_putc(t, *c);
			}
		}
	if (run)
		sb_puts(t, " 1 run");
}

static void dm_uuid(char *out, size_t len, const uint8_t uuid[16])
{
	char hex[33];

	bs_hex_encode(uuid, 16, hex);
	snprintf(out, len, "MD-%s", hex);
}

static int h_raid_create(struct ctl_req *rq)
{
	const char *name = ctl_need_name(rq), *layout = bs_json_str(rq->in, "layout");
	struct md_create_params p = {0};
	struct devlist mem = {0}, spares = {0};
	unsigned long long v = 0;
	uint8_t uuid[16];
	uint64_t sectors;
	struct strbuf table = STRBUF_INIT;
	char du[64];
	bool missing = false;
	int r;

	if (!name)
		return -EINVAL;
	if (bs_device_name_invalid(name)) {
		sb_printf(&rq->err, "invalid array name \"%s\": %s", name,
			  bs_device_name_invalid(name));
		return -EINVAL;
	}
	if (bs_json_u64(rq->in, "level", &v) ||
	    (v != 0 && v != 1 && v != 4 && v != 5 && v != 6 && v != 10)) {
		sb_puts(&rq->err, "level must be 0, 1, 4, 5, 6 or 10");
		return -EINVAL;
	}
	p.level = (int)v;
	if (bs_json_u64(rq->in, "raid_devices", &v) || v < 1 || v > RAID_MAX_DISKS) {
		sb_printf(&rq->err, "raid-devices must be 1 to %d", RAID_MAX_DISKS);
		return -EINVAL;
	}
	p.raid_disks = (unsigned)v;
	p.chunk = 1024; /* 512 KiB, mdadm's default */
	if (!bs_json_u64(rq->in, "chunk", &v))
		p.chunk = v;
	p.layout = raid_layout_default(p.level);
	if (layout && raid_layout_parse(p.level, layout, &p.layout)) {
		sb_printf(&rq->err, "unknown layout \"%s\" for RAID%d", layout, p.level);
		return -EINVAL;
	}
	if (!bs_json_u64(rq->in, "size", &v))
		p.size = v;
	p.bitmap = !bs_json_str(rq->in, "bitmap") || strcmp(bs_json_str(rq->in, "bitmap"), "none");
	p.assume_clean = bs_json_bool(rq->in, "assume_clean");
	p.checksum_log = bs_json_bool(rq->in, "checksum_log");
	p.policy = (p.level >= 4 && p.level <= 6) ? RAID_POLICY_JOURNAL : RAID_POLICY_RESYNC;
	if (bs_json_str(rq->in, "policy")) {
		const char *pol = bs_json_str(rq->in, "policy");

		if (!strcmp(pol, "resync") || !strcmp(pol, "bitmap"))
			p.policy = RAID_POLICY_RESYNC;
		else if (!strcmp(pol, "journal") && p.level >= 4 && p.level <= 6)
			p.policy = RAID_POLICY_JOURNAL;
		else {
			sb_printf(&rq->err, "unsupported consistency policy \"%s\" for RAID%d", pol,
				  p.level);
			return -EINVAL;
		}
	}
	if (!bs_json_u64(rq->in, "journal_size", &v))
		p.journal_sectors = v;
	if (!bs_json_u64(rq->in, "bitmap_chunk", &v))
		p.bitmap_chunk = v;
	p.name = name;
	p.homehost = bs_json_str(rq->in, "homehost");
	r = open_devices(rq, "devices", true, &mem);
	if (!r)
		r = open_devices(rq, "spares", false, &spares);
	if (r)
		goto out;
	for (unsigned i = 0; i < mem.n; i++)
		missing = missing || !mem.b[i];
	{
		struct bs_device *exists = bs_device_lookup(name);

		if (exists) {
			bs_device_put(exists);
			sb_printf(&rq->err, "device %s already exists", name);
			r = -EEXIST;
			goto out;
		}
	}
	r = md_array_format(&p, mem.b, mem.n, spares.b, spares.n, uuid, &sectors, &rq->err);
	if (r)
		goto out;
	{
		struct devlist all = {0};

		for (unsigned i = 0; i < mem.n; i++)
			all.path[all.n++] = mem.path[i];
		for (unsigned i = 0; i < spares.n; i++)
			all.path[all.n++] = spares.path[i];
		md_table(&table, sectors, uuid, &all, missing);
	}
	/* The devices are opened again by the table; ours go first. */
	devlist_close(&mem);
	devlist_close(&spares);
	dm_uuid(du, sizeof(du), uuid);
	r = bs_device_create(name, du, false, sb_str(&table), &rq->err);
	if (!r) {
		char u[40];

		md_uuid_format(uuid, u);
		ctl_add_str(rq->out, "uuid", u);
		ctl_add_int(rq->out, "sectors", (int64_t)sectors);
	}
out:
	devlist_close(&mem);
	devlist_close(&spares);
	sb_free(&table);
	return r;
}

/* md_sb_read, also taking members in the middle of a grow (assembly decides about those). */
static int scan_sb(struct bs_bdev *b, struct md_sb *sb, const char **why)
{
	int r = md_sb_read(b, sb, why);

	if (r == -EOPNOTSUPP && !md_sb_read_any(b, sb, why) &&
	    (sb->feature_map & MD_FEATURE_RESHAPE_ACTIVE))
		return 0;
	return r;
}

/* Adds every regular file or block device named, directories expanded one level. */
static int expand_scan(struct ctl_req *rq, struct devlist *d)
{
	struct json_object *arr;

	if (!json_object_object_get_ex(rq->in, "devices", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		sb_puts(&rq->err, "request has no \"devices\" list");
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		const char *p = json_object_get_string(json_object_array_get_idx(arr, i));
		char *abs = absolute(rq, p);
		struct stat st;
		DIR *dir;
		struct dirent *e;

		if (!abs || stat(abs, &st)) {
			sb_printf(&rq->err, "%s: %s", p, strerror(errno));
			free(abs);
			return -ENOENT;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (d->n < MAX_ARGS)
				d->path[d->n++] = abs;
			else
				free(abs);
			continue;
		}
		dir = opendir(abs);
		while (dir && (e = readdir(dir)) && d->n < MAX_ARGS) {
			char full[PATH_MAX];
			struct stat fs;

			if (e->d_name[0] == '.')
				continue;
			snprintf(full, sizeof(full), "%s/%s", abs, e->d_name);
			if (!stat(full, &fs) && (S_ISREG(fs.st_mode) || S_ISBLK(fs.st_mode)))
				d->path[d->n++] = strdup(full);
		}
		if (dir)
			closedir(dir);
		free(abs);
	}
	return 0;
}

/* Creates device NAME (or the superblock's name) for an array already probed. */
static int assemble_one(struct ctl_req *rq, const char *name, struct devlist *d,
			const uint8_t uuid[16], uint64_t sectors, const char *sbname,
			struct json_object *done)
{
	char du[64];
	struct strbuf table = STRBUF_INIT;
	bool run = bs_json_bool(rq->in, "run"), force = bs_json_bool(rq->in, "force");
	int r;

	if (!name)
		name = sbname;
	md_table(&table, sectors, uuid, d, false);
	if (run || force)
		sb_printf(&table, " %u%s%s", run + force, run ? " run" : "", force ? " force" : "");
	dm_uuid(du, sizeof(du), uuid);
	r = bs_device_create(name, du, false, sb_str(&table), &rq->err);
	if (!r)
		json_object_array_add(done, json_object_new_string(name));
	sb_free(&table);
	return r;
}

/* Probes the devices' superblocks, then lets go of them (the table reopens them). */
static int probe_and_close(struct ctl_req *rq, struct devlist *d, const uint8_t *uuid,
			   uint8_t u[16], uint64_t *sectors, char *sbname, size_t len)
{
	int r = md_array_probe(d->b, d->n, uuid, u, sectors, sbname, len, &rq->err);

	for (unsigned i = 0; i < d->n; i++) {
		bs_bdev_close(d->b[i]);
		d->b[i] = NULL;
	}
	return r;
}

static int h_raid_assemble(struct ctl_req *rq)
{
	const char *name = bs_json_str(rq->in, "name");
	bool scan = bs_json_bool(rq->in, "scan");
	struct json_object *done = json_object_new_array();
	struct devlist all = {0};
	int r = 0;

	if (!scan) {
		const char *ustr = bs_json_str(rq->in, "uuid");
		uint8_t uuid[16];
		struct devlist d = {0};

		if (!name) {
			json_object_put(done);
			sb_puts(&rq->err, "assemble needs a name (or --scan)");
			return -EINVAL;
		}
		if (ustr && md_uuid_parse(ustr, uuid)) {
			json_object_put(done);
			sb_printf(&rq->err, "invalid UUID \"%s\"", ustr);
			return -EINVAL;
		}
		r = open_devices(rq, "devices", false, &d);
		if (!r) {
			uint8_t u[16];
			uint64_t sectors;
			char sbname[40];

			r = probe_and_close(rq, &d, ustr ? uuid : NULL, u, &sectors, sbname,
					    sizeof(sbname));
			if (!r)
				r = assemble_one(rq, name, &d, u, sectors, sbname, done);
		}
		devlist_close(&d);
		json_object_object_add(rq->out, "assembled", done);
		return r;
	}

	/* --scan: group every md member found by array UUID. */
	r = expand_scan(rq, &all);
	if (r)
		goto out;
	{
		bool used[MAX_ARGS] = {0};
		unsigned arrays = 0;

		for (unsigned i = 0; i < all.n && !r; i++) {
			struct devlist grp = {0};
			struct md_sb sb, sb2;
			struct bs_bdev *b;
			const char *why;

			if (used[i] || bs_bdev_open(all.path[i], true, &b, &why))
				continue;
			if (scan_sb(b, &sb, &why) || sb.major != 1) {
				bs_bdev_close(b);
				continue;
			}
			bs_bdev_close(b);
			for (unsigned k = i; k < all.n; k++) {
				if (used[k] || bs_bdev_open(all.path[k], true, &b, &why))
					continue;
				if (!scan_sb(b, &sb2, &why) &&
				    !memcmp(sb.set_uuid, sb2.set_uuid, 16)) {
					used[k] = true;
					grp.path[grp.n] = strdup(all.path[k]);
					grp.b[grp.n++] = b;
				} else {
					bs_bdev_close(b);
				}
			}
			arrays++;
			if (name && arrays > 1) {
				devlist_close(&grp);
				sb_puts(&rq->err,
					"the devices hold more than one array: give no name");
				r = -EINVAL;
				break;
			}
			{
				uint8_t u[16];
				uint64_t sectors;
				char sbname[40];

				r = probe_and_close(rq, &grp, sb.set_uuid, u, &sectors, sbname,
						    sizeof(sbname));
				if (!r)
					r = assemble_one(rq, name, &grp, u, sectors, sbname, done);
			}
			devlist_close(&grp);
		}
		if (!r && !arrays) {
			sb_puts(&rq->err, "no md superblocks found");
			r = -ENOENT;
		}
	}
out:
	for (unsigned i = 0; i < all.n; i++)
		free(all.path[i]);
	json_object_object_add(rq->out, "assembled", done);
	return r;
}

const struct ctl_op bs_ctl_raid_ops[] = {
    {"raid.create", h_raid_create},
    {"raid.assemble", h_raid_assemble},
    {NULL, NULL},
};
