/*
 * cmd_raid.c - `blkstack raid ...`: mdadm's verbs for md arrays held by the daemon.
 *
 * create and assemble are daemon requests (they write or read superblocks); examine reads
 * superblocks here, offline; detail, fail, remove, add, check, repair and stop are dm
 * requests and messages to the array's `md` target; status prints /proc/mdstat's format.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/nbd_bdev.h"
#include "formats/md.h"
#include "util/parse.h"
#include "util/strbuf.h"

static void raid_usage(FILE *f)
{
	fputs("usage: blkstack raid <command> [options]\n"
	      "  create NAME --level L --raid-devices N [--chunk SIZE] [--layout L]\n"
	      "         [--metadata 1.2] [--bitmap internal|none] [--bitmap-chunk SIZE]\n"
	      "         [--spare-devices N]\n"
	      "         [--assume-clean] [--size SIZE] [--consistency-policy resync|journal]\n"
	      "         [--journal-size SIZE] [--checksum-log] [--homehost H] [--wait]\n"
	      "         DEVICES...  (\"missing\" allowed)\n"
	      "  assemble NAME DEVICES... [--run] [--force] [--uuid UUID]\n"
	      "  assemble --scan [NAME] DEVICES-OR-DIRECTORIES... [--run]\n"
	      "  examine [--scan] DEVICE...\n"
	      "  detail NAME\n"
	      "  stop NAME\n"
	      "  fail NAME DEVICE | remove NAME DEVICE | add NAME DEVICE [--wait]\n"
	      "  check NAME [--wait] | repair NAME [--wait] | idle NAME\n"
	      "  wait NAME\n"
	      "  grow NAME --raid-devices N [--wait]\n"
	      "  status\n"
	      "SIZE takes K, M, G suffixes (KiB without one, as mdadm).\n",
	      f);
}

enum {
	O_LEVEL = 1000,
	O_DEVICES,
	O_CHUNK,
	O_LAYOUT,
	O_METADATA,
	O_BITMAP,
	O_SPARES,
	O_ASSUME_CLEAN,
	O_SIZE,
	O_POLICY,
	O_JSIZE,
	O_BCHUNK,
	O_HOMEHOST,
	O_RUN,
	O_FORCE,
	O_UUID,
	O_SCAN,
	O_WAIT,
	O_CSUM,
};

static const struct option raid_opts[] = {
    {"level", required_argument, NULL, O_LEVEL},
    {"raid-devices", required_argument, NULL, O_DEVICES},
    {"chunk", required_argument, NULL, O_CHUNK},
    {"layout", required_argument, NULL, O_LAYOUT},
    {"metadata", required_argument, NULL, O_METADATA},
    {"bitmap", required_argument, NULL, O_BITMAP},
    {"spare-devices", required_argument, NULL, O_SPARES},
    {"assume-clean", no_argument, NULL, O_ASSUME_CLEAN},
    {"size", required_argument, NULL, O_SIZE},
    {"consistency-policy", required_argument, NULL, O_POLICY},
    {"journal-size", required_argument, NULL, O_JSIZE},
    {"bitmap-chunk", required_argument, NULL, O_BCHUNK},
    {"homehost", required_argument, NULL, O_HOMEHOST},
    {"run", no_argument, NULL, O_RUN},
    {"force", no_argument, NULL, O_FORCE},
    {"uuid", required_argument, NULL, O_UUID},
    {"scan", no_argument, NULL, O_SCAN},
    {"wait", no_argument, NULL, O_WAIT},
    {"checksum-log", no_argument, NULL, O_CSUM},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct raid_args {
	const char *level, *devices, *chunk, *layout, *metadata, *bitmap, *spares, *size, *policy,
	    *jsize, *bchunk, *homehost, *uuid;
	bool assume_clean, run, force, scan, wait, csum;
	int npos;
	char **pos;
};

static int parse_args(int argc, char **argv, struct raid_args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((c = getopt_long(argc, argv, "l:n:c:x:e:b:z:fRsh", raid_opts, NULL)) != -1) {
		switch (c) {
		case O_LEVEL:
		case 'l':
			a->level = optarg;
			break;
		case O_DEVICES:
		case 'n':
			a->devices = optarg;
			break;
		case O_CHUNK:
		case 'c':
			a->chunk = optarg;
			break;
		case O_LAYOUT:
			a->layout = optarg;
			break;
		case O_METADATA:
		case 'e':
			a->metadata = optarg;
			break;
		case O_BITMAP:
		case 'b':
			a->bitmap = optarg;
			break;
		case O_SPARES:
		case 'x':
			a->spares = optarg;
			break;
		case O_ASSUME_CLEAN:
			a->assume_clean = true;
			break;
		case O_SIZE:
		case 'z':
			a->size = optarg;
			break;
		case O_POLICY:
			a->policy = optarg;
			break;
		case O_JSIZE:
			a->jsize = optarg;
			break;
		case O_BCHUNK:
			a->bchunk = optarg;
			break;
		case O_HOMEHOST:
			a->homehost = optarg;
			break;
		case O_RUN:
		case 'R':
			a->run = true;
			break;
		case O_FORCE:
		case 'f':
			a->force = true;
			break;
		case O_UUID:
			a->uuid = optarg;
			break;
		case O_SCAN:
		case 's':
			a->scan = true;
			break;
		case O_WAIT:
			a->wait = true;
			break;
		case O_CSUM:
			a->csum = true;
			break;
		case 'h':
			raid_usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	a->npos = argc - optind;
	a->pos = argv + optind;
	return 0;
}

/* mdadm sizes: KiB unless a suffix says otherwise; returns sectors. */
static int kib_size(const char *what, const char *s, uint64_t *sectors)
{
	uint64_t bytes;
	size_t n = strlen(s);

	if (n && s[n - 1] >= '0' && s[n - 1] <= '9') {
		if (bs_parse_u64(s, &bytes) || bytes > UINT64_MAX / 1024)
			goto bad;
		bytes *= 1024;
	} else if (bs_parse_size(s, &bytes)) {
		goto bad;
	}
	if (bytes % 512 || !bytes)
		goto bad;
	*sectors = bytes / 512;
	return 0;
bad:
	cli_error("raid: invalid %s \"%s\"", what, s);
	return -1;
}

/* Absolute device path (the daemon has another directory); "missing" stays. */
static struct json_object *path_array(char **p, int n)
{
	struct json_object *arr = json_object_new_array();
	char cwd[PATH_MAX], buf[PATH_MAX];

	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (p[i][0] == '/' || !strcmp(p[i], "missing") || !cwd[0])
			json_object_array_add(arr, json_object_new_string(p[i]));
		else {
			snprintf(buf, sizeof(buf), "%s/%s", cwd, p[i]);
			json_object_array_add(arr, json_object_new_string(buf));
		}
	}
	return arr;
}

/* P made absolute against the working directory; truncated paths are refused later. */
static void abs_path(const char *p, char *out, size_t len)
{
	char cwd[PATH_MAX];
	int n;

	if (p[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		n = snprintf(out, len, "%s", p);
	else
		n = snprintf(out, len, "%.*s/%s", (int)(len / 2), cwd, p);
	if (n < 0 || (size_t)n >= len)
		out[0] = '\0';
}

/* ---- detail (from the md target's "detail" message) --------------------------------------- */

struct detail {
	char text[8192];
};

static const char *dval(const struct detail *d, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);

	for (const char *p = d->text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);

		if (ll > kl + 2 && !strncmp(p, key, kl) && p[kl] == ':' && p[kl + 1] == ' ') {
			size_t vl = ll - kl - 2 < len - 1 ? ll - kl - 2 : len - 1;

			memcpy(buf, p + kl + 2, vl);
			buf[vl] = '\0';
			return buf;
		}
		p += ll + (nl ? 1 : 0);
	}
	return NULL;
}

/* Sends "detail" to NAME's md target. 0, or 1 after printing an error. */
static int get_detail(const char *name, struct detail *d)
{
	struct json_object *req = json_object_new_object();
	struct bs_msg reply;
	const char *out;
	char ctx[200];
	int r;

	json_object_object_add(req, "name", json_object_new_string(name));
	json_object_object_add(req, "sector", json_object_new_int64(0));
	snprintf(ctx, sizeof(ctx), "raid %s", name);
	r = cli_call(ctx, "dm.message", req, "detail", 6, &reply);
	if (r)
		return r;
	out = bs_json_str(reply.json, "output");
	snprintf(d->text, sizeof(d->text), "%s", out ? out : "");
	bs_msg_free(&reply);
	return 0;
}

static void human(uint64_t sectors, char *buf, size_t len)
{
	double kib = sectors / 2.0;

	snprintf(buf, len, "%llu (%.2f MiB %.2f MB)", (unsigned long long)(sectors / 2),
		 kib / 1024.0, kib * 1024.0 / 1e6);
}

static int do_detail(const char *name)
{
	struct detail d;
	char v[256], h[96];
	uint64_t n;

	if (get_detail(name, &d))
		return 1;
	printf("%s:\n", name);
	printf("           Version : 1.2\n");
	printf("        Raid Level : %s\n", dval(&d, "level", v, sizeof(v)) ? v : "?");
	if (dval(&d, "array_size", v, sizeof(v)) && !bs_parse_u64(v, &n)) {
		human(n, h, sizeof(h));
		printf("        Array Size : %s\n", h);
	}
	if (dval(&d, "used_dev_size", v, sizeof(v)) && !bs_parse_u64(v, &n)) {
		human(n, h, sizeof(h));
		printf("     Used Dev Size : %s\n", h);
	}
	printf("      Raid Devices : %s\n", dval(&d, "raid_devices", v, sizeof(v)) ? v : "?");
	printf("     Total Devices : %s\n", dval(&d, "total_devices", v, sizeof(v)) ? v : "?");
	printf("       Persistence : Superblock is persistent\n\n");
	if (dval(&d, "bitmap", v, sizeof(v)))
		printf("     Intent Bitmap : Internal\n\n");
	printf("             State : %s\n", dval(&d, "state", v, sizeof(v)) ? v : "?");
	printf("    Active Devices : %s\n", dval(&d, "active_devices", v, sizeof(v)) ? v : "?");
	printf("   Working Devices : %s\n", dval(&d, "working_devices", v, sizeof(v)) ? v : "?");
	printf("    Failed Devices : %s\n", dval(&d, "failed_devices", v, sizeof(v)) ? v : "?");
	printf("     Spare Devices : %s\n\n", dval(&d, "spare_devices", v, sizeof(v)) ? v : "?");
	if (dval(&d, "layout", v, sizeof(v)))
		printf("            Layout : %s\n", v);
	if (dval(&d, "chunk_size", v, sizeof(v)))
		printf("        Chunk Size : %s\n\n", v);
	printf("Consistency Policy : %s\n\n",
	       dval(&d, "consistency_policy", v, sizeof(v)) ? v : "?");
	if (dval(&d, "sync_progress", v, sizeof(v))) {
		unsigned long long a = 0, b = 1;
		char act[32];

		sscanf(v, "%llu/%llu", &a, &b);
		dval(&d, "sync_action", act, sizeof(act));
		printf("    %8s Status : %llu%% complete\n", act, b ? a * 100 / b : 0ULL);
		if (dval(&d, "delta_devices", v, sizeof(v))) {
			/* "1 (3->4)" -> mdadm's "1, (3->4)" */
			char *sp = strchr(v, ' ');

			if (sp)
				*sp = '\0';
			printf("     Delta Devices : %s, %s\n", v, sp ? sp + 1 : "");
		}
		printf("\n");
	}
	printf("              Name : %s\n", dval(&d, "name", v, sizeof(v)) ? v : "?");
	printf("              UUID : %s\n", dval(&d, "uuid", v, sizeof(v)) ? v : "?");
	printf("            Events : %s\n\n", dval(&d, "events", v, sizeof(v)) ? v : "?");
	printf("    Number   RaidDevice State\n");
	{
		const char *p = d.text;
		unsigned num = 0;

		while ((p = strstr(p, "device: "))) {
			int role;
			char st[64] = "", path[PATH_MAX] = "";
			const char *nl = strchr(p, '\n');
			char line[PATH_MAX + 100];
			size_t ll = nl ? (size_t)(nl - p) : strlen(p);

			if (ll >= sizeof(line))
				ll = sizeof(line) - 1;
			memcpy(line, p, ll);
			line[ll] = '\0';
			p += ll;
			if (sscanf(line, "device: %d", &role) != 1)
				continue;
			{
				/* "device: ROLE STATE... PATH" - the path is the last word. */
				char *last = strrchr(line, ' ');
				char *first = strchr(line + 8, ' ');

				if (!last || !first)
					continue;
				snprintf(path, sizeof(path), "%s", last + 1);
				*last = '\0';
				snprintf(st, sizeof(st), "%s", first + 1);
			}
			if (role >= 0)
				printf("    %6u   %10d      %-16s %s\n", num++, role, st, path);
			else
				printf("    %6s   %10s      %-16s %s\n", "-", "-", st, path);
		}
	}
	return 0;
}

/* ---- progress --------------------------------------------------------------------------- */

/* Waits until NAME has no sync action running; draws a bar on a terminal. */
static int wait_idle(const char *name)
{
	bool tty = isatty(1);

	for (;;) {
		struct detail d;
		char act[32], prog[64], speed[32];
		unsigned long long a = 0, b = 0;

		if (get_detail(name, &d))
			return 1;
		char pend[8] = "no";

		dval(&d, "sync_pending", pend, sizeof(pend));
		if (!dval(&d, "sync_action", act, sizeof(act)) || !strcmp(act, "frozen") ||
		    (!strcmp(act, "idle") && strcmp(pend, "yes"))) {

			if (tty)
				printf("\r%*s\r", 79, "");
			fflush(stdout);
			return 0;
		}
		if (tty && dval(&d, "sync_progress", prog, sizeof(prog)) &&
		    sscanf(prog, "%llu/%llu", &a, &b) == 2 && b) {
			int width = 40, fill = (int)(a * width / b);
			double sp =
			    dval(&d, "sync_speed_kbs", speed, sizeof(speed)) ? atof(speed) : 0;
			double eta = sp > 0 ? (b - a) / 2.0 / sp : 0;

			printf("\r%-8s [", act);
			for (int i = 0; i < width; i++)
				putchar(i < fill ? '=' : i == fill ? '>' : '.');
			printf("] %5.1f%% %7.0fK/s eta %4.0fs", 100.0 * a / b, sp, eta);
			fflush(stdout);
		}
		usleep(200 * 1000);
	}
}

/*
 * After a grow the array is larger than its device's table: reloads the table at the
 * array's size, so new NBD connections see it.  0, or 1 after printing an error.
 */
static int resize_table(const char *name)
{
	struct json_object *req, *devs, *d;
	struct detail det;
	struct bs_msg reply;
	struct strbuf line = STRBUF_INIT;
	char v[64], ctx[200];
	unsigned long long start, len, tlen = 0;
	uint64_t size;
	int n = 0, r;

	if (get_detail(name, &det))
		return 1;
	if (!dval(&det, "array_size", v, sizeof(v)) || bs_parse_u64(v, &size))
		return 0;
	req = json_object_new_object();
	json_object_object_add(req, "name", json_object_new_string(name));
	if (cli_call_quiet("dm.table", req, &reply)) {
		cli_error("raid %s: cannot read the device's table", name);
		return 1;
	}
	if (!json_object_object_get_ex(reply.json, "devices", &devs) ||
	    json_object_array_length(devs) != 1 || !(d = json_object_array_get_idx(devs, 0)) ||
	    bs_json_u64(d, "length", &tlen) || tlen > reply.data_len ||
	    sscanf(reply.data, "%llu %llu %n", &start, &len, &n) != 2 || start != 0 || !n ||
	    memchr(reply.data, '\n', tlen) != reply.data + tlen - 1) {
		bs_msg_free(&reply);
		cli_error("raid %s: the device's table is not one md segment", name);
		return 1;
	}
	if (len >= size) {
		bs_msg_free(&reply);
		return 0;
	}
	sb_printf(&line, "0 %llu %.*s", (unsigned long long)size, (int)(tlen - 1 - (size_t)n),
		  reply.data + n);
	bs_msg_free(&reply);
	req = json_object_new_object();
	json_object_object_add(req, "name", json_object_new_string(name));
	snprintf(ctx, sizeof(ctx), "raid %s", name);
	r = cli_call(ctx, "dm.reload", req, sb_str(&line), line.len, &reply);
	if (!r) {
		bs_msg_free(&reply);
		req = json_object_new_object();
		json_object_object_add(req, "name", json_object_new_string(name));
		r = cli_call(ctx, "dm.resume", req, NULL, 0, &reply);
		if (!r)
			bs_msg_free(&reply);
	}
	if (!r)
		fprintf(stderr, "blkstack: %s now holds %llu sectors (was %llu)\n", name,
			(unsigned long long)size, len);
	sb_free(&line);
	return r ? 1 : 0;
}

/* Waits for the background work, then gives the device a grown array's size. */
static int wait_and_resize(const char *name)
{
	int r = wait_idle(name);

	return r ? r : resize_table(name);
}

/* After check/repair --wait: what the scrub found (the counters of the last sync action). */
static int report_scrub(const char *name, const char *verb)
{
	struct detail d;
	char mm[32], rep[32];

	if (get_detail(name, &d))
		return 1;
	if (!dval(&d, "mismatch_cnt", mm, sizeof(mm)) ||
	    !dval(&d, "repaired_cnt", rep, sizeof(rep)))
		return 0;
	printf("%s: %s: %s sectors mismatched%s, %s sectors repaired after read errors\n", name,
	       verb, mm, strcmp(verb, "repair") ? "" : " (rewritten)", rep);
	return 0;
}

/* ---- verbs --------------------------------------------------------------------------------- */

static int send_message(const char *name, const char *msg)
{
	struct json_object *req = json_object_new_object();
	struct bs_msg reply;
	char ctx[200];
	int r;

	json_object_object_add(req, "name", json_object_new_string(name));
	json_object_object_add(req, "sector", json_object_new_int64(0));
	snprintf(ctx, sizeof(ctx), "raid %s", name);
	r = cli_call(ctx, "dm.message", req, msg, strlen(msg), &reply);
	if (!r)
		bs_msg_free(&reply);
	return r;
}

static int do_create(struct raid_args *a)
{
	struct json_object *req;
	struct bs_msg reply;
	uint64_t v;
	uint32_t level, ndev, nspare = 0;
	char ctx[200];
	int r;

	if (a->npos < 2) {
		cli_error("raid create: give a name and the member devices");
		return EXIT_USAGE;
	}
	if (!a->level || !a->devices) {
		cli_error("raid create: --level and --raid-devices are required");
		return EXIT_USAGE;
	}
	if (!strncmp(a->level, "raid", 4))
		a->level += 4;
	if (bs_parse_u32(a->level, &level)) {
		cli_error("raid create: invalid level \"%s\"", a->level);
		return EXIT_USAGE;
	}
	if (bs_parse_u32(a->devices, &ndev) || ndev == 0) {
		cli_error("raid create: invalid --raid-devices \"%s\"", a->devices);
		return EXIT_USAGE;
	}
	if (a->spares && bs_parse_u32(a->spares, &nspare)) {
		cli_error("raid create: invalid --spare-devices \"%s\"", a->spares);
		return EXIT_USAGE;
	}
	if ((uint64_t)a->npos - 1 != (uint64_t)ndev + nspare) {
		cli_error("raid create: %u devices and %u spares expected, %d given", ndev, nspare,
			  a->npos - 1);
		return EXIT_USAGE;
	}
	if (a->metadata && strcmp(a->metadata, "1.2") && strcmp(a->metadata, "1")) {
		cli_error("raid create: only --metadata 1.2 can be created");
		return EXIT_USAGE;
	}
	if (a->bitmap && strcmp(a->bitmap, "internal") && strcmp(a->bitmap, "none")) {
		cli_error("raid create: --bitmap must be internal or none");
		return EXIT_USAGE;
	}
	req = json_object_new_object();
	json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
	json_object_object_add(req, "level", json_object_new_int64(level));
	json_object_object_add(req, "raid_devices", json_object_new_int64(ndev));
	if (a->chunk) {
		if (kib_size("chunk size", a->chunk, &v)) {
			json_object_put(req);
			return EXIT_USAGE;
		}
		json_object_object_add(req, "chunk", json_object_new_int64((int64_t)v));
	}
	if (a->size) {
		if (kib_size("size", a->size, &v)) {
			json_object_put(req);
			return EXIT_USAGE;
		}
		json_object_object_add(req, "size", json_object_new_int64((int64_t)v));
	}
	if (a->jsize) {
		if (kib_size("journal size", a->jsize, &v)) {
			json_object_put(req);
			return EXIT_USAGE;
		}
		json_object_object_add(req, "journal_size", json_object_new_int64((int64_t)v));
	}
	if (a->bchunk) {
		if (kib_size("bitmap chunk", a->bchunk, &v)) {
			json_object_put(req);
			return EXIT_USAGE;
		}
		json_object_object_add(req, "bitmap_chunk", json_object_new_int64((int64_t)v));
	}
	if (a->layout)
		json_object_object_add(req, "layout", json_object_new_string(a->layout));
	if (a->bitmap)
		json_object_object_add(req, "bitmap", json_object_new_string(a->bitmap));
	if (a->policy)
		json_object_object_add(req, "policy", json_object_new_string(a->policy));
	if (a->homehost)
		json_object_object_add(req, "homehost", json_object_new_string(a->homehost));
	if (a->assume_clean)
		json_object_object_add(req, "assume_clean", json_object_new_boolean(1));
	if (a->csum)
		json_object_object_add(req, "checksum_log", json_object_new_boolean(1));
	json_object_object_add(req, "devices", path_array(a->pos + 1, (int)ndev));
	json_object_object_add(req, "spares", path_array(a->pos + 1 + ndev, (int)nspare));
	snprintf(ctx, sizeof(ctx), "raid create %s", a->pos[0]);
	r = cli_call(ctx, "raid.create", req, NULL, 0, &reply);
	if (r)
		return r;
	fprintf(stderr, "blkstack: array %s started (UUID %s).\n", a->pos[0],
		bs_json_str(reply.json, "uuid"));
	bs_msg_free(&reply);
	return a->wait ? wait_idle(a->pos[0]) : 0;
}

static int do_assemble(struct raid_args *a)
{
	struct json_object *req = json_object_new_object(), *done;
	struct bs_msg reply;
	int first = 0, r;

	if (!a->scan) {
		if (a->npos < 2) {
			json_object_put(req);
			cli_error("raid assemble: give a name and the member devices (or --scan)");
			return EXIT_USAGE;
		}
		json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
		first = 1;
	} else {
		if (a->npos < 1) {
			json_object_put(req);
			cli_error("raid assemble --scan: give devices or directories to scan");
			return EXIT_USAGE;
		}
		/* "--scan NAME DIR..." when the first word is neither a path nor existing. */
		if (a->npos >= 2 && !strchr(a->pos[0], '/') && access(a->pos[0], F_OK)) {
			json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
			first = 1;
		}
		json_object_object_add(req, "scan", json_object_new_boolean(1));
	}
	if (a->uuid)
		json_object_object_add(req, "uuid", json_object_new_string(a->uuid));
	if (a->run)
		json_object_object_add(req, "run", json_object_new_boolean(1));
	if (a->force)
		json_object_object_add(req, "force", json_object_new_boolean(1));
	json_object_object_add(req, "devices", path_array(a->pos + first, a->npos - first));
	r = cli_call("raid assemble", "raid.assemble", req, NULL, 0, &reply);
	if (r)
		return r;
	if (json_object_object_get_ex(reply.json, "assembled", &done))
		for (size_t i = 0; i < json_object_array_length(done); i++)
			fprintf(stderr, "blkstack: array %s started.\n",
				json_object_get_string(json_object_array_get_idx(done, i)));
	bs_msg_free(&reply);
	return 0;
}

static int do_examine(struct raid_args *a)
{
	int rc = 0;

	if (a->npos < 1) {
		cli_error("raid examine: give at least one device");
		return EXIT_USAGE;
	}
	cli_install_nbd_resolver();
	for (int i = 0; i < a->npos; i++) {
		struct bs_bdev *b;
		struct md_sb sb;
		const char *why;
		struct strbuf out = STRBUF_INIT;
		char path[PATH_MAX];

		abs_path(a->pos[i], path, sizeof(path));
		if (bs_bdev_open(a->pos[i], true, &b, &why)) {
			cli_error("raid examine: %s: %s", a->pos[i], why);
			rc = 1;
			continue;
		}
		if (md_sb_read_any(b, &sb, &why)) {
			cli_error("raid examine: %s: %s", a->pos[i], why);
			bs_bdev_close(b);
			rc = 1;
			continue;
		}
		bs_bdev_close(b);
		if (a->scan)
			md_sb_array_line(&sb, &out);
		else
			md_sb_examine(&sb, a->pos[i], &out);
		fputs(sb_str(&out), stdout);
		sb_free(&out);
	}
	return rc;
}

/* /proc/mdstat's format for every device with an md target. */
static int do_status(void)
{
	struct json_object *req = json_object_new_object(), *devs;
	struct bs_msg reply;
	int r;

	json_object_object_add(req, "target", json_object_new_string("md"));
	r = cli_call("raid status", "dm.info", req, NULL, 0, &reply);
	if (r)
		return r;
	printf("Personalities : [raid0] [raid1] [raid4] [raid5] [raid6] [raid10]\n");
	if (json_object_object_get_ex(reply.json, "devices", &devs))
		for (size_t i = 0; i < json_object_array_length(devs); i++) {
			const char *name = bs_json_str(json_object_array_get_idx(devs, i), "name");
			struct detail d;
			char v[256], lvl[16], st[64];
			unsigned long long nd = 0, size = 0, chunk = 0;
			const char *p;
			unsigned up = 0;
			char health[80] = "";

			if (!name || get_detail(name, &d))
				continue;
			dval(&d, "level", lvl, sizeof(lvl));
			dval(&d, "state", st, sizeof(st));
			printf("%s : %s %s", name, strstr(st, "FAILED") ? "inactive" : "active",
			       lvl);
			for (p = d.text; (p = strstr(p, "device: "));) {
				int role;
				char line[PATH_MAX + 100], *last;
				const char *nl = strchr(p, '\n');
				size_t ll = nl ? (size_t)(nl - p) : strlen(p);

				if (ll >= sizeof(line))
					ll = sizeof(line) - 1;
				memcpy(line, p, ll);
				line[ll] = '\0';
				p += ll;
				last = strrchr(line, ' ');
				if (sscanf(line, "device: %d", &role) != 1 || !last ||
				    !strcmp(last + 1, "-"))
					continue;
				if (role >= 0 && strstr(line, "active sync"))
					printf(" %s[%d]", last + 1, role);
				else if (strstr(line, "faulty"))
					printf(" %s[%d](F)", last + 1, role);
				else
					printf(" %s[%d](S)", last + 1, role);
			}
			printf("\n");
			if (dval(&d, "array_size", v, sizeof(v)))
				size = strtoull(v, NULL, 10);
			if (dval(&d, "raid_devices", v, sizeof(v)))
				nd = strtoull(v, NULL, 10);
			if (dval(&d, "chunk_size", v, sizeof(v)))
				chunk = strtoull(v, NULL, 10);
			printf("      %llu blocks super 1.2", size / 2);
			if (chunk)
				printf(" %lluk chunk", chunk);
			if (dval(&d, "layout", v, sizeof(v)))
				printf(", %s", v);
			for (p = d.text; (p = strstr(p, "device: ")); p++) {
				int role;

				if (sscanf(p, "device: %d", &role) == 1 && role >= 0 &&
				    strlen(health) < nd) {
					const char *nl = strchr(p, '\n');
					bool ok =
					    nl && memmem(p, (size_t)(nl - p), "active sync", 11);

					health[strlen(health) + 1] = '\0';
					health[strlen(health)] = ok ? 'U' : '_';
					up += ok;
				}
			}
			printf(" [%llu/%u] [%s]\n", nd, up, health);
			if (dval(&d, "sync_progress", v, sizeof(v))) {
				unsigned long long a = 0, b = 1;
				char act[32] = "", sp[32] = "0";
				int fill;

				sscanf(v, "%llu/%llu", &a, &b);
				dval(&d, "sync_action", act, sizeof(act));
				dval(&d, "sync_speed_kbs", sp, sizeof(sp));
				fill = b ? (int)(a * 20 / b) : 0;
				printf("      [");
				for (int k = 0; k < 20; k++)
					putchar(k < fill ? '=' : k == fill ? '>' : '.');
				printf(
				    "]  %s = %.1f%% (%llu/%llu) finish=%.1fmin speed=%.0fK/sec\n",
				    act, b ? 100.0 * a / b : 0, a / 2, b / 2,
				    atof(sp) > 0 ? (b - a) / 2.0 / atof(sp) / 60 : 0.0, atof(sp));
			}
			if (dval(&d, "bitmap", v, sizeof(v)))
				printf("      bitmap: %s\n", v);
			printf("\n");
		}
	printf("unused devices: <none>\n");
	bs_msg_free(&reply);
	return 0;
}

int cmd_raid(int argc, char **argv)
{
	struct raid_args a;
	const char *verb;
	char path[PATH_MAX], msg[PATH_MAX + 16];

	if (argc < 2) {
		raid_usage(stderr);
		return EXIT_USAGE;
	}
	verb = argv[1];
	if (!strcmp(verb, "help") || !strcmp(verb, "--help")) {
		raid_usage(stdout);
		return 0;
	}
	if (parse_args(argc - 1, argv + 1, &a)) {
		raid_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(verb, "create"))
		return do_create(&a);
	if (!strcmp(verb, "assemble"))
		return do_assemble(&a);
	if (!strcmp(verb, "examine"))
		return do_examine(&a);
	if (!strcmp(verb, "status"))
		return a.npos ? (cli_error("raid status takes no arguments"), EXIT_USAGE)
			      : do_status();
	if (a.npos < 1) {
		cli_error("raid %s: give the array name", verb);
		return EXIT_USAGE;
	}
	if (!strcmp(verb, "detail"))
		return do_detail(a.pos[0]);
	if (!strcmp(verb, "wait"))
		return wait_and_resize(a.pos[0]);
	if (!strcmp(verb, "stop")) {
		struct json_object *req = json_object_new_object();
		struct bs_msg reply;
		int r;

		json_object_object_add(req, "name", json_object_new_string(a.pos[0]));
		r = cli_call("raid stop", "dm.remove", req, NULL, 0, &reply);
		if (!r) {
			bs_msg_free(&reply);
			fprintf(stderr, "blkstack: stopped %s\n", a.pos[0]);
		}
		return r;
	}
	if (!strcmp(verb, "check") || !strcmp(verb, "repair") || !strcmp(verb, "idle")) {
		int r = send_message(a.pos[0], verb);

		r = r || !a.wait || !strcmp(verb, "idle") ? r : wait_idle(a.pos[0]);
		if (!r && a.wait && strcmp(verb, "idle"))
			r = report_scrub(a.pos[0], verb);
		return r;
	}
	if (!strcmp(verb, "fail") || !strcmp(verb, "remove") || !strcmp(verb, "add")) {
		int r;

		if (a.npos != 2) {
			cli_error("raid %s: give the array and one device", verb);
			return EXIT_USAGE;
		}
		abs_path(a.pos[1], path, sizeof(path));
		{
			/* The daemon splits messages at white space: escape it in the path. */
			size_t o = (size_t)snprintf(msg, sizeof(msg), "%s ", verb);

			for (const char *c = path; *c && o + 2 < sizeof(msg); c++) {
				if (*c == ' ' || *c == '\\' || *c == '\t')
					msg[o++] = '\\';
				msg[o++] = *c;
			}
			msg[o] = '\0';
		}
		r = send_message(a.pos[0], msg);
		if (!r)
			fprintf(stderr, "blkstack: %s %s %s %s\n",
				!strcmp(verb, "fail")	  ? "set"
				: !strcmp(verb, "remove") ? "hot removed"
							  : "added",
				a.pos[1],
				!strcmp(verb, "fail")	  ? "faulty in"
				: !strcmp(verb, "remove") ? "from"
							  : "to",
				a.pos[0]);
		return r || !a.wait || strcmp(verb, "add") ? r : wait_idle(a.pos[0]);
	}
	if (!strcmp(verb, "grow")) {
		uint64_t n;
		int r;

		if (a.npos != 1 || !a.devices || bs_parse_u64(a.devices, &n) || n == 0 ||
		    n > 1000) {
			cli_error("raid grow: give the array and --raid-devices N");
			return EXIT_USAGE;
		}
		snprintf(msg, sizeof(msg), "grow %llu", (unsigned long long)n);
		r = send_message(a.pos[0], msg);
		if (!r)
			fprintf(stderr, "blkstack: growing %s to %llu devices\n", a.pos[0],
				(unsigned long long)n);
		return r || !a.wait ? r : wait_and_resize(a.pos[0]);
	}
	cli_error("raid: unknown command \"%s\" (see blkstack raid help)", verb);
	return EXIT_USAGE;
}
