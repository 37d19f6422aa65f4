/*
 * main.c - blkstack: the command-line tool.  `blkstack <family> <command> ...`
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
	fputs("usage: blkstack <family> <command> [options]\n"
	      "families:\n"
	      "  dm       device-mapper tables (as dmsetup)\n"
	      "  raid     software RAID with md superblocks (as mdadm)\n"
	      "  export   serve a device as a file through FUSE\n"
	      "  integrity dm-integrity volumes (as integritysetup)\n"
	      "  luks     LUKS1/LUKS2 encrypted volumes (as cryptsetup)\n"
	      "  plain    plain dm-crypt volumes (as cryptsetup open --type plain)\n"
	      "  cgd      NetBSD cgd volumes and cgdconfig parameters files\n"

	      "  daemon   information about the running blkstackd\n"
	      "Run `blkstack <family> help` for the commands of a family.\n"
	      "The daemon is reached at $BLKSTACK_CONTROL or " BS_CONTROL_DEFAULT ".\n",
	      f);
}

static int cmd_daemon(int argc, char **argv)
{
	struct bs_msg reply;
	int r;

	if (argc != 2 || strcmp(argv[1], "info")) {
		fputs("usage: blkstack daemon info\n",
		      argc == 2 && !strcmp(argv[1], "help") ? stdout : stderr);
		return argc == 2 && !strcmp(argv[1], "help") ? 0 : EXIT_USAGE;
	}
	r = cli_call("daemon info", "daemon.info", json_object_new_object(), NULL, 0, &reply);
	if (r)
		return r;
	printf("version: %s\n", bs_json_str(reply.json, "version"));
	printf("pid: %s\n", json_object_get_string(json_object_object_get(reply.json, "pid")));
	printf("control: %s\n", bs_control_path());
	printf("nbd:\n%s", bs_json_str(reply.json, "nbd"));
	bs_msg_free(&reply);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("blkstack %s\n", BS_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "dm"))
		return cmd_dm(argc - 1, argv + 1);
	if (!strcmp(argv[1], "raid"))
		return cmd_raid(argc - 1, argv + 1);
	if (!strcmp(argv[1], "integrity"))
		return cmd_integrity(argc - 1, argv + 1);
	if (!strcmp(argv[1], "luks"))
		return cmd_luks(argc - 1, argv + 1);
	if (!strcmp(argv[1], "plain"))
		return cmd_plain(argc - 1, argv + 1);
	if (!strcmp(argv[1], "cgd"))
		return cmd_cgd(argc - 1, argv + 1);
	if (!strcmp(argv[1], "export"))
		return cmd_export(argc - 1, argv + 1);
	if (!strcmp(argv[1], "daemon"))
		return cmd_daemon(argc - 1, argv + 1);
	cli_error("unknown command family \"%s\" (see blkstack --help)", argv[1]);
	return EXIT_USAGE;
}
