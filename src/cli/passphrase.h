/*
 * passphrase.h - where passphrases and keys come from, as cryptsetup takes them.
 *
 *   --key-file FILE   the file's bytes, binary, from --keyfile-offset, at most --keyfile-size
 *                     bytes (default: all of it, up to 8 MiB); FILE "-" is standard input
 *   no key file:      a terminal prompts without echo (twice when a new passphrase is set);
 *                     otherwise standard input up to the first newline
 * Never from the command line.  Results live in locked memory.
 */
#ifndef BS_CLI_PASSPHRASE_H
#define BS_CLI_PASSPHRASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PASSPHRASE_MAX 512u
#define KEYFILE_MAX    (8u << 20)

struct key_source {
	const char *key_file; /* NULL: prompt or stdin line */
	uint64_t keyfile_offset;
	uint64_t keyfile_size; /* 0: all */
};

/*
 * Reads one passphrase.  PROMPT is shown on a terminal; with VERIFY it is asked twice.
 * Returns 0 with *out (locked, NUL-terminated) and *len, or prints one error and returns -1.
 */
int get_passphrase(const struct key_source *src, const char *prompt, bool verify, char **out,
		   size_t *len);

#endif
