/*
 * aes_aesni.h - AES with the CPU's AES instructions (x86-64 AES-NI), its round keys in
 * locked memory.
 *
 * The sector cipher (cipher.h) uses it for the AES work of its ECB and CBC modes, ESSIV and
 * cgd's encblkno IVs when bs_xts_aesni_level() says the CPU has AES-NI, so that no key
 * schedule of a volume key lives in OpenSSL's ordinary heap; OpenSSL does that work
 * otherwise.  xts_aesni.c shares the key schedule.
 */
#ifndef BS_CRYPTO_AES_AESNI_H
#define BS_CRYPTO_AES_AESNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The encryption round keys of KEY (16, 24 or 32 bytes) into ENC and, when DEC is not NULL,
 * the decryption round keys (the equivalent inverse cipher) into DEC.  Returns the number
 * of rounds (10, 12 or 14).  Only with AES-NI.
 */
unsigned bs_aesni_key_schedule(const uint8_t *key, size_t len, uint8_t enc[15][16],
			       uint8_t dec[15][16]);

/*
 * Round keys of one AES key (16, 24 or 32 bytes) in locked memory; NULL when out of memory
 * or without AES-NI.  bs_aes_keys_free() wipes and frees them.
 */
struct bs_aes_keys;
struct bs_aes_keys *bs_aes_keys_new(const uint8_t *key, size_t len);
void bs_aes_keys_free(struct bs_aes_keys *k);

/* AES-ECB over LEN bytes (a multiple of 16) from IN to OUT (the same, or not overlapping). */
void bs_aes_ecb(const struct bs_aes_keys *k, bool encrypt, const uint8_t *in, uint8_t *out,
		size_t len);

/* AES-CBC encryption of LEN bytes (a multiple of 16) from IN to OUT (the same or apart). */
void bs_aes_cbc_encrypt(const struct bs_aes_keys *k, const uint8_t iv[16], const uint8_t *in,
			uint8_t *out, size_t len);

#endif
