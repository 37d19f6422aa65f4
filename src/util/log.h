/*
 * log.h - diagnostics for the daemon and the command-line tools.
 *
 * Messages go to stderr (tools, foreground daemon) or syslog (background daemon).  Nothing
 * secret may ever be passed here: keys and passphrases never leave locked memory.
 */
#ifndef BS_UTIL_LOG_H
#define BS_UTIL_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum bs_log_level { BS_LOG_ERR = 3, BS_LOG_WARN = 4, BS_LOG_INFO = 6, BS_LOG_DEBUG = 7 };

void bs_log_init(const char *ident, bool use_syslog, enum bs_log_level max_level);
void bs_log(enum bs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bs_vlog(enum bs_log_level level, const char *fmt, va_list ap);

#define bs_err(...)   bs_log(BS_LOG_ERR, __VA_ARGS__)
#define bs_warn(...)  bs_log(BS_LOG_WARN, __VA_ARGS__)
#define bs_info(...)  bs_log(BS_LOG_INFO, __VA_ARGS__)
#define bs_debug(...) bs_log(BS_LOG_DEBUG, __VA_ARGS__)

#endif
