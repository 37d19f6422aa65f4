/*
 * scratch.h - per-thread bounce buffers for the I/O path.
 *
 * Targets that need a temporary buffer for one request (encryption output, read-modify-write
 * of a partial block, parity) take it from here instead of allocating per I/O.  Buffers form a
 * small per-thread stack because a request may pass through several stacked devices on the
 * same thread, each taking its own buffer.  A buffer grows to the largest size asked of its
 * slot and is then reused; all are 4096-byte aligned so they also suit O_DIRECT.
 */
#ifndef BS_UTIL_SCRATCH_H
#define BS_UTIL_SCRATCH_H

#include <stddef.h>

/* Returns NULL when out of memory or when nesting exceeds the stack depth. */
void *bs_scratch_get(size_t size);
/* Releases the most recent buffer taken by this thread. */
void bs_scratch_put(void *buf);
/* Frees this thread's buffers (called when an I/O thread exits). */
void bs_scratch_release_thread(void);

#endif
