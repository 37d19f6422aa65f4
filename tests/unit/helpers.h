/*
 * helpers.h - shared fixtures for the engine, target and protocol unit tests.
 *
 * Temporary image files under /tmp with reproducible contents, whole-file shadows, a small
 * deterministic random generator, table construction that checks refusals precisely, and a
 * count of open file descriptors (a refused table must not leak one).
 */
#ifndef BS_TESTS_UNIT_HELPERS_H
#define BS_TESTS_UNIT_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/table.h"

#define H_PATH_MAX 64

/* A temporary file: its path and, optionally, what the test believes it holds. */
struct h_file {
	char path[H_PATH_MAX];
	size_t size;
	uint8_t *shadow; /* size bytes, or NULL */
};

/* Byte OFF of the reproducible pattern SEED (distinct seeds give distinct contents). */
uint8_t h_pattern_byte(uint32_t seed, uint64_t off);
void h_pattern_fill(void *buf, size_t len, uint32_t seed, uint64_t off);

/*
 * Creates a file of SIZE bytes under /tmp holding pattern SEED (seed 0: zeroes), and a shadow
 * copy of it when WITH_SHADOW.  Asserts on failure.
 */
void h_file_create(struct h_file *f, size_t size, uint32_t seed, bool with_shadow);
/* Unlinks the file and frees the shadow; harmless on a file never created. */
void h_file_remove(struct h_file *f);
/* Reads LEN bytes at OFF straight from the host file. */
void h_file_pread(const struct h_file *f, void *buf, size_t len, uint64_t off);
void h_file_pwrite(const struct h_file *f, const void *buf, size_t len, uint64_t off);
/* Asserts that the file holds exactly its shadow; names the first differing byte. */
void h_file_check_shadow(const struct h_file *f);
/* Rewrites the whole file with pattern SEED and refreshes the shadow. */
void h_file_refill(struct h_file *f, uint32_t seed);

/* xorshift64*: reproducible pseudo-random numbers. */
struct h_rng {
	uint64_t s;
};
void h_rng_seed(struct h_rng *r, uint64_t seed);
uint64_t h_rng_next(struct h_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t h_rng_below(struct h_rng *r, uint64_t n);
void h_rng_fill(struct h_rng *r, void *buf, size_t len);

/* printf into a fresh heap string; free() it. */
char *h_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Number of open file descriptors of this process. */
unsigned h_open_fds(void);

/* Builds a table from TEXT with owner NULL and asserts success (prints the error if not). */
struct bs_table *h_table_ok(const char *text, bool readonly);

/*
 * Asserts that TEXT is refused with ERRNO_NEG, that the error is one line naming LINENO
 * ("line N: ...") and containing NEEDLE, and that no table and no file descriptor is kept.
 * LINENO 0 skips the line check (whole-table errors such as "empty table").
 */
void h_table_fails(const char *text, int errno_neg, unsigned lineno, const char *needle);

/* The BS_STATUS_TABLE / BS_STATUS_INFO text of a table as a heap string; free() it. */
char *h_table_status(struct bs_table *t, enum bs_status_type type);

/* Sector-aligned single requests through the table layer. */
int h_table_rw(struct bs_table *t, enum bs_op op, void *buf, uint64_t len, uint64_t off);

/* Sleeps MS milliseconds (only to give another thread a chance, never to measure). */
void h_sleep_ms(unsigned ms);

#endif
