/*
 * helpers.c - see helpers.h.
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/strbuf.h"

uint8_t h_pattern_byte(uint32_t seed, uint64_t off)
{
	uint64_t x;

	if (seed == 0)
		return 0;
	/* A cheap mix of seed and offset: neighbouring bytes and seeds all differ. */
	x = (off + 1) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)seed * 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 32;
	return (uint8_t)x;
}

void h_pattern_fill(void *buf, size_t len, uint32_t seed, uint64_t off)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = h_pattern_byte(seed, off + i);
}

void h_file_create(struct h_file *f, size_t size, uint32_t seed, bool with_shadow)
{
	int fd;

	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "/tmp/blkstack-unit-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	f->size = size;
	if (with_shadow) {
		f->shadow = malloc(size ? size : 1);
		assert_non_null(f->shadow);
	}
	h_file_refill(f, seed);
}

void h_file_refill(struct h_file *f, uint32_t seed)
{
	uint8_t *buf = malloc(f->size ? f->size : 1);

	assert_non_null(buf);
	h_pattern_fill(buf, f->size, seed, 0);
	assert_int_equal(truncate(f->path, 0), 0);
	h_file_pwrite(f, buf, f->size, 0);
	assert_int_equal(truncate(f->path, (off_t)f->size), 0);
	if (f->shadow)
		memcpy(f->shadow, buf, f->size);
	free(buf);
}

void h_file_remove(struct h_file *f)
{
	if (f->path[0])
		unlink(f->path);
	free(f->shadow);
	memset(f, 0, sizeof(*f));
}

void h_file_pread(const struct h_file *f, void *buf, size_t len, uint64_t off)
{
	FILE *fp = fopen(f->path, "rb");

	assert_non_null(fp);
	assert_int_equal(fseeko(fp, (off_t)off, SEEK_SET), 0);
	assert_int_equal(fread(buf, 1, len, fp), len);
	fclose(fp);
}

void h_file_pwrite(const struct h_file *f, const void *buf, size_t len, uint64_t off)
{
	FILE *fp = fopen(f->path, "r+b");

	assert_non_null(fp);
	assert_int_equal(fseeko(fp, (off_t)off, SEEK_SET), 0);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

void h_file_check_shadow(const struct h_file *f)
{
	uint8_t *buf = malloc(f->size ? f->size : 1);

	assert_non_null(buf);
	assert_non_null(f->shadow);
	h_file_pread(f, buf, f->size, 0);
	for (size_t i = 0; i < f->size; i++)
		if (buf[i] != f->shadow[i]) {
			print_error("%s: byte %zu is 0x%02x, expected 0x%02x\n", f->path, i, buf[i],
				    f->shadow[i]);
			free(buf);
			fail();
		}
	free(buf);
}

void h_rng_seed(struct h_rng *r, uint64_t seed)
{
	r->s = seed ? seed : 0x2545f4914f6cdd1dULL;
}

uint64_t h_rng_next(struct h_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

uint64_t h_rng_below(struct h_rng *r, uint64_t n)
{
	return h_rng_next(r) % n;
}

void h_rng_fill(struct h_rng *r, void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(h_rng_next(r) >> 56);
}

char *h_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	return s;
}

unsigned h_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream itself */
}

struct bs_table *h_table_ok(const char *text, bool readonly)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_table *t = NULL;
	int r = bs_table_create(text, NULL, readonly, &t, &err);

	if (r) {
		print_error("table refused (%d): %s\n--- table ---\n%s\n", r, sb_str(&err), text);
		sb_free(&err);
		fail();
	}
	assert_int_equal(err.len, 0);
	assert_non_null(t);
	sb_free(&err);
	return t;
}

void h_table_fails(const char *text, int errno_neg, unsigned lineno, const char *needle)
{
	struct strbuf err = STRBUF_INIT;
	struct bs_table *sentinel = (struct bs_table *)&err, *t = sentinel;
	unsigned fds = h_open_fds();
	int r = bs_table_create(text, NULL, false, &t, &err);
	const char *e = sb_str(&err);

	if (r != errno_neg || !strstr(e, needle)) {
		print_error("table: %s\nexpected %d \"%s\", got %d \"%s\"\n", text, errno_neg,
			    needle, r, e);
		if (!r)
			bs_table_destroy(t);
		sb_free(&err);
		fail();
	}
	/* One line, no newline. */
	assert_null(strchr(e, '\n'));
	if (lineno) {
		char prefix[32];

		snprintf(prefix, sizeof(prefix), "line %u: ", lineno);
		if (strncmp(e, prefix, strlen(prefix))) {
			print_error("error \"%s\" does not start with \"%s\"\n", e, prefix);
			sb_free(&err);
			fail();
		}
	}
	assert_ptr_equal(t, sentinel);
	assert_int_equal(h_open_fds(), fds);
	sb_free(&err);
}

char *h_table_status(struct bs_table *t, enum bs_status_type type)
{
	struct strbuf sb = STRBUF_INIT;
	char *s;

	bs_table_status(t, type, 0, NULL, &sb);
	s = strdup(sb_str(&sb));
	assert_non_null(s);
	sb_free(&sb);
	return s;
}

int h_table_rw(struct bs_table *t, enum bs_op op, void *buf, uint64_t len, uint64_t off)
{
	struct bs_io io = {.op = op, .off = off, .len = len, .buf = buf};

	return bs_table_submit(t, &io);
}

void h_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}
