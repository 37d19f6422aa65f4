/*
 * aead.h - dm-crypt's authenticated encryption (AEAD) of sectors, for the crypt target's
 * integrity:<bytes>:aead mode on top of an integrity target that stores the tags.
 *
 * Specifications, as dm-crypt takes them (and cryptsetup 2.6 writes them for LUKS2):
 *   capi:authenc(hmac(<hash>),<chain>(aes))-<ivmode>   hash sha1, sha256 or sha512; chain xts
 *                                   or cbc; ivmode plain, plain64, plain64be, null or random
 *   capi:gcm(aes)-random, aes-gcm-random                 AES-GCM with 96-bit random nonces
 *
 * Each sector (of the sector size: 512..4096 bytes) is one AEAD message, as dm-crypt's
 * crypt_convert_block_aead() builds it:
 *   associated data  le64(sector) || IV   sector: the 512-byte sector number relative to the
 *                    target (without iv_offset), IV: iv_size bytes (16 for authenc, 12 for gcm)
 *   IV               random (drawn for every write, kept in the tag), or the IV mode's IV of
 *                    sector + iv_offset (counted in sector_size units with iv_large_sectors)
 *   tag on disk      the authentication tag (tag_size - the stored IV bytes), then the IV
 *                    when it is random: [auth tag][IV]
 * authenc encrypts with the chain mode and the IV, then the tag is HMAC(mac key, associated
 * data || ciphertext) truncated to the auth tag size; the key is the cipher key followed by
 * the HMAC key (the hash's digest size).  gcm is AES-GCM with the nonce as IV and the
 * associated data above; the key is the AES key.
 *
 * A sector whose tag does not match is never decrypted into the output: it is zeroed there
 * and the call fails with -EILSEQ.  Keys are kept in locked memory; OpenSSL contexts are
 * pooled so that the hot path neither allocates nor re-keys.
 */
#ifndef BS_CRYPTO_AEAD_H
#define BS_CRYPTO_AEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bs_aead_kind { BS_AEAD_AUTHENC, BS_AEAD_GCM };

struct bs_aead_spec {
	enum bs_aead_kind kind;
	char hash[16];	 /* authenc: the HMAC hash ("sha256") */
	char chain[8];	 /* "xts", "cbc" (authenc) or "gcm" */
	char ivname[16]; /* "plain64", "random", ... */
	bool random_iv;
	unsigned iv_size;      /* bytes: 16 (authenc), 12 (gcm) */
	unsigned mac_key_size; /* bytes at the end of the key: the HMAC key (authenc), else 0 */
};

/* True when SPEC names an AEAD cipher (so that it needs integrity:N:aead). */
bool bs_aead_spec_is_aead(const char *spec);
/* Parses SPEC; -EINVAL with *why for what is not supported. */
int bs_aead_spec_parse(const char *spec, struct bs_aead_spec *s, const char **why);
/* True when KEY_LEN bytes is a valid key for S (cipher key + HMAC key). */
bool bs_aead_key_size_valid(const struct bs_aead_spec *s, size_t key_len);
/*
 * Checks an on-disk tag size for S: the auth tag (TAG_SIZE minus the stored IV) must be
 * 1..digest size for authenc, 4, 8 or 12..16 for gcm.  -EINVAL with *why.
 */
int bs_aead_tag_size_check(const struct bs_aead_spec *s, unsigned tag_size, const char **why);

struct bs_aead;

/*
 * An AEAD for S with KEY (copied into locked memory), TAG_SIZE bytes of tag per sector of
 * SECTOR_SIZE bytes (512..4096, a power of two).  With IV_LARGE_SECTORS, generated IVs count
 * sector_size units (as dm-crypt's iv_large_sectors).
 */
int bs_aead_new(const struct bs_aead_spec *s, const uint8_t *key, size_t key_len, unsigned tag_size,
		unsigned sector_size, bool iv_large_sectors, struct bs_aead **out,
		const char **why);
void bs_aead_free(struct bs_aead *a);
unsigned bs_aead_tag_size(const struct bs_aead *a);

/*
 * Encrypts LEN bytes (whole sectors) from IN to OUT (may be IN) and writes one tag per
 * sector to TAGS.  SECTOR is the 512-byte sector of the first byte relative to the target,
 * IV_OFFSET dm-crypt's iv_offset.  Random IVs are drawn here; bs_aead_encrypt_ivs() takes
 * them from IVS instead (iv_size bytes per sector; for known-answer tests).  0 or -errno.
 */
int bs_aead_encrypt(struct bs_aead *a, const void *in, void *out, size_t len, uint64_t sector,
		    uint64_t iv_offset, uint8_t *tags);
int bs_aead_encrypt_ivs(struct bs_aead *a, const void *in, void *out, size_t len, uint64_t sector,
			uint64_t iv_offset, const uint8_t *ivs, uint8_t *tags);
/*
 * Checks and decrypts LEN bytes from IN to OUT (may be IN) with their TAGS.  -EILSEQ when a
 * tag does not match: those sectors are zeroed in OUT (the others are decrypted), *BAD (may
 * be NULL) is the first of them and *NBAD (may be NULL) their count.
 */
int bs_aead_decrypt(struct bs_aead *a, const void *in, void *out, size_t len, uint64_t sector,
		    uint64_t iv_offset, const uint8_t *tags, uint64_t *bad, unsigned *nbad);

#endif
