/*
 * nbd_bdev.c - see nbd_bdev.h.
 */
#include "cli/nbd_bdev.h"

#include <errno.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/bdev.h"

struct nbd_bdev {
	struct bs_bdev b;
	struct nbd_handle *h;
	uint64_t size;
};

static int nbd_errno(void)
{
	int e = nbd_get_errno();

	return e ? -e : -EIO;
}

static int nb_submit(struct bs_bdev *b, struct bs_io *io)
{
	struct nbd_bdev *n = (struct nbd_bdev *)b;
	uint32_t fua = (io->flags & BS_IO_FUA) ? LIBNBD_CMD_FLAG_FUA : 0;
	uint64_t done = 0;
	const uint64_t max = 32u << 20;

	if (io->op == BS_OP_FLUSH)
		return nbd_flush(n->h, 0) ? nbd_errno() : 0;
	while (done < io->len) {
		uint64_t len = io->len - done < max ? io->len - done : max;
		char *buf = io->buf ? (char *)io->buf + done : NULL;
		int r;

		switch (io->op) {
		case BS_OP_READ:
			r = nbd_pread(n->h, buf, len, io->off + done, 0);
			break;
		case BS_OP_WRITE:
			r = nbd_pwrite(n->h, buf, len, io->off + done, fua);
			break;
		case BS_OP_DISCARD:
			r = nbd_trim(n->h, len, io->off + done, fua);
			break;
		case BS_OP_WRITE_ZEROES:
			r = nbd_zero(
			    n->h, len, io->off + done,
			    fua | ((io->flags & BS_IO_NOUNMAP) ? LIBNBD_CMD_FLAG_NO_HOLE : 0));
			break;
		default:
			return -EINVAL;
		}
		if (r)
			return nbd_errno();
		done += len;
	}
	return 0;
}

static uint64_t nb_size(struct bs_bdev *b)
{
	return ((struct nbd_bdev *)b)->size;
}

static void nb_close(struct bs_bdev *b)
{
	struct nbd_bdev *n = (struct nbd_bdev *)b;

	nbd_shutdown(n->h, 0);
	nbd_close(n->h);
}

static const struct bs_bdev_ops nb_ops = {
    .submit = nb_submit,
    .size = nb_size,
    .close = nb_close,
};

/* The daemon's NBD unix socket, asked once per process. */
static char *nbd_socket(void)
{
	static char *path;
	struct bs_msg reply;
	const char *s;

	if (path)
		return path;
	if (cli_call_quiet("daemon.info", json_object_new_object(), &reply))
		return NULL;
	s = bs_json_str(reply.json, "nbd_socket");
	path = s ? strdup(s) : NULL;
	bs_msg_free(&reply);
	return path;
}

static int resolve(const char *name, bool readonly, struct bs_bdev **out)
{
	struct nbd_bdev *n;
	char *sock;
	int64_t size;
	char full[300];

	/* Only when a daemon is reachable and has the device; otherwise a host path. */
	sock = nbd_socket();
	if (!sock)
		return -ENOENT;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->h = nbd_create();
	if (!n->h || nbd_set_export_name(n->h, name) || nbd_connect_unix(n->h, sock)) {
		if (n->h)
			nbd_close(n->h);
		free(n);
		return -ENOENT;
	}
	size = nbd_get_size(n->h);
	if (size < 0 || (!readonly && nbd_is_read_only(n->h) == 1)) {
		nbd_close(n->h);
		free(n);
		return size < 0 ? -EIO : -EROFS;
	}
	snprintf(full, sizeof(full), "/dev/mapper/%s", name);
	n->b.name = strdup(full);
	n->b.ops = &nb_ops;
	n->b.kind = BS_BDEV_OTHER;
	n->b.readonly = readonly;
	n->b.block_size = 512;
	n->size = (uint64_t)size;
	*out = &n->b;
	return 0;
}

void cli_install_nbd_resolver(void)
{
	bs_bdev_set_resolver(resolve);
}
