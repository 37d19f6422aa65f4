/*
 * mem_bdev.h - a block device held in memory, for tests and fuzz targets.
 *
 * The device is SIZE bytes of zeroes (or a copy of given bytes); it behaves like a host file
 * of that size: I/O beyond the end fails with -EIO, writes to a read-only one with -EROFS.
 * Close it with bs_bdev_close().
 */
#ifndef BS_ENGINE_MEM_BDEV_H
#define BS_ENGINE_MEM_BDEV_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/bdev.h"

/* A zeroed device of SIZE bytes named NAME; 0 or -errno. */
int bs_mem_bdev_create(const char *name, uint64_t size, bool readonly, struct bs_bdev **out);
/* The device's bytes (bs_bdev_size() of them), for tests to set up or inspect. */
uint8_t *bs_mem_bdev_data(struct bs_bdev *b);

#endif
