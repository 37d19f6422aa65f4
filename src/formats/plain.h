/*
 * plain.h - cryptsetup's "plain" dm-crypt mode: no header, no salt; the volume key is the
 * passphrase run through a hash, or the bytes of a key file.
 *
 * Defaults and key processing are those of cryptsetup 2.6 (`cryptsetup --help` on Debian 12:
 * "plain: aes-cbc-essiv:sha256, Key: 256 bits, Password hashing: ripemd160"; cryptsetup(8),
 * "NOTES ON PASSPHRASE PROCESSING FOR PLAIN MODE"), checked against the kernel tables
 * cryptsetup 2.6.1 builds (tests/fixtures/plain/).  A hash spec is "NAME[:LEN]":
 *
 *   NAME       an OpenSSL digest (ripemd160, sha1, sha256, sha512, ...).  The key is
 *              H(P) || H("A" || P) || H("AA" || P) || ... cut to the key size (the iterated,
 *              "A"-prefixed hash cryptsetup inherited from hashalot).
 *   NAME:LEN   only the first LEN bytes are hashed that way; the rest of the key is zero
 *              (LEN must not exceed the key size).
 *   plain      the passphrase itself, cut to the key size or zero-padded.
 *   plain:LEN  the first LEN bytes of the passphrase (which must have as many), zero-padded.
 */
#ifndef BS_FORMATS_PLAIN_H
#define BS_FORMATS_PLAIN_H

#include <stddef.h>
#include <stdint.h>

#define BS_PLAIN_DEFAULT_CIPHER	  "aes-cbc-essiv:sha256"
#define BS_PLAIN_DEFAULT_KEY_BITS 256
#define BS_PLAIN_DEFAULT_HASH	  "ripemd160"
#define BS_PLAIN_HASH_MAX	  64 /* longest hash spec accepted */

/*
 * Checks HASH for a KEY_LEN-byte key without deriving anything.  0, or -EINVAL with *why.
 */
int bs_plain_hash_check(const char *hash, size_t key_len, const char **why);

/*
 * Derives the KEY_LEN-byte volume key from PASS (PASS_LEN bytes, any content) with HASH as
 * described above.  HASH NULL means a key file used directly: its first KEY_LEN bytes, and
 * PASS_LEN must be at least KEY_LEN.  Temporary copies are wiped.  0, or -EINVAL with *why.
 */
int bs_plain_derive_key(const char *hash, const void *pass, size_t pass_len, uint8_t *key,
			size_t key_len, const char **why);

/*
 * cryptsetup's --cipher for plain mode into a dm-crypt specification: "CIPHER-MODE" is used
 * as is, a bare "CIPHER" means "CIPHER-cbc-plain" (cryptsetup's default mode).  The result is
 * checked with the crypt target's parser.  0, or -EINVAL with *why.
 */
int bs_plain_cipher_spec(const char *cipher, char *out, size_t outlen, const char **why);

#endif
