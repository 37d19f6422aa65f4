/*
 * log.c - see log.h.
 */
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static const char *log_ident = "blkstack";
static bool log_syslog;
static enum bs_log_level log_max = BS_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void bs_log_init(const char *ident, bool use_syslog, enum bs_log_level max_level)
{
	log_ident = ident;
	log_syslog = use_syslog;
	log_max = max_level;
	if (use_syslog)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

void bs_vlog(enum bs_log_level level, const char *fmt, va_list ap)
{
	if (level > log_max)
		return;
	if (log_syslog) {
		vsyslog((int)level, fmt, ap);
		return;
	}
	/* One locked write per message keeps lines from different threads whole. */
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s: ", log_ident);
	if (level == BS_LOG_WARN)
		fputs("warning: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_lock);
}

void bs_log(enum bs_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	bs_vlog(level, fmt, ap);
	va_end(ap);
}
