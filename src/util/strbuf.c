/*
 * strbuf.c - see strbuf.h.
 */
#include "util/strbuf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/secmem.h"

static void release(struct strbuf *sb)
{
	bs_wipe(sb->s, sb->cap);
	if (sb->secure)
		bs_secure_free(sb->s);
	else
		free(sb->s);
}

static void sb_grow(struct strbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;
	size_t cap;
	char *n;

	if (need <= sb->cap)
		return;
	cap = sb->cap ? sb->cap : 64;
	while (cap < need)
		cap *= 2;
	/* No realloc: the old block is wiped before it is released. */
	n = sb->secure ? bs_secure_alloc(cap) : malloc(cap);
	if (!n)
		abort();
	if (sb->s) {
		memcpy(n, sb->s, sb->len + 1);
		release(sb);
	} else {
		n[0] = '\0';
	}
	sb->s = n;
	sb->cap = cap;
}

void sb_append(struct strbuf *sb, const char *s, size_t n)
{
	sb_grow(sb, n);
	memcpy(sb->s + sb->len, s, n);
	sb->len += n;
	sb->s[sb->len] = '\0';
}

void sb_puts(struct strbuf *sb, const char *s)
{
	sb_append(sb, s, strlen(s));
}

void sb_putc(struct strbuf *sb, char c)
{
	sb_append(sb, &c, 1);
}

void sb_put_arg(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || isspace((unsigned char)*s))
			sb_putc(sb, '\\');
		sb_putc(sb, *s);
	}
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	sb_grow(sb, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(sb->s + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void sb_reset(struct strbuf *sb)
{
	if (sb->s) {
		bs_wipe(sb->s, sb->len);
		sb->s[0] = '\0';
	}
	sb->len = 0;
}

const char *sb_str(struct strbuf *sb)
{
	return sb->s ? sb->s : "";
}

void sb_free(struct strbuf *sb)
{
	if (sb->s)
		release(sb);
	sb->s = NULL;
	sb->len = sb->cap = 0;
}
