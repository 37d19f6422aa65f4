/*
 * cmd_dm.c - `blkstack dm ...`: dmsetup's verbs, against the daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/parse.h"
#include "util/secmem.h"
#include "util/strbuf.h"

#define TABLE_MAX (4u << 20)

static void dm_usage(FILE *f)
{
	fputs("usage: blkstack dm <command> [options]\n"
	      "  create NAME [--table LINE | TABLE_FILE] [--uuid UUID] [--readonly] [--notable]\n"
	      "                                  (the table is read from stdin without either)\n"
	      "  reload NAME [--table LINE | TABLE_FILE]\n"
	      "  clear NAME\n"
	      "  suspend [--noflush] NAME\n"
	      "  resume NAME\n"
	      "  remove NAME\n"
	      "  table [NAME] [--target TYPE] [--showkeys] [--inactive]\n"
	      "  status [NAME] [--target TYPE] [--inactive]\n"
	      "  ls [--target TYPE]\n"
	      "  info [NAME]\n"
	      "  deps [NAME]\n"
	      "  message NAME SECTOR MESSAGE...\n"
	      "  wait NAME [EVENT_NR]\n"
	      "  targets\n",
	      f);
}

enum {
	OPT_TABLE = 1000,
	OPT_UUID,
	OPT_NOTABLE,
	OPT_NOFLUSH,
	OPT_TARGET,
	OPT_SHOWKEYS,
	OPT_INACTIVE,
};

static const struct option dm_opts[] = {
    {"table", required_argument, NULL, OPT_TABLE},
    {"uuid", required_argument, NULL, OPT_UUID},
    {"readonly", no_argument, NULL, 'r'},
    {"notable", no_argument, NULL, OPT_NOTABLE},
    {"noflush", no_argument, NULL, OPT_NOFLUSH},
    {"target", required_argument, NULL, OPT_TARGET},
    {"showkeys", no_argument, NULL, OPT_SHOWKEYS},
    {"inactive", no_argument, NULL, OPT_INACTIVE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct dm_args {
	const char *table;
	const char *uuid;
	const char *target;
	bool readonly, notable, noflush, showkeys, inactive;
	int npos;
	char **pos;
};

/* Parses the options every verb shares; each verb then checks what applies to it. */
static int parse_dm_args(int argc, char **argv, struct dm_args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((c = getopt_long(argc, argv, "rh", dm_opts, NULL)) != -1) {
		switch (c) {
		case OPT_TABLE:
			a->table = optarg;
			break;
		case OPT_UUID:
			a->uuid = optarg;
			break;
		case 'r':
			a->readonly = true;
			break;
		case OPT_NOTABLE:
			a->notable = true;
			break;
		case OPT_NOFLUSH:
			a->noflush = true;
			break;
		case OPT_TARGET:
			a->target = optarg;
			break;
		case OPT_SHOWKEYS:
			a->showkeys = true;
			break;
		case OPT_INACTIVE:
			a->inactive = true;
			break;
		case 'h':
			dm_usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	a->npos = argc - optind;
	a->pos = argv + optind;
	return 0;
}

static int want_args(const char *verb, const struct dm_args *a, int min, int max)
{
	if (a->npos < min || a->npos > max) {
		cli_error("dm %s: %s", verb,
			  a->npos < min ? "missing arguments" : "too many arguments");
		return -1;
	}
	return 0;
}

/* The table: --table, a file argument, or stdin.  Locked memory; NULL on error. */
static char *get_table(const char *verb, const struct dm_args *a, int file_index, size_t *len)
{
	if (a->table && a->npos > file_index) {
		cli_error("dm %s: give the table either with --table or as a file, not both", verb);
		return NULL;
	}
	if (a->table) {
		char *t = bs_secure_strdup(a->table);

		*len = strlen(a->table);
		return t;
	}
	if (a->npos > file_index)
		return cli_read_secure_file(a->pos[file_index], TABLE_MAX, len);
	if (isatty(0))
		fprintf(stderr, "Reading the table from standard input (end with Ctrl-D):\n");
	return cli_read_secure_file("-", TABLE_MAX, len);
}

static int do_load(const char *verb, const struct dm_args *a)
{
	struct json_object *req = json_object_new_object();
	struct bs_msg reply;
	char ctx[200];
	char *table = NULL;
	size_t len = 0;
	int r;

	if (want_args(verb, a, 1, 2)) {
		json_object_put(req);
		return EXIT_USAGE;
	}
	snprintf(ctx, sizeof(ctx), "dm %s %s", verb, a->pos[0]);
	if (!a->notable) {
		table = get_table(verb, a, 1, &len);
		if (!table) {
			json_object_put(req);
			return 1;
		}
	}
	json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
	if (a->uuid)
		json_object_object_add(req, "uuid", json_object_new_string(a->uuid));
	if (a->readonly)
		json_object_object_add(req, "readonly", json_object_new_boolean(1));
	if (a->notable)
		json_object_object_add(req, "notable", json_object_new_boolean(1));
	r = cli_call(ctx, !strcmp(verb, "create") ? "dm.create" : "dm.reload", req, table, len,
		     &reply);
	bs_secure_free(table);
	if (!r)
		bs_msg_free(&reply);
	return r;
}

/* Verbs that take exactly one NAME and return nothing. */
static int simple_verb(const char *verb, const char *op, const struct dm_args *a)
{
	struct json_object *req;
	struct bs_msg reply;
	char ctx[200];
	int r;

	if (want_args(verb, a, 1, 1))
		return EXIT_USAGE;
	req = json_object_new_object();
	json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
	if (a->noflush)
		json_object_object_add(req, "noflush", json_object_new_boolean(1));
	snprintf(ctx, sizeof(ctx), "dm %s %s", verb, a->pos[0]);
	r = cli_call(ctx, op, req, NULL, 0, &reply);
	if (!r)
		bs_msg_free(&reply);
	return r;
}

static struct json_object *named_request(const struct dm_args *a)
{
	struct json_object *req = json_object_new_object();

	if (a->npos > 0)
		json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
	return req;
}

static int do_table_status(const char *verb, const struct dm_args *a)
{
	bool table = !strcmp(verb, "table");
	struct json_object *req, *devs;
	struct bs_msg reply;
	size_t off = 0, shown = 0;
	int r;

	if (want_args(verb, a, 0, 1))
		return EXIT_USAGE;
	req = named_request(a);
	if (a->target)
		json_object_object_add(req, "target", json_object_new_string(a->target));
	if (a->showkeys)
		json_object_object_add(req, "showkeys", json_object_new_boolean(1));
	if (a->inactive)
		json_object_object_add(req, "inactive", json_object_new_boolean(1));
	r = cli_call(table ? "dm table" : "dm status", table ? "dm.table" : "dm.status", req, NULL,
		     0, &reply);
	if (r)
		return r;
	if (!json_object_object_get_ex(reply.json, "devices", &devs) ||
	    !json_object_is_type(devs, json_type_array)) {
		bs_msg_free(&reply);
		cli_error("dm %s: malformed reply", verb);
		return 1;
	}
	for (size_t i = 0; i < json_object_array_length(devs); i++) {
		struct json_object *d = json_object_array_get_idx(devs, i);
		const char *name = bs_json_str(d, "name");
		unsigned long long len = 0;
		const char *p;

		bs_json_u64(d, "length", &len);
		if (off + len > reply.data_len || !name) {
			cli_error("dm %s: malformed reply", verb);
			bs_msg_free(&reply);
			return 1;
		}
		p = reply.data + off;
		off += len;
		while (len) {
			const char *nl = memchr(p, '\n', len);
			size_t n = nl ? (size_t)(nl - p) : len;

			if (a->npos == 0)
				printf("%s: ", name);
			fwrite(p, 1, n, stdout);
			putchar('\n');
			shown++;
			n += nl ? 1 : 0;
			p += n;
			len -= n;
		}
	}
	if (!shown && a->npos == 0 && !a->target)
		printf("No devices found\n");
	fflush(stdout);
	bs_msg_free(&reply);
	return 0;
}

static struct json_object *reply_devices(struct bs_msg *reply)
{
	struct json_object *devs;

	if (!json_object_object_get_ex(reply->json, "devices", &devs) ||
	    !json_object_is_type(devs, json_type_array))
		return NULL;
	return devs;
}

static int do_ls(const struct dm_args *a)
{
	struct json_object *req = json_object_new_object(), *devs;
	struct bs_msg reply;
	size_t n;
	int r;

	if (want_args("ls", a, 0, 0)) {
		json_object_put(req);
		return EXIT_USAGE;
	}
	if (a->target)
		json_object_object_add(req, "target", json_object_new_string(a->target));
	r = cli_call("dm ls", "dm.info", req, NULL, 0, &reply);
	if (r)
		return r;
	devs = reply_devices(&reply);
	n = devs ? json_object_array_length(devs) : 0;
	if (!n)
		printf("No devices found\n");
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(devs, i);
		unsigned long long maj = 0, min = 0;

		bs_json_u64(d, "major", &maj);
		bs_json_u64(d, "minor", &min);
		printf("%s\t(%llu:%llu)\n", bs_json_str(d, "name"), maj, min);
	}
	bs_msg_free(&reply);
	return 0;
}

static int do_info(const struct dm_args *a)
{
	struct json_object *devs;
	struct bs_msg reply;
	size_t n;
	int r;

	if (want_args("info", a, 0, 1))
		return EXIT_USAGE;
	r = cli_call("dm info", "dm.info", named_request(a), NULL, 0, &reply);
	if (r)
		return r;
	devs = reply_devices(&reply);
	n = devs ? json_object_array_length(devs) : 0;
	if (!n)
		printf("No devices found\n");
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(devs, i);
		unsigned long long v;
		bool live = bs_json_bool(d, "live_table"),
		     inact = bs_json_bool(d, "inactive_table");
		const char *uuid = bs_json_str(d, "uuid");

		printf("Name:              %s\n", bs_json_str(d, "name"));
		printf("State:             %s%s\n",
		       bs_json_bool(d, "suspended") ? "SUSPENDED" : "ACTIVE",
		       bs_json_bool(d, "readonly") ? " (READ-ONLY)" : "");
		printf("Tables present:    %s\n", live && inact ? "LIVE & INACTIVE"
						  : live	? "LIVE"
						  : inact	? "INACTIVE"
								: "None");
		v = 0;
		bs_json_u64(d, "open_count", &v);
		printf("Open count:        %llu\n", v);
		v = 0;
		bs_json_u64(d, "event_nr", &v);
		printf("Event number:      %llu\n", v);
		{
			unsigned long long maj = 0, min = 0;

			bs_json_u64(d, "major", &maj);
			bs_json_u64(d, "minor", &min);
			printf("Major, minor:      %llu, %llu\n", maj, min);
		}
		v = 0;
		bs_json_u64(d, "targets", &v);
		printf("Number of targets: %llu\n", v);
		if (uuid && *uuid)
			printf("UUID: %s\n", uuid);
		printf("\n");
	}
	bs_msg_free(&reply);
	return 0;
}

static int do_deps(const struct dm_args *a)
{
	struct json_object *devs;
	struct bs_msg reply;
	size_t n;
	int r;

	if (want_args("deps", a, 0, 1))
		return EXIT_USAGE;
	r = cli_call("dm deps", "dm.deps", named_request(a), NULL, 0, &reply);
	if (r)
		return r;
	devs = reply_devices(&reply);
	n = devs ? json_object_array_length(devs) : 0;
	if (!n && a->npos == 0)
		printf("No devices found\n");
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(devs, i), *deps;
		size_t k;

		if (!json_object_object_get_ex(d, "deps", &deps))
			continue;
		k = json_object_array_length(deps);
		if (a->npos == 0)
			printf("%s:", bs_json_str(d, "name"));
		printf(" %zu dependencies\t:", k);
		for (size_t j = 0; j < k; j++)
			printf(" (%s)", json_object_get_string(json_object_array_get_idx(deps, j)));
		printf("\n");
	}
	bs_msg_free(&reply);
	return 0;
}

static int do_message(const struct dm_args *a)
{
	struct json_object *req;
	struct bs_msg reply;
	struct strbuf msg = STRBUF_SECURE_INIT;
	uint64_t sector;
	const char *out;
	char ctx[200];
	int r;

	if (a->npos < 3) {
		cli_error("dm message: usage: message NAME SECTOR MESSAGE...");
		return EXIT_USAGE;
	}
	if (bs_parse_u64(a->pos[1], &sector)) {
		cli_error("dm message: invalid sector \"%s\"", a->pos[1]);
		return EXIT_USAGE;
	}
	for (int i = 2; i < a->npos; i++) {
		/* Re-escape white space so the daemon splits exactly as we were given. */
		if (i > 2)
			sb_putc(&msg, ' ');
		for (const char *p = a->pos[i]; *p; p++) {
			if (*p == ' ' || *p == '\t' || *p == '\\' || *p == '\n')
				sb_putc(&msg, '\\');
			sb_putc(&msg, *p);
		}
	}
	req = json_object_new_object();
	json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
	json_object_object_add(req, "sector", json_object_new_int64((int64_t)sector));
	snprintf(ctx, sizeof(ctx), "dm message %s", a->pos[0]);
	r = cli_call(ctx, "dm.message", req, msg.s, msg.len, &reply);
	sb_free(&msg);
	if (r)
		return r;
	out = bs_json_str(reply.json, "output");
	if (out && *out)
		printf("%s%s", out, out[strlen(out) - 1] == '\n' ? "" : "\n");
	bs_msg_free(&reply);
	return 0;
}

static int do_wait(const struct dm_args *a)
{
	struct json_object *req;
	struct bs_msg reply;
	char ctx[200];
	int r;

	if (want_args("wait", a, 1, 2))
		return EXIT_USAGE;
	req = json_object_new_object();
	json_object_object_add(req, "name", json_object_new_string(a->pos[0]));
	if (a->npos == 2) {
		uint32_t ev;

		if (bs_parse_u32(a->pos[1], &ev)) {
			json_object_put(req);
			cli_error("dm wait: invalid event number \"%s\"", a->pos[1]);
			return EXIT_USAGE;
		}
		json_object_object_add(req, "event_nr", json_object_new_int64(ev));
	}
	snprintf(ctx, sizeof(ctx), "dm wait %s", a->pos[0]);
	r = cli_call(ctx, "dm.wait", req, NULL, 0, &reply);
	if (!r)
		bs_msg_free(&reply);
	return r;
}

static int do_targets(const struct dm_args *a)
{
	struct json_object *list;
	struct bs_msg reply;
	int r;

	if (want_args("targets", a, 0, 0))
		return EXIT_USAGE;
	r = cli_call("dm targets", "dm.targets", json_object_new_object(), NULL, 0, &reply);
	if (r)
		return r;
	if (json_object_object_get_ex(reply.json, "targets", &list))
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			struct json_object *t = json_object_array_get_idx(list, i);

			printf("%-16s %s\n", bs_json_str(t, "name"), bs_json_str(t, "version"));
		}
	bs_msg_free(&reply);
	return 0;
}

int cmd_dm(int argc, char **argv)
{
	struct dm_args a;
	const char *verb;

	if (argc < 2) {
		dm_usage(stderr);
		return EXIT_USAGE;
	}
	verb = argv[1];
	if (!strcmp(verb, "help") || !strcmp(verb, "--help") || !strcmp(verb, "-h")) {
		dm_usage(stdout);
		return 0;
	}
	if (parse_dm_args(argc - 1, argv + 1, &a)) {
		dm_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(verb, "create") || !strcmp(verb, "reload"))
		return do_load(verb, &a);
	if (!strcmp(verb, "clear"))
		return simple_verb(verb, "dm.clear", &a);
	if (!strcmp(verb, "suspend"))
		return simple_verb(verb, "dm.suspend", &a);
	if (!strcmp(verb, "resume"))
		return simple_verb(verb, "dm.resume", &a);
	if (!strcmp(verb, "remove"))
		return simple_verb(verb, "dm.remove", &a);
	if (!strcmp(verb, "table") || !strcmp(verb, "status"))
		return do_table_status(verb, &a);
	if (!strcmp(verb, "ls"))
		return do_ls(&a);
	if (!strcmp(verb, "info"))
		return do_info(&a);
	if (!strcmp(verb, "deps"))
		return do_deps(&a);
	if (!strcmp(verb, "message"))
		return do_message(&a);
	if (!strcmp(verb, "wait"))
		return do_wait(&a);
	if (!strcmp(verb, "targets"))
		return do_targets(&a);
	cli_error("dm: unknown command \"%s\" (see blkstack dm help)", verb);
	return EXIT_USAGE;
}
