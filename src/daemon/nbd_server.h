/*
 * nbd_server.h - serves every device over NBD (fixed newstyle, simple and structured replies).
 *
 * Each connection has a fixed set of worker threads.  A worker takes the read lock, reads one
 * request (header and any payload) into its own buffer, releases the lock, runs the request
 * against the engine and sends the reply under the write lock; so requests pipeline and
 * replies go out in completion order.  The export name is the device name.
 */
#ifndef BS_DAEMON_NBD_SERVER_H
#define BS_DAEMON_NBD_SERVER_H

#include <stdbool.h>

#include "util/strbuf.h"

struct bs_nbd_options {
	unsigned threads_per_conn; /* 0 = default */
	int poll_us;		   /* longest polling window in us, 0 = none; < 0 = default */
	const char *tls_cert;	   /* PEM certificate chain: TLS is offered on TCP listeners */
	const char *tls_key;	   /* PEM private key */
	const char *tls_ca;	   /* PEM CA: clients must present a certificate it signed */
	bool tls_required;	   /* refuse plaintext on TCP listeners */
};

/* Applies the options; returns -errno with ERR when the TLS material cannot be loaded. */
int bs_nbd_init(const struct bs_nbd_options *opt, struct strbuf *err);
/* "unix:PATH" or "tcp:HOST:PORT" ("tcp:[V6ADDR]:PORT").  Starts accepting at once. */
int bs_nbd_listen(const char *spec, struct strbuf *err);
/* URIs of the listeners, one per line ("nbd+unix:///?socket=PATH", "nbd://HOST:PORT"). */
void bs_nbd_uris(struct strbuf *out);
/* Unix socket path of the first unix listener, or NULL. */
const char *bs_nbd_unix_path(void);
/* Stops accepting, lets in-flight requests finish, closes every connection. */
void bs_nbd_shutdown(void);

#endif
