/*
 * fuse_export.h - a device as a regular file, through FUSE.
 *
 * `blkstack export fuse NAME FILE` mounts a one-file FUSE file system over FILE (created
 * empty if missing), whose contents are the device.  The file uses FUSE direct I/O, so reads
 * and writes go straight to the engine and stay coherent with the NBD exports; losetup, mkfs
 * and mount work on it like on any image file.
 */
#ifndef BS_DAEMON_FUSE_EXPORT_H
#define BS_DAEMON_FUSE_EXPORT_H

#include "util/strbuf.h"

int bs_fuse_export_add(const char *devname, const char *file, struct strbuf *err);
/* Refuses (-EBUSY) while something (a loop device, a process) has FILE open. */
int bs_fuse_export_remove(const char *file, struct strbuf *err);
/* "FILE\tDEVICE" lines. */
void bs_fuse_export_list(struct strbuf *out);
/* Daemon shutdown: detaches every export. */
void bs_fuse_export_remove_all(void);

#endif
