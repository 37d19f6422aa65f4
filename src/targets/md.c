/*
 * md.c - the `md` target: a Linux md array (md superblocks on its members) as a segment.
 *
 * This target is blkstack's own (Linux serves md arrays without device-mapper); it is how
 * `blkstack raid create/assemble` put an array into a device, so arrays show up in `dm ls`,
 * stack under other targets and are served like any device.
 *
 * Table: md <array_uuid> <#devs> <dev>... [<#opts> run|force...]
 *   The members are found by their superblocks; the order in the table does not matter.
 *   run: start even if members are missing; force: accept out-of-date members.
 * Status: <level> <raid_disks> <health> <done>/<total> <sync_action> <mismatch_cnt>
 *         <events>      (health per role: U in sync, r rebuilding, _ missing or faulty)
 * Messages: check, repair, idle, frozen; fail <dev>, remove <dev>, add <dev>;
 *   grow <raid_disks> (RAID4/5/6 onto spares added before); detail
 *   (the last returns "key: value" lines for `blkstack raid detail`).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/device.h"
#include "engine/table.h"
#include "engine/target.h"
#include "raid/md_array.h"
#include "util/parse.h"

struct md_tgt {
	struct bs_target *t;
	struct md_array *m;
	uint8_t uuid[16];
	bool run, force;
	struct bs_bdev *devs[RAID_MAX_DISKS + 16]; /* this table's handles */
	unsigned ndevs;
	struct md_tgt *next_user; /* other tables sharing the array */
};

/*
 * Assembled arrays, shared by every table of the device that assembled them: a reload
 * (dm semantics: the new table is built while the old one is live) must not start a second
 * engine on the same members, so the new table takes the running array over.  Another
 * device may not assemble an array that is already running.
 */
struct md_shared {
	struct md_array *m;
	uint8_t uuid[16];
	char owner[BS_DEVICE_NAME_MAX];
	struct md_tgt *users; /* tables using it; the array uses the first one's handles */
	struct md_shared *next;
};

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct md_shared *shared;

static struct md_shared *shared_find(const uint8_t uuid[16])
{
	for (struct md_shared *x = shared; x; x = x->next)
		if (!memcmp(x->uuid, uuid, 16))
			return x;
	return NULL;
}

/*
 * Drops table MT's use.  When another table remains and the array was using MT's handles,
 * it is switched to the remaining table's handles before MT's are closed.
 */
static void shared_put(struct md_tgt *mt)
{
	struct md_shared *x = NULL, **pp;
	bool last = false;

	pthread_mutex_lock(&shared_lock);
	for (pp = &shared; *pp; pp = &(*pp)->next)
		if ((*pp)->m == mt->m) {
			x = *pp;
			break;
		}
	if (x) {
		bool was_bound = x->users == mt;

		for (struct md_tgt **u = &x->users; *u; u = &(*u)->next_user)
			if (*u == mt) {
				*u = mt->next_user;
				break;
			}
		if (!x->users) {
			*pp = x->next;
			last = true;
		} else if (was_bound) {
			struct strbuf err = STRBUF_INIT;

			md_array_rebind(x->m, x->users->devs, x->users->ndevs, &err);
			sb_free(&err);
		}
	}
	pthread_mutex_unlock(&shared_lock);
	if (last) {
		md_array_stop(x->m);
		free(x);
	}
}

/*
 * The array's events go to the device through whichever table uses the array now: the
 * table that assembled it may since have been replaced by a reload (and freed).
 */
static void md_event(void *arg)
{
	struct md_shared *x = arg;

	pthread_mutex_lock(&shared_lock);
	if (x->users)
		bs_target_event(x->users->t);
	pthread_mutex_unlock(&shared_lock);
}

static const char *owner_name(struct bs_target *t)
{
	return t->table && t->table->owner ? bs_device_name(t->table->owner) : "md";
}

static int md_ctr(struct bs_target *t, unsigned argc, char **argv)
{
	struct md_tgt *mt;
	struct bs_bdev *devs[RAID_MAX_DISKS + 16];
	struct md_assemble_opts o = {0};
	struct strbuf err = STRBUF_INIT;
	uint32_t n;
	unsigned i;
	int r;

	if (argc < 3)
		return bs_target_error(t, "not enough arguments");
	mt = calloc(1, sizeof(*mt));
	if (!mt)
		return -ENOMEM;
	mt->t = t;
	if (md_uuid_parse(argv[0], mt->uuid)) {
		r = bs_target_error(t, "invalid array UUID \"%s\"", argv[0]);
		goto fail;
	}
	if (bs_parse_u32(argv[1], &n) || n == 0 || n > RAID_MAX_DISKS + 16 || n > argc - 2) {
		r = bs_target_error(t, "invalid number of devices");
		goto fail;
	}
	if (argc > 2 + n) {
		uint32_t nopt;

		if (bs_parse_u32(argv[2 + n], &nopt) || nopt != argc - 3 - n) {
			r = bs_target_error(t, "invalid number of options");
			goto fail;
		}
		for (i = 3 + n; i < argc; i++) {
			if (!strcmp(argv[i], "run"))
				mt->run = true;
			else if (!strcmp(argv[i], "force"))
				mt->force = true;
			else {
				r = bs_target_error(t, "unknown option \"%s\"", argv[i]);
				goto fail;
			}
		}
	}
	for (i = 0; i < n; i++) {
		r = bs_target_get_device(t, argv[2 + i], "member", &devs[i]);
		if (r)
			goto fail;
		mt->devs[i] = devs[i];
	}
	mt->ndevs = n;
	pthread_mutex_lock(&shared_lock);
	{
		struct md_shared *x = shared_find(mt->uuid);

		if (x && strcmp(x->owner, owner_name(t))) {
			char u[40];

			pthread_mutex_unlock(&shared_lock);
			md_uuid_format(mt->uuid, u);
			r = bs_target_error(t, "array %s is already running as device %s", u,
					    x->owner);
			goto fail;
		}
		if (x) {
			/*
			 * A reload of the device that runs it: take the running array over, with
			 * this table's handles (the old table closes its own when it goes).
			 */
			r = md_array_rebind(x->m, devs, n, &err);
			if (r) {
				pthread_mutex_unlock(&shared_lock);
				bs_target_error(t, "%s", sb_str(&err));
				sb_free(&err);
				goto fail;
			}
			mt->next_user = x->users;
			x->users = mt;
			mt->m = x->m;
		}
	}
	pthread_mutex_unlock(&shared_lock);
	if (!mt->m) {
		struct md_shared *x = calloc(1, sizeof(*x));

		if (!x) {
			r = -ENOMEM;
			goto fail;
		}
		o.uuid = mt->uuid;
		o.run = mt->run;
		o.force = mt->force;
		o.name = owner_name(t);
		o.event = md_event;
		o.event_arg = x;
		r = md_array_assemble(devs, n, &o, &mt->m, &err);
		if (r) {
			free(x);
			bs_target_error(t, "%s", sb_str(&err));
			sb_free(&err);
			goto fail;
		}
		sb_free(&err);
		x->m = mt->m;
		memcpy(x->uuid, mt->uuid, 16);
		snprintf(x->owner, sizeof(x->owner), "%s", owner_name(t));
		x->users = mt;
		pthread_mutex_lock(&shared_lock);
		x->next = shared;
		shared = x;
		pthread_mutex_unlock(&shared_lock);
	}
	if (raid_array_sectors(md_array_engine(mt->m)) < t->len) {
		uint64_t have = raid_array_sectors(md_array_engine(mt->m));

		shared_put(mt);
		r = bs_target_error(t, "the array holds %llu sectors, less than the segment's %llu",
				    (unsigned long long)have, (unsigned long long)t->len);
		goto fail;
	}
	{
		struct raid_status st;

		/* With the checksum log the array serves whole 4 KiB blocks. */
		raid_array_status(md_array_engine(mt->m), &st);
		if (st.csum && t->block_size < RAID_CSUM_BLOCK * 512)
			t->block_size = RAID_CSUM_BLOCK * 512;
	}
	t->private = mt;
	return 0;
fail:
	free(mt);
	return r < 0 ? r : -EINVAL;
}

static void md_dtr(struct bs_target *t)
{
	struct md_tgt *mt = t->private;

	shared_put(mt);
	free(mt);
}

static int md_submit(struct bs_target *t, struct bs_io *io)
{
	return raid_array_submit(md_array_engine(((struct md_tgt *)t->private)->m), io);
}

static char health_char(enum raid_member_state s)
{
	return s == RM_IN_SYNC ? 'U' : s == RM_REBUILDING ? 'r' : '_';
}

static void md_status(struct bs_target *t, enum bs_status_type type, unsigned flags,
		      struct strbuf *out)
{
	struct md_tgt *mt = t->private;
	struct raid_array *a = md_array_engine(mt->m);
	struct raid_status st;
	char uuid[40];

	(void)flags;
	if (type == BS_STATUS_INFO) {
		raid_array_status(a, &st);
		sb_printf(out, "raid%d %u ", st.level, st.disks);
		for (unsigned i = 0; i < st.disks; i++)
			sb_putc(out, health_char(st.state[i]));
		sb_printf(out, " %llu/%llu %s %llu %llu",
			  (unsigned long long)(st.action == RAID_SYNC_IDLE ? st.dev_sectors
									   : st.sync_done),
			  (unsigned long long)(st.action == RAID_SYNC_IDLE ? st.dev_sectors
									   : st.sync_total),
			  raid_sync_action_name(st.action), (unsigned long long)st.mismatch_cnt,
			  (unsigned long long)md_array_sb(mt->m)->events);
		return;
	}
	{
		struct raid_member_info info[RAID_MAX_DISKS + 16];
		unsigned n = raid_array_members(a, info, RAID_MAX_DISKS + 16), cnt = 0;

		for (unsigned i = 0; i < n; i++)
			cnt += info[i].bdev != NULL;
		md_uuid_format(mt->uuid, uuid);
		sb_printf(out, "%s %u", uuid, cnt);
		for (unsigned i = 0; i < n; i++)
			if (info[i].bdev)
				sb_printf(out, " %s", info[i].bdev->name);
		if (mt->run || mt->force)
			sb_printf(out, " %u%s%s", mt->run + mt->force, mt->run ? " run" : "",
				  mt->force ? " force" : "");
	}
}

static const char *state_name(enum raid_member_state s)
{
	switch (s) {
	case RM_IN_SYNC:
		return "active sync";
	case RM_REBUILDING:
		return "spare rebuilding";
	case RM_FAULTY:
		return "faulty";
	case RM_SPARE:
		return "spare";
	case RM_MISSING:
		return "removed";
	}
	return "?";
}

static void md_detail(struct md_tgt *mt, struct strbuf *out)
{
	struct raid_array *a = md_array_engine(mt->m);
	const struct md_sb *sb = md_array_sb(mt->m);
	struct raid_member_info info[RAID_MAX_DISKS + 16];
	struct raid_status st;
	unsigned n, active = 0, working = 0, failed = 0, spare = 0;
	char uuid[40], lay[48];

	raid_array_status(a, &st);
	n = raid_array_members(a, info, RAID_MAX_DISKS + 16);
	for (unsigned i = 0; i < n; i++) {
		if (!info[i].bdev)
			continue;
		if (info[i].state == RM_IN_SYNC)
			active++, working++;
		else if (info[i].state == RM_FAULTY)
			failed++;
		else
			working++, spare++;
	}
	md_uuid_format(mt->uuid, uuid);
	sb_printf(out, "level: raid%d\n", st.level);
	sb_printf(out, "array_size: %llu\n", (unsigned long long)st.array_sectors);
	sb_printf(out, "used_dev_size: %llu\n", (unsigned long long)st.dev_sectors);
	sb_printf(out, "raid_devices: %u\n", st.disks);
	sb_printf(out, "total_devices: %u\n", working + failed);
	sb_printf(out, "state: %s%s%s%s\n", st.clean ? "clean" : "active",
		  st.failed	? ", FAILED"
		  : st.degraded ? ", degraded"
				: "",
		  st.action == RAID_SYNC_RESHAPE				  ? ", reshaping"
		  : st.action == RAID_SYNC_RECOVER				  ? ", recovering"
		  : st.action == RAID_SYNC_RESYNC				  ? ", resyncing"
		  : st.action == RAID_SYNC_CHECK || st.action == RAID_SYNC_REPAIR ? ", checking"
										  : "",
		  "");
	sb_printf(out,
		  "active_devices: %u\nworking_devices: %u\nfailed_devices: %u\n"
		  "spare_devices: %u\n",
		  active, working, failed, spare);
	if (st.level != 1 && st.level != 0)
		sb_printf(out, "layout: %s\n",
			  raid_layout_name(st.level, st.layout, lay, sizeof(lay)));
	if (st.level != 1)
		sb_printf(out, "chunk_size: %lluK\n", (unsigned long long)(st.chunk / 2));
	sb_printf(out, "consistency_policy: %s\n",
		  st.policy == RAID_POLICY_JOURNAL ? "journal"
		  : st.bitmap_bits		   ? "bitmap"
						   : "resync");
	sb_printf(out, "name: %s\nuuid: %s\nevents: %llu\n", sb->set_name, uuid,
		  (unsigned long long)sb->events);
	sb_printf(out, "sync_action: %s\n", raid_sync_action_name(st.action));
	if (st.reshaping)
		sb_printf(out, "delta_devices: %d (%u->%u)\nreshape_position: %llu\n",
			  (int)(st.disks - st.reshape_old_disks), st.reshape_old_disks, st.disks,
			  (unsigned long long)st.reshape_pos);
	if (st.reshape_stalled)
		sb_puts(out, "reshape_paused: a member failed or an I/O error stopped the copy\n");
	sb_printf(out, "sync_pending: %s\n", st.sync_pending ? "yes" : "no");

	if (st.action != RAID_SYNC_IDLE && st.sync_total)
		sb_printf(out, "sync_progress: %llu/%llu\nsync_speed_kbs: %.0f\n",
			  (unsigned long long)st.sync_done, (unsigned long long)st.sync_total,
			  st.sync_speed);
	sb_printf(out, "mismatch_cnt: %llu\nrepaired_cnt: %llu\ncorrected: %llu\n",
		  (unsigned long long)st.mismatch_cnt, (unsigned long long)st.repaired_cnt,
		  (unsigned long long)st.corrected);
	if (st.csum)
		sb_printf(out, "checksum_log: on\nchecksum_errors: %llu\n",
			  (unsigned long long)st.csum_errors);
	if (st.bitmap_bits)
		sb_printf(out, "bitmap: %llu/%llu dirty\n", (unsigned long long)st.bitmap_dirty,
			  (unsigned long long)st.bitmap_bits);
	if (st.policy == RAID_POLICY_JOURNAL)
		sb_printf(
		    out, "journal_replayed: %llu\njournal_skipped: %llu\njournal_flushes: %llu\n",
		    (unsigned long long)st.journal_replayed, (unsigned long long)st.journal_skipped,
		    (unsigned long long)st.journal_flushes);
	for (unsigned i = 0; i < n; i++)
		if (info[i].bdev || info[i].role >= 0)
			sb_printf(out, "device: %d %s %s\n", info[i].role,
				  info[i].bdev ? state_name(info[i].state) : "removed",
				  info[i].bdev ? info[i].bdev->name : "-");
}

static int md_message(struct bs_target *t, unsigned argc, char **argv, struct strbuf *out)
{
	struct md_tgt *mt = t->private;
	struct raid_array *a = md_array_engine(mt->m);
	struct strbuf err = STRBUF_INIT;
	int r = 0;

	if (argc == 1 && !strcmp(argv[0], "detail")) {
		md_detail(mt, out);
		return 0;
	}
	if (argc == 1) {
		enum raid_sync_action act;

		if (!strcmp(argv[0], "check"))
			act = RAID_SYNC_CHECK;
		else if (!strcmp(argv[0], "repair"))
			act = RAID_SYNC_REPAIR;
		else if (!strcmp(argv[0], "idle"))
			act = RAID_SYNC_IDLE;
		else if (!strcmp(argv[0], "frozen"))
			act = RAID_SYNC_FROZEN;
		else
			return bs_target_error(t, "unrecognised message \"%s\"", argv[0]);
		r = raid_array_sync_action(a, act, &err);
	} else if (argc == 2 && !strcmp(argv[0], "fail")) {
		r = raid_array_fail_member(a, argv[1], &err);
	} else if (argc == 2 && !strcmp(argv[0], "remove")) {
		struct bs_bdev *b;

		r = md_array_remove(mt->m, argv[1], &b, &err);
		if (!r)
			bs_target_put_device(t, b);
	} else if (argc == 2 && !strcmp(argv[0], "grow")) {
		uint32_t n;

		if (bs_parse_u32(argv[1], &n) || n == 0)
			return bs_target_error(t, "invalid number of devices \"%s\"", argv[1]);
		r = md_array_grow(mt->m, n, &err);
	} else if (argc == 2 && !strcmp(argv[0], "add")) {
		struct bs_bdev *b;

		r = bs_target_get_device(t, argv[1], "device", &b);
		if (r)
			return r;
		r = md_array_add(mt->m, b, &err);
		if (r)
			bs_target_put_device(t, b);
	} else {
		return bs_target_error(t, "unrecognised message");
	}
	if (r)
		bs_target_error(t, "%s", sb_str(&err));
	sb_free(&err);
	return r;
}

static void md_postsuspend(struct bs_target *t)
{
	struct raid_array *a = md_array_engine(((struct md_tgt *)t->private)->m);

	raid_array_quiesce(a, true);
	raid_array_mark_clean(a);
}

static void md_resume(struct bs_target *t)
{
	raid_array_quiesce(md_array_engine(((struct md_tgt *)t->private)->m), false);
}

const struct bs_target_type bs_md_target = {
    .name = "md",
    .version = {1, 0, 0},
    .ctr = md_ctr,
    .dtr = md_dtr,
    .submit = md_submit,
    .status = md_status,
    .message = md_message,
    .postsuspend = md_postsuspend,
    .resume = md_resume,
};
