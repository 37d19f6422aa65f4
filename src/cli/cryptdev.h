/*
 * cryptdev.h - what `blkstack plain` and `blkstack cgd` share: sizing the encrypted device,
 * writing it into a crypt table line, and creating and removing the mapping in the daemon.
 *
 * Every function prints one "blkstack: ..." line on failure and returns non-zero.
 */
#ifndef BS_CLI_CRYPTDEV_H
#define BS_CLI_CRYPTDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

/* 0 when blkstackd answers on its control socket; otherwise says so. */
int cryptdev_daemon_check(void);

/* Checks NAME as a device-mapper name. */
int cryptdev_check_name(const char *name);

/* The size of DEV (a host file or block device, or /dev/mapper/NAME) in 512-byte sectors. */
int cryptdev_sectors(const char *dev, uint64_t *sectors);

/*
 * Appends DEV as the daemon must open it: host paths made absolute, white space and
 * backslashes escaped for the table splitter.
 */
int cryptdev_append_path(struct strbuf *table, const char *dev);

/* Appends LEN key bytes as hex (TABLE must be a secure strbuf). */
int cryptdev_append_key(struct strbuf *table, const uint8_t *key, size_t len);

/*
 * Creates device NAME with UUID from TABLE (locked memory, sent in the data blob) through
 * dm.create; CONTEXT prefixes a daemon error.  TABLE is wiped either way.
 */
int cryptdev_create(const char *context, const char *name, const char *uuid, bool readonly,
		    struct strbuf *table);

/*
 * Removes device NAME after checking that its uuid starts with UUID_PREFIX (WHAT names the
 * kind of device in the refusal: "a plain dm-crypt device").
 */
int cryptdev_remove(const char *context, const char *name, const char *uuid_prefix,
		    const char *what);

#endif
