/*
 * cmd_export.c - `blkstack export ...`: make a device visible as a file (FUSE).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static void export_usage(FILE *f)
{
	fputs("usage: blkstack export <command>\n"
	      "  fuse NAME FILE     FILE becomes a regular file holding the device (created if\n"
	      "                     missing); losetup, mkfs and mount work on it\n"
	      "  remove FILE        undo it (refused while FILE is in use)\n"
	      "  ls                 list the FUSE exports\n",
	      f);
}

/* The daemon has another working directory: send absolute paths. */
static int absolute(const char *path, char *out, size_t outlen)
{
	char cwd[PATH_MAX];
	int n;

	if (path[0] == '/')
		n = snprintf(out, outlen, "%s", path);
	else if (getcwd(cwd, sizeof(cwd)))
		n = snprintf(out, outlen, "%s/%s", cwd, path);
	else
		return -1;
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int cmd_export(int argc, char **argv)
{
	struct json_object *req;
	struct bs_msg reply;
	char path[PATH_MAX];
	int r;

	if (argc < 2) {
		export_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help")) {
		export_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "fuse")) {
		if (argc != 4) {
			export_usage(stderr);
			return EXIT_USAGE;
		}
		if (absolute(argv[3], path, sizeof(path))) {
			cli_error("export fuse: path too long: %s", argv[3]);
			return 1;
		}
		req = json_object_new_object();
		json_object_object_add(req, "name", json_object_new_string(argv[2]));
		json_object_object_add(req, "file", json_object_new_string(path));
		r = cli_call("export fuse", "export.fuse", req, NULL, 0, &reply);
	} else if (!strcmp(argv[1], "remove")) {
		if (argc != 3) {
			export_usage(stderr);
			return EXIT_USAGE;
		}
		if (absolute(argv[2], path, sizeof(path))) {
			cli_error("export remove: path too long: %s", argv[2]);
			return 1;
		}
		req = json_object_new_object();
		json_object_object_add(req, "file", json_object_new_string(path));
		r = cli_call("export remove", "export.remove", req, NULL, 0, &reply);
	} else if (!strcmp(argv[1], "ls")) {
		if (argc != 2) {
			export_usage(stderr);
			return EXIT_USAGE;
		}
		r = cli_call("export ls", "export.list", json_object_new_object(), NULL, 0, &reply);
		if (!r) {
			const char *s = bs_json_str(reply.json, "fuse");

			fputs(s ? s : "", stdout);
		}
	} else {
		cli_error("export: unknown command \"%s\"", argv[1]);
		return EXIT_USAGE;
	}
	if (!r)
		bs_msg_free(&reply);
	return r;
}
