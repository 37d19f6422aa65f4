/*
 * pbkdf.h - password-based key derivation: PBKDF2-HMAC (OpenSSL) and Argon2i/id (libargon2),
 * with cryptsetup-style benchmarking to pick a cost that takes a given time.
 */
#ifndef BS_CRYPTO_PBKDF_H
#define BS_CRYPTO_PBKDF_H

#include <stddef.h>
#include <stdint.h>

enum bs_pbkdf_type { BS_PBKDF2, BS_ARGON2I, BS_ARGON2ID };

struct bs_pbkdf {
	enum bs_pbkdf_type type;
	char hash[32];	     /* PBKDF2 only: "sha256", "sha1", ... */
	uint32_t iterations; /* PBKDF2 iterations, or Argon2 time cost */
	uint32_t memory_kb;  /* Argon2 only */
	uint32_t parallel;   /* Argon2 only */
};

/* "pbkdf2", "argon2i", "argon2id" -> type; -EINVAL otherwise. */
int bs_pbkdf_type_parse(const char *name, enum bs_pbkdf_type *out);
const char *bs_pbkdf_type_name(enum bs_pbkdf_type t);

/* Derives OUT_LEN bytes; returns 0 or -errno (-EINVAL for bad parameters). */
int bs_pbkdf_derive(const struct bs_pbkdf *p, const void *pass, size_t pass_len, const void *salt,
		    size_t salt_len, void *out, size_t out_len);

/*
 * Sets p->iterations (and for Argon2 possibly lowers p->memory_kb) so that one derivation of
 * KEY_LEN bytes takes about ITER_TIME_MS on this machine, as cryptsetup's benchmark does.
 * Minimums: 1000 PBKDF2 iterations, Argon2 time cost 4 and 32 KiB.
 */
int bs_pbkdf_benchmark(struct bs_pbkdf *p, size_t key_len, uint32_t iter_time_ms);

#endif
