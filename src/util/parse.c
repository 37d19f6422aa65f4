/*
 * parse.c - see parse.h.
 */
#include "util/parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int bs_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned d;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int bs_parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (bs_parse_u64(s, &v) || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int bs_parse_uint_range(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (bs_parse_u64(s, &v) || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int bs_parse_size(const char *s, uint64_t *bytes)
{
	char num[32];
	size_t n = 0;
	uint64_t v, mult = 1;
	const char *suf;

	if (!s)
		return -EINVAL;
	while (s[n] >= '0' && s[n] <= '9')
		n++;
	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = '\0';
	if (bs_parse_u64(num, &v))
		return -EINVAL;
	suf = s + n;
	if (*suf == '\0' || !strcmp(suf, "b") || !strcmp(suf, "B"))
		mult = 1;
	else if (!strcmp(suf, "s") || !strcmp(suf, "S"))
		mult = 512;
	else {
		static const char units[] = "KMGTP";
		const char *u = strchr(units, toupper((unsigned char)suf[0]));

		if (!u || !suf[0])
			return -EINVAL;
		if (suf[1] != '\0' && strcmp(suf + 1, "iB") && strcmp(suf + 1, "B") &&
		    strcmp(suf + 1, "ib"))
			return -EINVAL;
		for (const char *p = units; p <= u; p++)
			mult *= 1024;
	}
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*bytes = v * mult;
	return 0;
}

int bs_split_args(char *line, unsigned *argc, char ***argv)
{
	unsigned n = 0, cap = 8;
	char **v = malloc(cap * sizeof(*v));
	char *in = line, *out;

	if (!v)
		return -ENOMEM;
	for (;;) {
		bool escaped = false;

		while (*in && isspace((unsigned char)*in))
			in++;
		if (!*in)
			break;
		if (n + 2 > cap) {
			char **nv;

			cap *= 2;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = out = in;
		for (; *in; in++) {
			if (escaped) {
				*out++ = *in;
				escaped = false;
			} else if (*in == '\\') {
				escaped = true;
			} else if (isspace((unsigned char)*in)) {
				in++;
				break;
			} else {
				*out++ = *in;
			}
		}
		/* out never passes in, so terminating here cannot clobber unread input. */
		*out = '\0';
	}
	v[n] = NULL;
	*argc = n;
	*argv = v;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int bs_hex_decode(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void bs_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}
