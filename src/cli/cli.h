/*
 * cli.h - shared plumbing of the blkstack command-line tool.
 *
 * The CLI is a thin client: it parses arguments, sends one control request per action and
 * prints the reply in the format of the tool it mirrors (dmsetup, ...).  Offline verbs that
 * work on files call libblkstack directly.
 */
#ifndef BS_CLI_CLI_H
#define BS_CLI_CLI_H

#include <json-c/json.h>
#include <stdbool.h>

#include "proto/control.h"

/* Exit codes. */
#define EXIT_USAGE 2

/* Prints "blkstack: <fmt>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Sends REQ (consumed) with "op" and the working directory added, and the optional data
 * blob; waits for the reply.  On a daemon error prints "blkstack: <context>: <error>" and
 * returns 1; on a transport error prints why and returns 1; 0 with *reply filled otherwise.
 */
int cli_call(const char *context, const char *op, struct json_object *req, const void *data,
	     size_t data_len, struct bs_msg *reply);

/* The same without any message on failure (probing whether a daemon is there). */
int cli_call_quiet(const char *op, struct json_object *req, struct bs_msg *reply);

/* Reads all of FILE ("-" = stdin) into locked memory, NUL-terminated. */
char *cli_read_secure_file(const char *file, size_t max, size_t *len);

int cmd_dm(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_raid(int argc, char **argv);
int cmd_integrity(int argc, char **argv);
int cmd_luks(int argc, char **argv);
int cmd_plain(int argc, char **argv);
int cmd_cgd(int argc, char **argv);


#endif
