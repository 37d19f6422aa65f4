/*
 * nbd_server.c - the NBD front end (see nbd_server.h and proto/nbd.h).
 */
#include "daemon/nbd_server.h"

#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "engine/device.h"
#include "proto/nbd.h"
#include "util/log.h"
#include "util/scratch.h"

#define DEFAULT_THREADS	  8
#define MAX_THREADS	  64
#define HANDSHAKE_TIMEOUT 30	      /* seconds a client may take to choose an export */
#define SHUTDOWN_GRACE	  5	      /* seconds to deliver the last replies at shutdown */
#define MAX_SKIP	  (64u << 20) /* largest bad WRITE payload we skip rather than drop */

/*
 * Transmission reads through a per-connection buffer: one recv() brings in whatever the
 * client has sent, often several request headers (and the payloads of small writes) at once,
 * instead of one recv() for every header and another for every payload.  What is left of a
 * payload once the buffered bytes are used goes straight into the worker's buffer when it is
 * at least DIRECT_MIN bytes, so large writes are not copied twice.
 */
#define RBUF_SIZE  (64u << 10)
#define DIRECT_MIN (16u << 10)
/*
 * The reader hands the socket to the next worker before it serves what it read, always:
 * keeping it while serving a request that looked quick (to save the wakeup at queue depth
 * 1) held up every request behind one that was not (a `delay` segment, a suspended device,
 * a cache miss on a real disk), and replies are promised out of order.
 */
/*
 * Polling.  On a VM whose idle vCPUs halt, most of a queue depth 1 round trip is the wakeup
 * of the thread blocked in recv().  So the reader first asks the socket without blocking,
 * again and again, for up to a window (poll_ns) before it blocks.  The window adapts per
 * connection: when the client's next bytes came within poll_max_ns of the start of the
 * wait, polling would have caught them and the window doubles (up to poll_max_ns); when they
 * took longer, it halves, down to zero.  A connection whose client pauses stops polling
 * after a few requests; one that keeps the server busy never waits, so never polls.  Data is
 * never delayed by it: every poll is a recv().  TLS connections do not poll.
 */
#define DEFAULT_POLL_NS 50000u
#define MAX_POLL_NS	1000000u
#define POLL_MIN_NS	2000u /* below this the window is closed */

/*
 * A unix socket's send buffer bounds the replies queued to the client; the default (about
 * 208 KiB) holds less than one 256 KiB read reply, so a worker sending one blocked until the
 * client had drained part of it, and the next worker waited for the socket.  A larger
 * buffer lets the workers hand over their replies and go on (sequential reads about 10%
 * faster on a 2-vCPU VM).  The kernel caps it at net.core.wmem_max; TCP keeps its
 * autotuning, which setting SO_SNDBUF would switch off.
 */
static const int unix_sndbuf = 1 << 20;

struct listener {
	int fd;
	bool tcp; /* TLS applies to TCP listeners; unix sockets rely on file permissions */
	char *spec;
	char *uri;
	char *unix_path;
	pthread_t thread;
	struct listener *next;
};

struct conn {
	int fd;
	SSL *ssl;    /* after STARTTLS */
	bool tls_ok; /* TLS may be offered on this connection */
	pthread_mutex_t read_lock;
	pthread_mutex_t write_lock;
	atomic_bool closing;
	atomic_uint workers; /* running workers; the last one frees the connection */
	uint64_t deadline;   /* during the handshake: when it must be over (monotonic ms) */
	struct bs_device *dev;
	struct nbd_export_limits lim;
	bool no_zeroes;
	unsigned nthreads; /* workers started for transmission */
	/* read_lock: the receive buffer, rbuf[rpos..rlen) not yet consumed (NULL in handshake) */
	char *rbuf;
	size_t rpos, rlen;
	unsigned poll_ns; /* read_lock: the current polling window (see Polling above) */
	struct conn *next;
};

static unsigned threads_per_conn = DEFAULT_THREADS;
static unsigned poll_max_ns = DEFAULT_POLL_NS;
static SSL_CTX *tls_ctx; /* NULL: no TLS */
static bool tls_required;
static struct listener *listeners;
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conns_cond = PTHREAD_COND_INITIALIZER;
static struct conn *conns;
static unsigned nconns; /* including connections still in handshake */
static atomic_bool shutting_down;

int bs_nbd_init(const struct bs_nbd_options *opt, struct strbuf *err)
{
	if (opt && opt->threads_per_conn)
		threads_per_conn =
		    opt->threads_per_conn > MAX_THREADS ? MAX_THREADS : opt->threads_per_conn;
	if (opt && opt->poll_us >= 0)
		poll_max_ns = opt->poll_us * 1000u > MAX_POLL_NS ? MAX_POLL_NS
								 : (unsigned)opt->poll_us * 1000u;
	if (!opt || (!opt->tls_cert && !opt->tls_key && !opt->tls_ca && !opt->tls_required))
		return 0;
	if (!opt->tls_cert || !opt->tls_key) {
		sb_puts(err, "nbd: TLS needs both --tls-cert and --tls-key");
		return -EINVAL;
	}
	tls_ctx = SSL_CTX_new(TLS_server_method());
	if (!tls_ctx) {
		sb_puts(err, "nbd: cannot create a TLS context");
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(tls_ctx, opt->tls_cert) != 1) {
		sb_printf(err, "nbd: cannot load the certificate %s", opt->tls_cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(tls_ctx, opt->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(tls_ctx) != 1) {
		sb_printf(
		    err,
		    "nbd: cannot load the private key %s, or it does not match the certificate",
		    opt->tls_key);
		goto fail;
	}
	if (opt->tls_ca) {
		if (SSL_CTX_load_verify_locations(tls_ctx, opt->tls_ca, NULL) != 1) {
			sb_printf(err, "nbd: cannot load the CA %s", opt->tls_ca);
			goto fail;
		}
		SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   NULL);
	}
	tls_required = opt->tls_required;
	return 0;
fail:
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
	return -EINVAL;
}

/* ---- socket helpers ---------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ms(void)
{
	return now_ns() / 1000000u;
}

/*
 * During the handshake every wait on the socket is bounded by what is left of the client's
 * time, so a client that trickles bytes cannot keep the connection (and its thread) beyond
 * HANDSHAKE_TIMEOUT: a timeout per read would restart with every byte.
 */
static int arm_deadline(struct conn *c)
{
	struct timeval tv;
	uint64_t now, left;

	if (!c->deadline)
		return 0;
	now = now_ms();
	if (now >= c->deadline)
		return -ETIMEDOUT;
	left = c->deadline - now;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return 0;
}

/*
 * Socket I/O of a connection: plain, or through its TLS session once STARTTLS succeeded.
 * TLS connections run a single worker (see conn_main), so the session is never used by two
 * threads at once.
 */
static int send_all(struct conn *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n;

		if (arm_deadline(c))
			return -ETIMEDOUT;
		if (c->ssl) {
			int k = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);

			if (k <= 0)
				return -EIO;
			n = k;
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int sendv_all(struct conn *c, struct iovec *iov, int cnt)
{
	if (c->ssl) {
		for (int i = 0; i < cnt; i++) {
			int r = send_all(c, iov[i].iov_base, iov[i].iov_len);

			if (r)
				return r;
		}
		return 0;
	}
	while (cnt) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
		ssize_t n;

		if (arm_deadline(c))
			return -ETIMEDOUT;
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int recv_all(struct conn *c, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n;

		if (arm_deadline(c))
			return -ETIMEDOUT;
		if (c->ssl) {
			int k = SSL_read(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);

			if (k <= 0)
				return -ECONNRESET;
			n = k;
		} else {
			n = recv(c->fd, p, len, MSG_WAITALL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			if (n == 0)
				return -ECONNRESET;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int skip_bytes(struct conn *c, uint64_t len)
{
	char junk[4096];

	while (len) {
		size_t n = len < sizeof(junk) ? (size_t)len : sizeof(junk);
		int r = recv_all(c, junk, n);

		if (r)
			return r;
		len -= n;
	}
	return 0;
}

/*
 * One recv() into the receive buffer that waits for data: polled first, see Polling above.
 * Returns what recv() returns (errno set on -1).  Under read_lock.
 */
static ssize_t plain_wait_recv(struct conn *c)
{
	uint64_t start = 0, now;
	ssize_t n;

	if (poll_max_ns) {
		n = recv(c->fd, c->rbuf, RBUF_SIZE, MSG_DONTWAIT);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return n; /* no wait: the window stays as it is */
		start = now_ns();
		while (c->poll_ns && now_ns() - start < c->poll_ns) {
			n = recv(c->fd, c->rbuf, RBUF_SIZE, MSG_DONTWAIT);
			if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
				return n; /* caught by polling: the window was right */
		}
	}
	do
		n = recv(c->fd, c->rbuf, RBUF_SIZE, 0);
	while (n < 0 && errno == EINTR);
	if (poll_max_ns && n > 0) {
		now = now_ns();
		if (now - start <= poll_max_ns) {
			unsigned grown = c->poll_ns ? c->poll_ns * 2 : poll_max_ns / 4;

			c->poll_ns = grown > poll_max_ns ? poll_max_ns : grown;
		} else {
			c->poll_ns /= 2;
			if (c->poll_ns < POLL_MIN_NS)
				c->poll_ns = 0;
		}
	}
	return n;
}

/*
 * Refills the (empty) receive buffer with what the client has sent, at least one byte,
 * waiting for it.  Returns the byte count or -errno.  Under read_lock.
 */
static ssize_t rbuf_fill(struct conn *c)
{
	ssize_t n;

	c->rpos = c->rlen = 0;
	if (c->ssl) {
		int k = SSL_read(c->ssl, c->rbuf, RBUF_SIZE);

		if (k <= 0)
			return -ECONNRESET;
		n = k;
	} else {
		n = plain_wait_recv(c);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
	}
	c->rlen = (size_t)n;
	return n;
}

/* Reads LEN bytes of the request stream: buffered bytes first.  Under read_lock. */
static int conn_recv(struct conn *c, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		size_t n = c->rlen - c->rpos;

		if (n) {
			if (n > len)
				n = len;
			memcpy(p, c->rbuf + c->rpos, n);
			c->rpos += n;
			p += n;
			len -= n;
		} else if (len >= DIRECT_MIN) {
			return recv_all(c, p, len);
		} else {
			ssize_t r = rbuf_fill(c);

			if (r < 0)
				return (int)r;
		}
	}
	return 0;
}

/* Skips LEN bytes of the request stream (a refused WRITE's payload).  Under read_lock. */
static int conn_skip(struct conn *c, uint64_t len)
{
	size_t n = c->rlen - c->rpos;

	if (n > len)
		n = (size_t)len;
	c->rpos += n;
	return skip_bytes(c, len - n);
}

static void put16(uint8_t *p, uint16_t v)
{
	v = htobe16(v);
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return be16toh(v);
}

/* ---- handshake ----------------------------------------------------------------------------- */

static int opt_reply(struct conn *c, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
	uint8_t h[20];
	struct iovec iov[2] = {{h, sizeof(h)}, {(void *)data, len}};

	put64(h, NBD_REP_MAGIC);
	put32(h + 8, opt);
	put32(h + 12, type);
	put32(h + 16, len);
	return sendv_all(c, iov, len ? 2 : 1);
}

static int opt_error(struct conn *c, uint32_t opt, uint32_t type, const char *msg)
{
	return opt_reply(c, opt, type, msg, (uint32_t)strlen(msg));
}

static uint16_t transmission_flags(const struct conn *c)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		     NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES;

	/*
	 * Multi-conn is true for every device: no connection keeps a private cache, every
	 * completed write is in the engine before its reply, and FLUSH flushes the devices
	 * underneath, which covers writes completed on any connection.
	 */
	f |= NBD_FLAG_CAN_MULTI_CONN;
	if (c->lim.readonly)
		f |= NBD_FLAG_READ_ONLY;
	if (c->lim.structured)
		f |= NBD_FLAG_SEND_DF;
	return f;
}

/* The default export ("") is the only device, when there is exactly one. */
struct pick {
	struct bs_device *dev;
	unsigned n;
};

static void pick_one(struct bs_device *dev, void *arg)
{
	struct pick *p = arg;

	if (p->n++ == 0) {
		bs_device_get(dev);
		p->dev = dev;
	}
}

static struct bs_device *find_export(const char *name)
{
	struct pick p = {0};

	if (*name)
		return bs_device_lookup(name);
	bs_device_for_each(pick_one, &p);
	if (p.n == 1)
		return p.dev;
	bs_device_put(p.dev);
	return NULL;
}

/* Opens the export for transmission; fills the limits. */
static int attach_export(struct conn *c, struct bs_device *dev)
{
	struct bs_device_info info;

	if (bs_device_open(dev))
		return -ENXIO;
	bs_device_get_info(dev, &info);
	c->dev = dev;
	c->lim.size = info.size << 9;
	c->lim.min_block = info.block_size;
	c->lim.max_payload = BS_NBD_MAX_REQUEST;
	c->lim.readonly = info.readonly;
	return 0;
}

static int send_info(struct conn *c, uint32_t opt, struct bs_device *dev, const char *name,
		     const uint16_t *req, uint16_t nreq)
{
	struct bs_device_info info;
	uint8_t buf[16];
	int r;

	bs_device_get_info(dev, &info);
	put16(buf, NBD_INFO_EXPORT);
	put64(buf + 2, info.size << 9);
	{
		struct conn tmp = *c;

		tmp.lim.readonly = info.readonly;
		put16(buf + 10, transmission_flags(&tmp));
	}
	r = opt_reply(c, opt, NBD_REP_INFO, buf, 12);
	if (r)
		return r;
	/* Block sizes are always sent: unaligned requests still work (read-modify-write). */
	put16(buf, NBD_INFO_BLOCK_SIZE);
	put32(buf + 2, info.block_size);
	put32(buf + 6, info.block_size > 4096 ? info.block_size : 4096);
	put32(buf + 10, BS_NBD_MAX_REQUEST);
	r = opt_reply(c, opt, NBD_REP_INFO, buf, 14);
	for (uint16_t i = 0; !r && i < nreq; i++) {
		if (req[i] == NBD_INFO_NAME) {
			size_t n = strlen(name);
			uint8_t *p = malloc(2 + n);

			if (!p)
				return -ENOMEM;
			put16(p, NBD_INFO_NAME);
			memcpy(p + 2, name, n);
			r = opt_reply(c, opt, NBD_REP_INFO, p, (uint32_t)(2 + n));
			free(p);
		} else if (req[i] == NBD_INFO_DESCRIPTION) {
			char d[160];
			uint8_t p[2 + sizeof(d)];
			int n = snprintf(d, sizeof(d), "blkstack device %s", info.name);

			if (n < 0 || (size_t)n >= sizeof(d))
				n = (int)sizeof(d) - 1;
			put16(p, NBD_INFO_DESCRIPTION);
			memcpy(p + 2, d, (size_t)n);
			r = opt_reply(c, opt, NBD_REP_INFO, p, (uint32_t)(2 + n));
		}
	}
	return r;
}

struct list_ctx {
	struct conn *c;
	int r;
};

static void list_one(struct bs_device *dev, void *arg)
{
	struct list_ctx *l = arg;
	const char *name = bs_device_name(dev);
	size_t n = strlen(name);
	uint8_t buf[4 + BS_DEVICE_NAME_MAX];

	if (l->r)
		return;
	put32(buf, (uint32_t)n);
	memcpy(buf + 4, name, n);
	l->r = opt_reply(l->c, NBD_OPT_LIST, NBD_REP_SERVER, buf, (uint32_t)(4 + n));
}

/* Validates the meta-context request layout; we offer no contexts, so the answer is empty. */
static bool meta_context_valid(const uint8_t *d, uint32_t len)
{
	uint32_t nlen, nq, pos;

	if (len < 8)
		return false;
	nlen = get32(d);
	if (nlen > len - 8)
		return false;
	pos = 4 + nlen;
	nq = get32(d + pos);
	pos += 4;
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t q;

		if (len - pos < 4)
			return false;
		q = get32(d + pos);
		pos += 4;
		if (q > len - pos)
			return false;
		pos += q;
	}
	return pos == len;
}

/*
 * Runs the option phase.  Returns 0 once an export is attached (transmission follows),
 * -1 to drop the connection.
 */
static int handshake(struct conn *c)
{
	uint8_t hello[18];
	uint32_t cflags;
	uint8_t *data = NULL;
	int r = -1;

	put64(hello, NBD_MAGIC);
	put64(hello + 8, NBD_OPTS_MAGIC);
	put16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (send_all(c, hello, sizeof(hello)) || recv_all(c, &cflags, 4))
		return -1;
	cflags = be32toh(cflags);
	if (!(cflags & NBD_FLAG_C_FIXED_NEWSTYLE) ||
	    (cflags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))) {
		bs_debug("nbd: client flags %#x refused", cflags);
		return -1;
	}
	c->no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

	data = malloc(BS_NBD_MAX_OPTION + 1);
	if (!data)
		return -1;
	while (!atomic_load(&shutting_down)) {
		uint8_t oh[16];
		uint64_t magic;
		uint32_t opt, len;

		if (recv_all(c, oh, sizeof(oh)))
			break;
		memcpy(&magic, oh, 8);
		opt = get32(oh + 8);
		len = get32(oh + 12);
		if (be64toh(magic) != NBD_OPTS_MAGIC)
			break;
		if (len > BS_NBD_MAX_OPTION) {
			if (len > MAX_SKIP || skip_bytes(c, len) ||
			    opt_error(c, opt, NBD_REP_ERR_TOO_BIG, "option too large"))
				break;
			continue;
		}
		if (len && recv_all(c, data, len))
			break;
		data[len] = '\0';

		/* Without TLS on a listener that requires it, only STARTTLS and ABORT pass. */
		if (tls_required && c->tls_ok && !c->ssl && opt != NBD_OPT_STARTTLS &&
		    opt != NBD_OPT_ABORT) {
			if (opt == NBD_OPT_EXPORT_NAME ||
			    opt_error(c, opt, NBD_REP_ERR_TLS_REQD,
				      "TLS is required on this server"))
				goto out;
			continue;
		}

		switch (opt) {
		case NBD_OPT_EXPORT_NAME: {
			struct bs_device *dev;
			uint8_t reply[10 + 124] = {0};

			if (memchr(data, '\0', len))
				goto out;
			dev = find_export((char *)data);
			if (!dev || attach_export(c, dev)) {
				bs_device_put(dev);
				goto out; /* the protocol allows nothing but a disconnect here */
			}
			put64(reply, c->lim.size);
			put16(reply + 8, transmission_flags(c));
			if (send_all(c, reply, c->no_zeroes ? 10 : sizeof(reply)))
				goto out;
			r = 0;
			goto out;
		}
		case NBD_OPT_ABORT:
			opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
			goto out;
		case NBD_OPT_LIST: {
			struct list_ctx l = {c, 0};

			if (len) {
				if (opt_error(c, opt, NBD_REP_ERR_INVALID, "LIST takes no data"))
					goto out;
				break;
			}
			bs_device_for_each(list_one, &l);
			if (l.r || opt_reply(c, opt, NBD_REP_ACK, NULL, 0))
				goto out;
			break;
		}
		case NBD_OPT_STRUCTURED_REPLY:
			if (len || c->lim.structured) {
				if (opt_error(c, opt, NBD_REP_ERR_INVALID,
					      len ? "STRUCTURED_REPLY takes no data"
						  : "structured replies already negotiated"))
					goto out;
				break;
			}
			c->lim.structured = true;
			if (opt_reply(c, opt, NBD_REP_ACK, NULL, 0))
				goto out;
			break;
		case NBD_OPT_INFO:
		case NBD_OPT_GO: {
			uint32_t nlen;
			uint16_t nreq, reqs[64];
			char name[BS_NBD_MAX_NAME + 1];
			struct bs_device *dev;

			if (len < 6 || (nlen = get32(data)) > len - 6 ||
			    (nreq = get16(data + 4 + nlen), len != 6 + nlen + 2u * nreq) ||
			    memchr(data + 4, '\0', nlen)) {
				if (opt_error(c, opt, NBD_REP_ERR_INVALID, "malformed INFO/GO"))
					goto out;
				break;
			}
			memcpy(name, data + 4, nlen);
			name[nlen] = '\0';
			if (nreq > 64)
				nreq = 64;
			for (uint16_t i = 0; i < nreq; i++)
				reqs[i] = get16(data + 6 + nlen + 2 * i);
			dev = find_export(name);
			if (!dev) {
				if (opt_error(c, opt, NBD_REP_ERR_UNKNOWN,
					      *name ? "no such export"
						    : "no default export: name one of the devices"))
					goto out;
				break;
			}
			if (send_info(c, opt, dev, name, reqs, nreq)) {
				bs_device_put(dev);
				goto out;
			}
			if (opt == NBD_OPT_INFO) {
				bs_device_put(dev);
				if (opt_reply(c, opt, NBD_REP_ACK, NULL, 0))
					goto out;
				break;
			}
			if (attach_export(c, dev)) {
				bs_device_put(dev);
				if (opt_error(c, opt, NBD_REP_ERR_UNKNOWN, "export went away"))
					goto out;
				break;
			}
			if (opt_reply(c, opt, NBD_REP_ACK, NULL, 0))
				goto out;
			r = 0;
			goto out;
		}
		case NBD_OPT_LIST_META_CONTEXT:
		case NBD_OPT_SET_META_CONTEXT:
			if (!c->lim.structured && opt == NBD_OPT_SET_META_CONTEXT) {
				if (opt_error(c, opt, NBD_REP_ERR_INVALID,
					      "structured replies not negotiated"))
					goto out;
				break;
			}
			if (!meta_context_valid(data, len)) {
				if (opt_error(c, opt, NBD_REP_ERR_INVALID,
					      "malformed meta context request"))
					goto out;
				break;
			}
			/* No meta contexts (block status) are offered yet: an empty answer. */
			if (opt_reply(c, opt, NBD_REP_ACK, NULL, 0))
				goto out;
			break;
		case NBD_OPT_STARTTLS:
			if (!tls_ctx || !c->tls_ok) {
				if (opt_error(c, opt, NBD_REP_ERR_POLICY,
					      "TLS is not configured on this listener"))
					goto out;
				break;
			}
			if (len || c->ssl) {
				if (opt_error(c, opt, NBD_REP_ERR_INVALID,
					      len ? "STARTTLS takes no data"
						  : "TLS already started"))
					goto out;
				break;
			}
			if (opt_reply(c, opt, NBD_REP_ACK, NULL, 0))
				goto out;
			c->ssl = SSL_new(tls_ctx);
			if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || arm_deadline(c) ||
			    SSL_accept(c->ssl) != 1) {
				bs_debug("nbd: TLS handshake failed");
				goto out; /* nothing sensible can follow a failed handshake */
			}
			break;
		default:
			if (opt_error(c, opt, NBD_REP_ERR_UNSUP, "option not supported"))
				goto out;
			break;
		}
	}
out:
	free(data);
	return r;
}

/* ---- transmission ---------------------------------------------------------------------------- */

static int send_simple(struct conn *c, uint64_t handle, uint32_t err, void *data, uint32_t len)
{
	uint8_t h[NBD_SIMPLE_REPLY_SIZE];
	struct iovec iov[2] = {{h, sizeof(h)}, {data, len}};
	int r;

	put32(h, NBD_SIMPLE_REPLY_MAGIC);
	put32(h + 4, err);
	put64(h + 8, handle);
	pthread_mutex_lock(&c->write_lock);
	r = sendv_all(c, iov, (!err && len) ? 2 : 1);
	pthread_mutex_unlock(&c->write_lock);
	return r;
}

static int send_read_reply(struct conn *c, const struct nbd_request *req, uint32_t err, void *data)
{
	uint8_t h[NBD_STRUCTURED_REPLY_SIZE + 8];
	struct iovec iov[2];
	int r;

	if (!c->lim.structured)
		return send_simple(c, req->handle, err, data, req->length);

	put32(h, NBD_STRUCTURED_REPLY_MAGIC);
	put16(h + 4, NBD_REPLY_FLAG_DONE);
	put64(h + 8, req->handle);
	iov[0].iov_base = h;
	if (err) {
		put16(h + 6, NBD_REPLY_TYPE_ERROR);
		put32(h + 16, 6);
		put32(h + 20, err);
		put16(h + 24, 0); /* no message */
		iov[0].iov_len = NBD_STRUCTURED_REPLY_SIZE + 6;
		pthread_mutex_lock(&c->write_lock);
		r = sendv_all(c, iov, 1);
		pthread_mutex_unlock(&c->write_lock);
		return r;
	}
	if (req->length == 0) {
		put16(h + 6, NBD_REPLY_TYPE_NONE);
		put32(h + 16, 0);
		iov[0].iov_len = NBD_STRUCTURED_REPLY_SIZE;
		pthread_mutex_lock(&c->write_lock);
		r = sendv_all(c, iov, 1);
		pthread_mutex_unlock(&c->write_lock);
		return r;
	}
	put16(h + 6, NBD_REPLY_TYPE_OFFSET_DATA);
	put32(h + 16, 8 + req->length);
	put64(h + 20, req->offset);
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = data;
	iov[1].iov_len = req->length;
	pthread_mutex_lock(&c->write_lock);
	r = sendv_all(c, iov, 2);
	pthread_mutex_unlock(&c->write_lock);
	return r;
}

static int run_request(struct conn *c, const struct nbd_request *req, void *buf)
{
	struct bs_io io = {.off = req->offset, .len = req->length, .buf = buf};

	if (req->flags & NBD_CMD_FLAG_FUA)
		io.flags |= BS_IO_FUA;
	switch (req->type) {
	case NBD_CMD_READ:
		io.op = BS_OP_READ;
		break;
	case NBD_CMD_WRITE:
		io.op = BS_OP_WRITE;
		break;
	case NBD_CMD_FLUSH:
		io.op = BS_OP_FLUSH;
		break;
	case NBD_CMD_TRIM:
		io.op = BS_OP_DISCARD;
		io.buf = NULL;
		break;
	case NBD_CMD_WRITE_ZEROES:
		io.op = BS_OP_WRITE_ZEROES;
		io.buf = NULL;
		if (req->flags & NBD_CMD_FLAG_NO_HOLE)
			io.flags |= BS_IO_NOUNMAP;
		break;
	default:
		return -EINVAL;
	}
	if (io.len == 0 && io.op != BS_OP_FLUSH)
		return 0;
	return bs_device_submit(c->dev, &io);
}

static void conn_close(struct conn *c)
{
	if (!atomic_exchange(&c->closing, true))
		shutdown(c->fd, SHUT_RD);
}

static void conn_free(struct conn *c)
{
	pthread_mutex_lock(&conns_lock);
	for (struct conn **pp = &conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	nconns--;
	pthread_cond_broadcast(&conns_cond);
	pthread_mutex_unlock(&conns_lock);
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	/*
	 * The client sees the connection end here, before the flush below: it has nothing to
	 * wait for (NBD_CMD_DISC has no reply, and only a FLUSH promises durability).
	 */
	close(c->fd);
	if (c->dev) {
		bs_device_close(c->dev);
		/*
		 * Writes acknowledged without FUA are made durable before we let go of the device
		 * (always: a flush also tells a RAID array about a member that only fails on it).
		 * The device was closed first so that `dm remove` right after the client left does
		 * not find it busy; if it is removed meanwhile, its removal flushed it (and this
		 * flush fails ENXIO).
		 */
		if (!c->lim.readonly) {
			struct bs_io flush = {.op = BS_OP_FLUSH};

			bs_device_submit(c->dev, &flush);
		}
		bs_device_put(c->dev);
	}
	pthread_mutex_destroy(&c->read_lock);
	pthread_mutex_destroy(&c->write_lock);
	free(c->rbuf);
	free(c);
}

/* Makes sure the worker's buffer holds LEN bytes. */
static int ensure_cap(void **buf, size_t *cap, size_t len)
{
	size_t ncap = *cap ? *cap : 65536;
	void *nb;

	if (len <= *cap)
		return 0;
	while (ncap < len)
		ncap *= 2;
	if (posix_memalign(&nb, 4096, ncap))
		return -ENOMEM;
	free(*buf);
	*buf = nb;
	*cap = ncap;
	return 0;
}

/*
 * A worker: the reader (the holder of read_lock) reads one request and its payload, hands
 * the socket to the next worker and serves the request.  A lone worker (TLS) keeps it.
 */
static void *worker(void *arg)
{
	struct conn *c = arg;
	void *buf = NULL;
	size_t cap = 0;
	bool reader = false; /* holds read_lock */

	for (;;) {
		uint8_t hdr[NBD_REQUEST_SIZE];
		struct nbd_request req;
		enum nbd_parse_result pr;
		uint32_t err = 0;
		int r;

		if (!reader)
			pthread_mutex_lock(&c->read_lock);
		reader = true;
		if (atomic_load(&c->closing) || conn_recv(c, hdr, sizeof(hdr)))
			break;
		pr = nbd_parse_request(hdr, &c->lim, &req, &err);
		if (pr == NBD_PARSE_BAD_MAGIC) {
			bs_debug("nbd: bad request magic, dropping the connection");
			break;
		}
		if (req.type == NBD_CMD_WRITE) {
			if (pr == NBD_PARSE_OK && ensure_cap(&buf, &cap, req.length))
				break;
			r = pr == NBD_PARSE_OK	     ? conn_recv(c, buf, req.length)
			    : req.length <= MAX_SKIP ? conn_skip(c, req.length)
						     : -EMSGSIZE;
			if (r)
				break;
		}
		if (req.type == NBD_CMD_DISC && pr == NBD_PARSE_OK) {
			/* Others finish what they are doing; nobody reads any further. */
			atomic_store(&c->closing, true);
			break;
		}
		if (c->nthreads > 1) {
			pthread_mutex_unlock(&c->read_lock);
			reader = false;
		}

		if (pr == NBD_PARSE_OK && req.type == NBD_CMD_READ &&
		    ensure_cap(&buf, &cap, req.length)) {
			err = NBD_ENOMEM;
			pr = NBD_PARSE_ERROR;
		}
		if (pr == NBD_PARSE_OK) {
			r = run_request(c, &req, buf);
			err = nbd_errno_to_wire(r);
			if (r && r != -EROFS)
				bs_debug("nbd: %s: %s at %llu+%u: %s", bs_device_name(c->dev),
					 req.type == NBD_CMD_READ ? "read" : "request",
					 (unsigned long long)req.offset, req.length, strerror(-r));
		}
		r = req.type == NBD_CMD_READ ? send_read_reply(c, &req, err, buf)
					     : send_simple(c, req.handle, err, NULL, 0);
		if (r)
			break;
	}
	if (reader)
		pthread_mutex_unlock(&c->read_lock);
	conn_close(c);
	free(buf);
	bs_scratch_release_thread();
	if (atomic_fetch_sub(&c->workers, 1) == 1)
		conn_free(c);
	return NULL;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct timeval none = {0};
	unsigned started = 1, nthreads;

	c->deadline = now_ms() + HANDSHAKE_TIMEOUT * 1000;
	if (handshake(c)) {
		atomic_store(&c->workers, 1);
		conn_close(c);
		if (atomic_fetch_sub(&c->workers, 1) == 1)
			conn_free(c);
		return NULL;
	}
	c->deadline = 0;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
	/* A TLS session must not be used by two threads at once: one worker serves it. */
	nthreads = c->ssl ? 1 : threads_per_conn;
	c->nthreads = nthreads;
	c->rbuf = malloc(RBUF_SIZE);
	if (!c->rbuf) {
		atomic_store(&c->workers, 1);
		conn_close(c);
		if (atomic_fetch_sub(&c->workers, 1) == 1)
			conn_free(c);
		return NULL;
	}
	atomic_store(&c->workers, nthreads);
	for (unsigned i = 1; i < nthreads; i++) {
		pthread_t th;
		pthread_attr_t a;

		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &a, worker, c) == 0)
			started++;
		pthread_attr_destroy(&a);
	}
	/* Workers that could not start never run: take them off the count. */
	if (started < nthreads)
		atomic_fetch_sub(&c->workers, nthreads - started);
	return worker(c);
}

static void *accept_loop(void *arg)
{
	struct listener *l = arg;

	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		struct conn *c;
		pthread_t th;
		pthread_attr_t a;
		int one = 1;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (atomic_load(&shutting_down))
				break;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				usleep(100000);
				continue;
			}
			break;
		}
		if (atomic_load(&shutting_down)) {
			close(fd);
			break;
		}
		if (l->tcp)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		else
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &unix_sndbuf, sizeof(unix_sndbuf));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->tls_ok = l->tcp;
		pthread_mutex_init(&c->read_lock, NULL);
		pthread_mutex_init(&c->write_lock, NULL);
		pthread_mutex_lock(&conns_lock);
		c->next = conns;
		conns = c;
		nconns++;
		pthread_mutex_unlock(&conns_lock);
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &a, conn_main, c)) {
			atomic_store(&c->workers, 1);
			conn_close(c);
			atomic_store(&c->workers, 0);
			conn_free(c);
		}
		pthread_attr_destroy(&a);
	}
	return NULL;
}

/* ---- listeners ------------------------------------------------------------------------------- */

static int listen_unix(const char *path, int *out, struct strbuf *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		sb_printf(err, "nbd: socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	/* A stale socket from an earlier run is replaced; anything else is left alone. */
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			sb_printf(err, "nbd: %s exists and is not a socket", path);
			return -EEXIST;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		sb_printf(err, "nbd: socket: %s", strerror(errno));
		return -errno;
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		int e = errno;

		umask(old);
		close(fd);
		sb_printf(err, "nbd: cannot listen on %s: %s", path, strerror(e));
		return -e;
	}
	umask(old);
	*out = fd;
	return 0;
}

static int listen_tcp(const char *hostport, int *out, struct strbuf *err)
{
	char host[256];
	const char *port;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res, *ai;
	int fd = -1, e;

	if (hostport[0] == '[') {
		const char *close_b = strchr(hostport, ']');

		if (!close_b || close_b[1] != ':' || (size_t)(close_b - hostport) > sizeof(host)) {
			sb_printf(err, "nbd: bad address \"%s\" (want tcp:[ADDR]:PORT)", hostport);
			return -EINVAL;
		}
		memcpy(host, hostport + 1, (size_t)(close_b - hostport - 1));
		host[close_b - hostport - 1] = '\0';
		port = close_b + 2;
	} else {
		const char *colon = strrchr(hostport, ':');

		if (!colon || (size_t)(colon - hostport) >= sizeof(host)) {
			sb_printf(err, "nbd: bad address \"%s\" (want tcp:HOST:PORT)", hostport);
			return -EINVAL;
		}
		memcpy(host, hostport, (size_t)(colon - hostport));
		host[colon - hostport] = '\0';
		port = colon + 1;
	}
	e = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (e) {
		sb_printf(err, "nbd: cannot resolve %s: %s", hostport, gai_strerror(e));
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int one = 1;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 64))
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		sb_printf(err, "nbd: cannot listen on %s: %s", hostport, strerror(e ? e : EINVAL));
		return -EADDRNOTAVAIL;
	}
	*out = fd;
	return 0;
}

int bs_nbd_listen(const char *spec, struct strbuf *err)
{
	struct listener *l = calloc(1, sizeof(*l));
	struct strbuf uri = STRBUF_INIT;
	int r;

	if (!l)
		return -ENOMEM;
	if (!strncmp(spec, "unix:", 5)) {
		r = listen_unix(spec + 5, &l->fd, err);
		if (!r) {
			l->unix_path = strdup(spec + 5);
			sb_printf(&uri, "nbd+unix:///?socket=%s", spec + 5);
		}
	} else if (!strncmp(spec, "tcp:", 4)) {
		r = listen_tcp(spec + 4, &l->fd, err);
		l->tcp = true;
		if (!r)
			sb_printf(&uri, "%s://%s", tls_ctx ? "nbds" : "nbd", spec + 4);
	} else {
		sb_printf(err, "nbd: listener \"%s\" must be unix:PATH or tcp:HOST:PORT", spec);
		r = -EINVAL;
	}
	if (r) {
		free(l);
		sb_free(&uri);
		return r;
	}
	l->spec = strdup(spec);
	l->uri = strdup(sb_str(&uri));
	sb_free(&uri);
	if (pthread_create(&l->thread, NULL, accept_loop, l)) {
		close(l->fd);
		free(l->spec);
		free(l->uri);
		free(l->unix_path);
		free(l);
		sb_puts(err, "nbd: cannot start a thread");
		return -EAGAIN;
	}
	l->next = listeners;
	listeners = l;
	return 0;
}

void bs_nbd_uris(struct strbuf *out)
{
	for (struct listener *l = listeners; l; l = l->next)
		sb_printf(out, "%s\n", l->uri);
}

const char *bs_nbd_unix_path(void)
{
	for (struct listener *l = listeners; l; l = l->next)
		if (l->unix_path)
			return l->unix_path;
	return NULL;
}

void bs_nbd_shutdown(void)
{
	atomic_store(&shutting_down, true);
	while (listeners) {
		struct listener *l = listeners;

		listeners = l->next;
		shutdown(l->fd, SHUT_RDWR); /* wakes accept() */
		pthread_join(l->thread, NULL);
		close(l->fd);
		if (l->unix_path)
			unlink(l->unix_path);
		free(l->spec);
		free(l->uri);
		free(l->unix_path);
		free(l);
	}
	pthread_mutex_lock(&conns_lock);
	for (struct conn *c = conns; c; c = c->next)
		conn_close(c);
	/*
	 * Requests in flight finish and are answered.  A client that does not read its replies
	 * would hold its workers in send() for ever, and shutdown with them: after a grace
	 * period its connection is shut down for writing too, which fails those sends.  The
	 * requests themselves have completed by then; only the replies are lost.  (A
	 * connection still in the list has not been closed: conn_free unlinks it first.)
	 */
	{
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += SHUTDOWN_GRACE;
		while (nconns &&
		       pthread_cond_timedwait(&conns_cond, &conns_lock, &until) != ETIMEDOUT)
			;
	}
	if (nconns)
		bs_warn("nbd: %u connection(s) still busy after %d s, disconnecting", nconns,
			SHUTDOWN_GRACE);
	for (struct conn *c = conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (nconns)
		pthread_cond_wait(&conns_cond, &conns_lock);
	pthread_mutex_unlock(&conns_lock);
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
}
