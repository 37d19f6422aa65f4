/*
 * control_server.c - accepts control connections and runs their requests.
 *
 * One thread per connection; requests on a connection run in order.  Only root and the
 * daemon's own user may connect (SO_PEERCRED).  A malformed frame or request gets an error
 * reply (or, when the framing itself is broken, a closed connection) and never disturbs the
 * daemon.  Handlers are small: the engine does the work.
 */
#include "daemon/control_server.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/fuse_export.h"
#include "daemon/nbd_server.h"
#include "daemon/ctl.h"
#include "engine/device.h"
#include "proto/control.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/scratch.h"

#define MAX_CONNS 64
/*
 * A connection that sends no request for this long is closed, so that clients which connect
 * and go quiet cannot hold every one of the MAX_CONNS slots for good.  Waiting in the daemon
 * (`dm wait`, `raid check --wait`) is not idleness: the request is being served.
 */
#define IDLE_SECONDS 60

struct ctl_conn {
	int fd;
	struct ctl_conn *next;
};

static int listen_fd = -1;
static char *listen_path;
static pthread_t accept_thread;
static atomic_bool stopping;
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conns_cond = PTHREAD_COND_INITIALIZER;
static struct ctl_conn *conns;
static unsigned nconns;

/* ---- shared helpers (ctl.h) ------------------------------------------------------------ */

const char *ctl_need_name(struct ctl_req *rq)
{
	const char *n = bs_json_str(rq->in, "name");

	if (!n)
		sb_puts(&rq->err, "request has no \"name\"");
	return n;
}

struct bs_device *ctl_need_device(struct ctl_req *rq)
{
	const char *n = ctl_need_name(rq);
	struct bs_device *d;

	if (!n)
		return NULL;
	d = bs_device_lookup(n);
	if (!d)
		sb_printf(&rq->err, "device %s does not exist", n);
	return d;
}

void ctl_add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

void ctl_add_int(struct json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

void ctl_add_bool(struct json_object *o, const char *k, bool v)
{
	json_object_object_add(o, k, json_object_new_boolean(v));
}

bool ctl_peer_gone(void *arg)
{
	struct pollfd p = {.fd = *(int *)arg, .events = POLLRDHUP};

	return atomic_load(&stopping) ||
	       (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)));
}

static int h_daemon_info(struct ctl_req *rq)
{
	struct strbuf sb = STRBUF_INIT;
	const char *unix_path = bs_nbd_unix_path();

	bs_nbd_uris(&sb);
	ctl_add_str(rq->out, "version", BS_VERSION);
	ctl_add_int(rq->out, "pid", getpid());
	ctl_add_str(rq->out, "nbd", sb_str(&sb));
	if (unix_path)
		ctl_add_str(rq->out, "nbd_socket", unix_path);
	sb_free(&sb);
	return 0;
}

static const struct ctl_op daemon_ops[] = {
    {"daemon.info", h_daemon_info},
    {NULL, NULL},
};

/* Every family's table; later families add theirs here. */
static const struct ctl_op *const op_tables[] = {
    daemon_ops,
    bs_ctl_dm_ops,
    bs_ctl_export_ops,
    bs_ctl_raid_ops,
};

static int (*find_handler(const char *op))(struct ctl_req *)
{
	for (size_t t = 0; t < sizeof(op_tables) / sizeof(op_tables[0]); t++)
		for (const struct ctl_op *o = op_tables[t]; o->op; o++)
			if (!strcmp(o->op, op))
				return o->fn;
	return NULL;
}

/* ---- connections ------------------------------------------------------------------------------
 */

static int reply(int fd, int r, struct ctl_req *rq)
{
	struct json_object *o = rq->out ? rq->out : json_object_new_object();
	int s;

	json_object_object_add(o, "ok", json_object_new_boolean(r == 0));
	if (r) {
		ctl_add_str(o, "error", rq->err.len ? sb_str(&rq->err) : strerror(-r));
		ctl_add_int(o, "errno", -r);
	}
	s = bs_ctl_send(fd, o, r ? NULL : rq->out_data.s, r ? 0 : rq->out_data.len);
	json_object_put(o);
	rq->out = NULL;
	return s;
}

static void *conn_thread(void *arg)
{
	struct ctl_conn *c = arg;

	while (!atomic_load(&stopping)) {
		struct bs_msg msg;
		struct ctl_req rq = {.out_data = STRBUF_SECURE_INIT, .fd = c->fd};
		const char *why, *op, *cwd;
		int (*fn)(struct ctl_req *);
		int r = bs_ctl_recv(c->fd, &msg, &why);

		if (r == -EPROTO) {
			/* Tell the client why before hanging up: the stream is out of sync. */
			sb_printf(&rq.err, "malformed request: %s", why);
			reply(c->fd, -EPROTO, &rq);
			sb_free(&rq.err);
			break;
		}
		if (r)
			break;
		rq.in = msg.json;
		rq.data = msg.data;
		rq.data_len = msg.data_len;
		rq.out = json_object_new_object();
		op = bs_json_str(msg.json, "op");
		fn = op ? find_handler(op) : NULL;
		cwd = bs_json_str(msg.json, "cwd");
		if (cwd && cwd[0] != '/')
			cwd = NULL;
		if (!fn) {
			sb_printf(&rq.err, op ? "unknown request \"%s\"" : "request has no \"op\"",
				  op);
			r = -EINVAL;
		} else {
			bs_bdev_set_thread_cwd(cwd);
			r = fn(&rq);
			bs_bdev_set_thread_cwd(NULL);
		}
		r = reply(c->fd, r, &rq);
		sb_free(&rq.out_data);
		sb_free(&rq.err);
		bs_msg_free(&msg);
		if (r)
			break;
	}
	bs_scratch_release_thread();
	pthread_mutex_lock(&conns_lock);
	for (struct ctl_conn **pp = &conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	nconns--;
	pthread_cond_broadcast(&conns_cond);
	pthread_mutex_unlock(&conns_lock);
	close(c->fd);
	free(c);
	return NULL;
}

static void *accept_loop(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		struct ucred cred;
		socklen_t len = sizeof(cred);
		struct ctl_conn *c;
		pthread_t th;
		pthread_attr_t a;

		if (fd < 0) {
			if (atomic_load(&stopping))
				break;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			usleep(100000);
			continue;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
		    (cred.uid != 0 && cred.uid != geteuid())) {
			bs_warn("control: refused a client with uid %d", (int)cred.uid);
			close(fd);
			continue;
		}
		pthread_mutex_lock(&conns_lock);
		if (nconns >= MAX_CONNS || atomic_load(&stopping)) {
			pthread_mutex_unlock(&conns_lock);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			pthread_mutex_unlock(&conns_lock);
			close(fd);
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){.tv_sec = IDLE_SECONDS},
			   sizeof(struct timeval));
		c->fd = fd;
		c->next = conns;
		conns = c;
		nconns++;
		pthread_mutex_unlock(&conns_lock);
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &a, conn_thread, c)) {
			pthread_mutex_lock(&conns_lock);
			conns = c->next;
			nconns--;
			pthread_mutex_unlock(&conns_lock);
			close(fd);
			free(c);
		}
		pthread_attr_destroy(&a);
	}
	return NULL;
}

int bs_control_listen(const char *path, struct strbuf *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		sb_printf(err, "control socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	if (!lstat(path, &st)) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			sb_printf(err, "%s exists and is not a socket", path);
			return -EEXIST;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && !connect(probe, (struct sockaddr *)&sa, sizeof(sa))) {
			close(probe);
			sb_printf(err, "another blkstackd is already running on %s", path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(path); /* stale */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		sb_printf(err, "control socket: %s", strerror(errno));
		return -errno;
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, 0600) || listen(fd, 16)) {
		int e = errno;

		umask(old);
		close(fd);
		sb_printf(err, "cannot listen on %s: %s", path, strerror(e));
		return -e;
	}
	umask(old);
	listen_fd = fd;
	listen_path = strdup(path);
	if (pthread_create(&accept_thread, NULL, accept_loop, NULL)) {
		close(fd);
		listen_fd = -1;
		sb_puts(err, "cannot start the control thread");
		return -EAGAIN;
	}
	return 0;
}

void bs_control_shutdown(void)
{
	if (listen_fd < 0)
		return;
	atomic_store(&stopping, true);
	shutdown(listen_fd, SHUT_RDWR);
	pthread_join(accept_thread, NULL);
	close(listen_fd);
	listen_fd = -1;
	unlink(listen_path);
	free(listen_path);
	pthread_mutex_lock(&conns_lock);
	for (struct ctl_conn *c = conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (nconns)
		pthread_cond_wait(&conns_cond, &conns_lock);
	pthread_mutex_unlock(&conns_lock);
}
