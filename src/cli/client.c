/*
 * client.c - the control connection, from the CLI side.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/secmem.h"

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("blkstack: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int connect_daemon(bool quiet)
{
	const char *path = bs_control_path();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		cli_error("control socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (!quiet)
			cli_error("cannot reach blkstackd at %s: %s (is the daemon running?)", path,
				  strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int call(const char *context, const char *op, struct json_object *req, const void *data,
		size_t data_len, struct bs_msg *reply, bool quiet)
{
	char cwd[PATH_MAX];
	const char *why;
	int fd, r;

	json_object_object_add(req, "op", json_object_new_string(op));
	if (getcwd(cwd, sizeof(cwd)))
		json_object_object_add(req, "cwd", json_object_new_string(cwd));
	fd = connect_daemon(quiet);
	if (fd < 0) {
		json_object_put(req);
		return 1;
	}
	r = bs_ctl_send(fd, req, data, data_len);
	json_object_put(req);
	if (r) {
		close(fd);
		cli_error("%s: sending the request failed: %s", context, strerror(-r));
		return 1;
	}
	r = bs_ctl_recv(fd, reply, &why);
	close(fd);
	if (r) {
		cli_error("%s: no valid reply from blkstackd (%s)", context,
			  r == -EPROTO ? why : strerror(-r));
		return 1;
	}
	if (!bs_json_bool(reply->json, "ok")) {
		const char *e = bs_json_str(reply->json, "error");

		if (!quiet)
			cli_error("%s: %s", context, e ? e : "failed");
		bs_msg_free(reply);
		return 1;
	}
	return 0;
}

int cli_call(const char *context, const char *op, struct json_object *req, const void *data,
	     size_t data_len, struct bs_msg *reply)
{
	return call(context, op, req, data, data_len, reply, false);
}

int cli_call_quiet(const char *op, struct json_object *req, struct bs_msg *reply)
{
	return call(op, op, req, NULL, 0, reply, true);
}

char *cli_read_secure_file(const char *file, size_t max, size_t *len)
{
	int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : 0;
	char *buf;
	size_t n = 0;

	if (fd < 0) {
		cli_error("cannot open %s: %s", file, strerror(errno));
		return NULL;
	}
	buf = bs_secure_alloc(max + 1);
	if (!buf) {
		cli_error("out of memory");
		goto out;
	}
	for (;;) {
		ssize_t k = read(fd, buf + n, max + 1 - n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			cli_error("cannot read %s: %s", file, strerror(errno));
			bs_secure_free(buf);
			buf = NULL;
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > max) {
			cli_error("%s is larger than %zu bytes", strcmp(file, "-") ? file : "input",
				  max);
			bs_secure_free(buf);
			buf = NULL;
			goto out;
		}
	}
	buf[n] = '\0';
	if (len)
		*len = n;
out:
	if (fd > 0)
		close(fd);
	return buf;
}
