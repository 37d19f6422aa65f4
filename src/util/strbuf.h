/*
 * strbuf.h - a growable string used for status lines, tables and messages.
 *
 * Allocation failure aborts: these strings are small and an out-of-memory daemon cannot do
 * anything sensible with half a status line.
 */
#ifndef BS_UTIL_STRBUF_H
#define BS_UTIL_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *s;
	size_t len;
	size_t cap;
	bool secure; /* keep the text in locked memory (it may carry keys) */
};

#define STRBUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0, false                                                                  \
	}
#define STRBUF_SECURE_INIT                                                                         \
	{                                                                                          \
		NULL, 0, 0, true                                                                   \
	}

void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_append(struct strbuf *sb, const char *s, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_putc(struct strbuf *sb, char c);
/*
 * Appends S as one table argument: white space and backslashes are escaped with a backslash,
 * so that the table parser (bs_split_args) reads S back unchanged.
 */
void sb_put_arg(struct strbuf *sb, const char *s);
void sb_reset(struct strbuf *sb);
/* Returns the string (never NULL), owned by the buffer. */
const char *sb_str(struct strbuf *sb);
/* Wipes the contents before freeing: status strings may carry keys with --showkeys. */
void sb_free(struct strbuf *sb);

#endif
