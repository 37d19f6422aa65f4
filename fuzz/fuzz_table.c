/*
 * fuzz_table.c - the table parser and every target constructor on hostile text.
 *
 * Device paths in the input resolve against an empty scratch directory created at start-up,
 * plus two small image files named a and b in it, so constructors get past device lookup.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/bdev.h"
#include "engine/table.h"
#include "util/strbuf.h"

static char dir[] = "/tmp/blkstack-fuzz-table.XXXXXX";

static void cleanup(void)
{
	char p[sizeof(dir) + 4];

	snprintf(p, sizeof(p), "%s/a", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/b", dir);
	unlink(p);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!mkdtemp(dir) || chdir(dir))
		abort();
	for (const char *n = "a"; n; n = (n[0] == 'a' ? "b" : NULL)) {
		int fd = open(n, O_RDWR | O_CREAT, 0600);

		if (fd < 0 || ftruncate(fd, 1 << 20))
			abort();
		close(fd);
	}
	bs_bdev_set_thread_cwd(dir);
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct strbuf err = STRBUF_INIT, st = STRBUF_INIT;
	struct bs_table *t;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (!bs_table_create(text, NULL, false, &t, &err)) {
		bs_table_status(t, BS_STATUS_TABLE, 0, NULL, &st);
		bs_table_status(t, BS_STATUS_INFO, 0, NULL, &st);
		bs_table_destroy(t);
	} else if (err.len == 0) {
		abort(); /* every refusal must say why */
	}
	sb_free(&err);
	sb_free(&st);
	free(text);
	return 0;
}
