/*
 * cryptdev.c - see cryptdev.h.
 */
#include "cli/cryptdev.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/nbd_bdev.h"
#include "engine/bdev.h"
#include "engine/device.h"
#include "util/parse.h"
#include "util/secmem.h"

int cryptdev_daemon_check(void)
{
	struct bs_msg reply;

	if (cli_call_quiet("daemon.info", json_object_new_object(), &reply)) {
		cli_error("cannot reach blkstackd at %s (is the daemon running?)",
			  bs_control_path());
		return -1;
	}
	bs_msg_free(&reply);
	return 0;
}

int cryptdev_check_name(const char *name)
{
	const char *why = bs_device_name_invalid(name);

	if (why) {
		cli_error("invalid device name \"%s\": %s", name, why);
		return -1;
	}
	return 0;
}

int cryptdev_sectors(const char *dev, uint64_t *sectors)
{
	struct bs_bdev *b;
	const char *why = "unknown error";
	uint64_t bytes;
	int r;

	cli_install_nbd_resolver();
	r = bs_bdev_open(dev, true, &b, &why);
	if (r) {
		cli_error("cannot open %s: %s", dev, why);
		return -1;
	}
	bytes = bs_bdev_size(b);
	bs_bdev_close(b);
	if (bytes % 512) {
		cli_error("%s: size %llu is not a whole number of 512-byte sectors", dev,
			  (unsigned long long)bytes);
		return -1;
	}
	*sectors = bytes / 512;
	return 0;
}

int cryptdev_append_path(struct strbuf *table, const char *dev)
{
	char cwd[PATH_MAX];

	if (!*dev || strchr(dev, '\n') || strlen(dev) >= PATH_MAX) {
		cli_error("invalid device path");
		return -1;
	}
	if (dev[0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)) || strlen(cwd) + strlen(dev) + 2 > PATH_MAX) {
			cli_error("cannot make %s an absolute path", dev);
			return -1;
		}
		for (const char *p = cwd; *p; p++) {
			if (*p == ' ' || *p == '\t' || *p == '\\')
				sb_putc(table, '\\');
			sb_putc(table, *p);
		}
		sb_putc(table, '/');
	}
	for (const char *p = dev; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\\')
			sb_putc(table, '\\');
		sb_putc(table, *p);
	}
	return 0;
}

int cryptdev_append_key(struct strbuf *table, const uint8_t *key, size_t len)
{
	char *hex = bs_secure_alloc(2 * len + 1);

	if (!hex) {
		cli_error("out of memory");
		return -1;
	}
	bs_hex_encode(key, len, hex);
	sb_puts(table, hex);
	bs_secure_free(hex);
	return 0;
}

int cryptdev_create(const char *context, const char *name, const char *uuid, bool readonly,
		    struct strbuf *table)
{
	struct json_object *req = json_object_new_object();
	struct bs_msg reply;
	int r;

	json_object_object_add(req, "name", json_object_new_string(name));
	json_object_object_add(req, "uuid", json_object_new_string(uuid));
	if (readonly)
		json_object_object_add(req, "readonly", json_object_new_boolean(1));
	r = cli_call(context, "dm.create", req, sb_str(table), table->len, &reply);
	sb_free(table);
	if (r)
		return -1;
	bs_msg_free(&reply);
	return 0;
}

int cryptdev_remove(const char *context, const char *name, const char *uuid_prefix,
		    const char *what)
{
	struct json_object *req = json_object_new_object(), *devs, *d;
	struct bs_msg reply;
	const char *uuid;
	bool ok;
	int r;

	if (cryptdev_daemon_check())
		return -1;
	json_object_object_add(req, "name", json_object_new_string(name));
	if (cli_call_quiet("dm.info", req, &reply)) {
		cli_error("device %s is not active", name);
		return -1;
	}
	ok = json_object_object_get_ex(reply.json, "devices", &devs) &&
	     json_object_array_length(devs) == 1 && (d = json_object_array_get_idx(devs, 0)) &&
	     (uuid = bs_json_str(d, "uuid")) && !strncmp(uuid, uuid_prefix, strlen(uuid_prefix));
	bs_msg_free(&reply);
	if (!ok) {
		cli_error("device %s is not %s; not removing it", name, what);
		return -1;
	}
	req = json_object_new_object();
	json_object_object_add(req, "name", json_object_new_string(name));
	r = cli_call(context, "dm.remove", req, NULL, 0, &reply);
	if (r)
		return -1;
	bs_msg_free(&reply);
	return 0;
}
