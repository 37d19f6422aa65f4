/*
 * main.c - blkstackd: the daemon that holds the devices and serves them.
 *
 * Start-up: parse options, create the sockets (so that when the parent returns, or when
 * "ready" is printed in the foreground, clients can connect), optionally build the default
 * stack, then wait for SIGTERM/SIGINT.  Shutdown: stop accepting, let in-flight requests
 * finish, detach FUSE exports, flush and tear down every device, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/control_server.h"
#include "daemon/default_stack.h"
#include "daemon/fuse_export.h"
#include "daemon/nbd_server.h"
#include "engine/bdev.h"
#include "engine/device.h"
#include "proto/control.h"
#include "util/log.h"
#include "util/parse.h"

#define MAX_NBD 8

static void usage(FILE *f)
{
	fprintf(f,
		"usage: blkstackd [options]\n"
		"  --control PATH        control socket (default $BLKSTACK_CONTROL or %s)\n"
		"  --nbd unix:PATH       serve NBD on a unix socket (default unix:%s)\n"
		"  --nbd tcp:HOST:PORT   serve NBD on TCP (only when asked); may be repeated\n"
		"  --foreground, -f      stay in the foreground, log to stderr\n"
		"  --pidfile FILE        write the daemon's pid to FILE\n"
		"  --threads N           I/O threads per NBD connection (default 8)\n"
		"  --poll-us N           poll an NBD socket up to N us before sleeping on it\n"
		"                        (adaptive; default 50, 0 = never poll)\n"
		"  --direct              open host files with O_DIRECT where requests are aligned\n"
		"  --tls-cert FILE       offer TLS (NBD STARTTLS) on TCP listeners, with this\n"
		"  --tls-key FILE        certificate chain and private key (PEM)\n"
		"  --tls-ca FILE         require client certificates signed by this CA\n"
		"  --tls-required        refuse NBD clients on TCP that do not start TLS\n"
		"  --default-stack DIR   build the embedded default stack from files in DIR\n"
		"  --verbose, -v         debug logging\n"
		"  --version, --help\n",
		BS_CONTROL_DEFAULT, BS_NBD_DEFAULT);
}

/* Parses a numeric option's value within [LO, HI]; says what was expected when it is not. */
static int int_option(const char *name, const char *arg, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (!bs_parse_uint_range(arg, lo, hi, out))
		return 0;
	fprintf(stderr, "blkstackd: %s: expected %" PRIu64 " to %" PRIu64 ", got \"%s\"\n", name,
		lo, hi, arg);
	return -1;
}

/* mkdir -p for the directory that will hold PATH. */
static void make_parent(const char *path)
{
	char d[PATH_MAX];
	char *slash;

	if (strlen(path) >= sizeof(d))
		return;
	strcpy(d, path);
	slash = strrchr(d, '/');
	if (!slash || slash == d)
		return;
	*slash = '\0';
	for (char *p = d + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(d, 0755);
			*p = '/';
		}
	mkdir(d, 0700);
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -errno;
	fprintf(f, "%d\n", (int)getpid());
	return fclose(f) ? -errno : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"control", required_argument, NULL, 'c'},
	    {"nbd", required_argument, NULL, 'n'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"pidfile", required_argument, NULL, 'p'},
	    {"threads", required_argument, NULL, 't'},
	    {"poll-us", required_argument, NULL, 'P'},
	    {"direct", no_argument, NULL, 'D'},
	    {"default-stack", required_argument, NULL, 's'},
	    {"tls-cert", required_argument, NULL, 'C'},
	    {"tls-key", required_argument, NULL, 'K'},
	    {"tls-ca", required_argument, NULL, 'A'},
	    {"tls-required", no_argument, NULL, 'Q'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *control = bs_control_path(), *pidfile = NULL, *stack_dir = NULL;
	const char *nbd[MAX_NBD];
	unsigned nnbd = 0;
	bool foreground = false, verbose = false;
	struct bs_nbd_options nopt = {.poll_us = -1};
	uint64_t n;
	struct strbuf err = STRBUF_INIT, info = STRBUF_INIT;
	int ready_pipe[2] = {-1, -1};
	sigset_t sigs;
	int c, sig;

	while ((c = getopt_long(argc, argv, "fvh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			control = optarg;
			break;
		case 'n':
			if (nnbd == MAX_NBD) {
				fprintf(stderr, "blkstackd: at most %d --nbd listeners\n", MAX_NBD);
				return 2;
			}
			nbd[nnbd++] = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'p':
			pidfile = optarg;
			break;
		case 't':
			if (int_option("--threads", optarg, 1, 64, &n))
				return 2;
			nopt.threads_per_conn = (unsigned)n;
			break;
		case 'P':
			if (int_option("--poll-us", optarg, 0, 1000, &n))
				return 2;
			nopt.poll_us = (int)n;
			break;
		case 'D':
			bs_bdev_set_direct_io(true);
			break;
		case 's':
			stack_dir = optarg;
			break;
		case 'C':
			nopt.tls_cert = optarg;
			break;
		case 'K':
			nopt.tls_key = optarg;
			break;
		case 'A':
			nopt.tls_ca = optarg;
			break;
		case 'Q':
			nopt.tls_required = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'V':
			printf("blkstackd %s\n", BS_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "blkstackd: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	if (nnbd == 0)
		nbd[nnbd++] = "unix:" BS_NBD_DEFAULT;

	if (!foreground) {
		pid_t pid;

		/* The parent returns once the child is ready, with the child's verdict. */
		if (pipe2(ready_pipe, O_CLOEXEC)) {
			perror("blkstackd: pipe");
			return 1;
		}
		pid = fork();
		if (pid < 0) {
			perror("blkstackd: fork");
			return 1;
		}
		if (pid > 0) {
			char status = 1;

			close(ready_pipe[1]);
			if (read(ready_pipe[0], &status, 1) != 1)
				status = 1;
			return status;
		}
		close(ready_pipe[0]);
		setsid();
	}
	bs_log_init("blkstackd", false, verbose ? BS_LOG_DEBUG : BS_LOG_INFO);

	/* Signals are taken synchronously by this thread; every other thread blocks them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (bs_nbd_init(&nopt, &err))
		goto fail;
	make_parent(control);
	if (bs_control_listen(control, &err))
		goto fail;
	for (unsigned i = 0; i < nnbd; i++) {
		if (!strncmp(nbd[i], "unix:", 5))
			make_parent(nbd[i] + 5);
		if (bs_nbd_listen(nbd[i], &err))
			goto fail_listening;
	}
	if (stack_dir && bs_default_stack_build(stack_dir, &info, &err))
		goto fail_listening;
	if (pidfile && write_pidfile(pidfile)) {
		sb_printf(&err, "cannot write pidfile %s: %s", pidfile, strerror(errno));
		goto fail_listening;
	}

	if (foreground) {
		struct strbuf uris = STRBUF_INIT;

		bs_nbd_uris(&uris);
		printf("blkstackd %s ready\ncontrol socket: %s\nNBD: %s%s", BS_VERSION, control,
		       sb_str(&uris), sb_str(&info));
		fflush(stdout);
		sb_free(&uris);
	} else {
		char ok = 0;
		int fd = open("/dev/null", O_RDWR);

		if (write(ready_pipe[1], &ok, 1) != 1)
			bs_warn("cannot report readiness");
		close(ready_pipe[1]);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
		bs_log_init("blkstackd", true, verbose ? BS_LOG_DEBUG : BS_LOG_INFO);
	}

	do {
		if (sigwait(&sigs, &sig))
			sig = SIGTERM;
	} while (sig == SIGHUP);
	bs_info("%s: shutting down", strsignal(sig));

	bs_control_shutdown();
	/* No one can resume a suspended device now: what it holds must fail, not wait. */
	bs_device_stop_holding();
	bs_nbd_shutdown();
	bs_fuse_export_remove_all();
	if (bs_device_flush_all())
		bs_err("flushing devices at shutdown failed");
	bs_device_remove_all();
	if (pidfile)
		unlink(pidfile);
	sb_free(&err);
	sb_free(&info);
	bs_info("stopped");
	return 0;

fail_listening:
	bs_nbd_shutdown();
	bs_control_shutdown();
	bs_device_remove_all();
fail:
	fprintf(stderr, "blkstackd: %s\n", sb_str(&err));
	if (ready_pipe[1] >= 0) {
		char bad = 1;

		if (write(ready_pipe[1], &bad, 1) != 1)
			bs_warn("cannot report failure");
	}
	sb_free(&err);
	sb_free(&info);
	return 1;
}
