/*
 * xts_aesni.h - AES-XTS in one pass over the data with the CPU's AES instructions (x86-64:
 * AES-NI, and VAES with AVX2 where there).
 *
 * The sector cipher (cipher.h) uses it for its XTS modes when the CPU allows, and its
 * portable path (OpenSSL's AES-ECB, the tweaks applied around it) otherwise; both give the
 * same answers (IEEE 1619, two equal key halves accepted as Linux does outside FIPS mode).
 * Elsewhere than x86-64 with GCC or Clang, bs_xts_aesni_level() says BS_ACCEL_NONE and
 * nothing else here is to be called.
 */
#ifndef BS_CRYPTO_XTS_AESNI_H
#define BS_CRYPTO_XTS_AESNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/cipher.h"

/* What the CPU offers, at most MAX. */
enum bs_cipher_accel bs_xts_aesni_level(enum bs_cipher_accel max);

/*
 * Round keys of an XTS key (the data key, then the tweak key, each of 16, 24 or 32 bytes)
 * for LEVEL (BS_ACCEL_AESNI or BS_ACCEL_VAES), in locked memory; NULL when out of memory.
 * bs_xts_keys_free() wipes and frees them.
 */
struct bs_xts_keys;
struct bs_xts_keys *bs_xts_keys_new(const uint8_t *key, size_t len, enum bs_cipher_accel level);
void bs_xts_keys_free(struct bs_xts_keys *k);

/*
 * The IV of sector I of a request (before its encryption with the tweak key): written to
 * IV, 0 or -errno.
 */
typedef int (*bs_xts_iv_fn)(void *arg, size_t i, uint8_t iv[16]);

/*
 * Encrypts or decrypts NSEC sectors of SS bytes (a power of two from 512 to 4096) from IN to
 * OUT (the same buffer, or not overlapping).  Returns 0, or what IV returned.
 */
int bs_xts_aesni_crypt(const struct bs_xts_keys *k, bool encrypt, const uint8_t *in, uint8_t *out,
		       unsigned ss, size_t nsec, bs_xts_iv_fn iv, void *arg);

#endif
