/*
 * parse.h - strict parsers for numbers and argument lists.
 *
 * Every external input (table arguments, command-line options) goes through these: no sign,
 * no trailing garbage, no silent overflow.  They return 0 on success and -EINVAL otherwise.
 */
#ifndef BS_UTIL_PARSE_H
#define BS_UTIL_PARSE_H

#include <stddef.h>
#include <stdint.h>

int bs_parse_u64(const char *s, uint64_t *out);
int bs_parse_u32(const char *s, uint32_t *out);
/* A decimal in [min, max]. */
int bs_parse_uint_range(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/*
 * A size with an optional binary suffix: "4096", "64K", "64k", "64KiB", "1M", "2G", "1T";
 * "s" suffix means 512-byte sectors.  Returns bytes.
 */
int bs_parse_size(const char *s, uint64_t *bytes);

/*
 * Splits a table line into arguments in place, as the kernel's dm_split_args does: runs of
 * white space separate arguments, and a backslash makes the next character literal.  The
 * returned array (malloc'd, NULL-terminated) points into line.  -ENOMEM or 0.
 */
int bs_split_args(char *line, unsigned *argc, char ***argv);

/* Hex helpers for keys: returns -EINVAL unless s is exactly 2*n hex digits. */
int bs_hex_decode(const char *s, uint8_t *out, size_t n);
void bs_hex_encode(const uint8_t *in, size_t n, char *out /* 2n+1 */);

#endif
