/*
 * cipher.h - sector encryption as dm-crypt does it.
 *
 * A cipher specification is dm-crypt's string, "<cipher>[:<keycount>]-<chainmode>-<ivmode>
 * [:<ivopts>]" (e.g. aes-xts-plain64, aes-cbc-essiv:sha256) or "capi:<chainmode>(<cipher>)-
 * <ivmode>[:<ivopts>]" (e.g. capi:xts(aes)-plain64), or cipher_null.  A sector cipher holds
 * one key and encrypts whole sectors; each sector's IV is derived from its number the way the
 * IV mode says.  Key schedules are set up once, in a pool of OpenSSL contexts that grows to
 * the number of requests running at once (and, for XTS on x86-64 with AES-NI, as round keys
 * for the AES instructions): the hot path neither allocates nor re-keys.
 *
 * Besides dm-crypt's IV modes (unchanged), two blkstack extensions reproduce NetBSD cgd(4):
 * "encblkno1" (IV = E_k(n) with n the sector number as a 64-bit little-endian integer,
 * zero-padded to the block: cgd's default) and "encblkno8" (IV = E_k applied eight times:
 * cgd's legacy "encblkno"/"encblkno8").  They are defined for cbc only; cgd's aes-xts is
 * exactly aes-xts-plain64.  See docs/cgd.md.
 */
#ifndef BS_CRYPTO_CIPHER_H
#define BS_CRYPTO_CIPHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bs_iv_mode {
	BS_IV_NONE,	 /* ecb: no IV */
	BS_IV_NULL,	 /* all zero */
	BS_IV_PLAIN,	 /* sector number, 32-bit little-endian */
	BS_IV_PLAIN64,	 /* sector number, 64-bit little-endian */
	BS_IV_PLAIN64BE, /* sector number, 64-bit big-endian, at the end of the IV */
	BS_IV_ESSIV,	 /* plain64 encrypted with hash(key) as key */
	BS_IV_BENBI,	 /* big-endian narrow-block count, starting at 1 */
	BS_IV_ENCBLKNO1, /* blkstack extension (NetBSD cgd): plain64 encrypted once with the key */
	BS_IV_ENCBLKNO8, /* blkstack extension (NetBSD cgd legacy): plain64 encrypted 8 times */
};

struct bs_crypt_spec {
	char cipher[32]; /* "aes", "cipher_null" */
	char chain[16];	 /* "xts", "cbc", "ecb" */
	char ivname[16]; /* as written: "plain64", "essiv", ... */
	char ivopts[32]; /* "sha256" for essiv */
	enum bs_iv_mode iv;
	unsigned keycount;
	bool capi; /* written in capi: form; printed back the same way */
};

/* Parses SPEC; on error returns -EINVAL and sets *why. */
int bs_crypt_spec_parse(const char *spec, struct bs_crypt_spec *out, const char **why);
/* Writes the canonical text of a spec (what the table prints). */
void bs_crypt_spec_format(const struct bs_crypt_spec *s, char *out, size_t outlen);
/* True when KEY_LEN bytes is a valid key size for the spec. */
bool bs_crypt_key_size_valid(const struct bs_crypt_spec *s, size_t key_len);

struct bs_sector_cipher;

/*
 * A cipher for SPEC with KEY (copied into locked memory).  SECTOR_SIZE is the encryption
 * unit (512..4096, a power of two); with IV_LARGE_SECTORS the IV counts sector_size units
 * instead of 512-byte sectors.
 */
int bs_sector_cipher_new(const struct bs_crypt_spec *spec, const uint8_t *key, size_t key_len,
			 unsigned sector_size, bool iv_large_sectors, struct bs_sector_cipher **out,
			 const char **why);
void bs_sector_cipher_free(struct bs_sector_cipher *c);

/*
 * Encrypts or decrypts LEN bytes (a multiple of the sector size) from IN to OUT (which may be
 * IN).  SECTOR is the 512-byte sector number of the first byte for IV purposes (dm-crypt's
 * iv_offset already added).  Returns 0 or -errno.
 */
int bs_sector_cipher_crypt(struct bs_sector_cipher *c, bool encrypt, const void *in, void *out,
			   size_t len, uint64_t sector);

unsigned bs_sector_cipher_sector_size(const struct bs_sector_cipher *c);

/*
 * For authenticated encryption (crypto/aead.h), which needs the IVs themselves:
 * bs_sector_cipher_iv_size() is the IV size (16 for AES; 0 for ecb and cipher_null, which
 * have none); bs_sector_cipher_ivs() writes the IVs the spec's IV mode gives NSEC sectors
 * from SECTOR (as bs_sector_cipher_crypt() counts them) to OUT, iv_size bytes each; and
 * bs_sector_cipher_crypt_ivs() works as bs_sector_cipher_crypt() but with the given IVs
 * (one per sector, iv_size bytes each) instead of the IV mode's.  -EINVAL without IVs.
 */
unsigned bs_sector_cipher_iv_size(const struct bs_sector_cipher *c);
int bs_sector_cipher_ivs(struct bs_sector_cipher *c, uint64_t sector, size_t nsec, uint8_t *out);
int bs_sector_cipher_crypt_ivs(struct bs_sector_cipher *c, bool encrypt, const void *in, void *out,
			       size_t len, const uint8_t *ivs);

/*
 * For tests and benchmarks: how far XTS ciphers created from now on may go in using the
 * CPU's AES instructions (on x86-64: AES-NI, then VAES with AVX2), as far as the CPU has
 * them, instead of the portable path built on OpenSSL's AES-ECB.  BS_ACCEL_VAES (all there
 * is) by default; the answers are the same at every level.
 */
enum bs_cipher_accel { BS_ACCEL_NONE, BS_ACCEL_AESNI, BS_ACCEL_VAES };
void bs_sector_cipher_set_accel(enum bs_cipher_accel max);

#endif
