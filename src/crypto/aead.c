/*
 * aead.c - see aead.h.
 *
 * The message layout is Linux dm-crypt's (drivers/md/dm-crypt.c, crypt_convert_block_aead:
 * "AAD = sector_LE | IV, DATA, AUTH TAG", the IV stored after the auth tag in the integrity
 * metadata for the random IV mode) and the crypto API's: authenc(hmac(H),C) encrypts with C
 * and appends HMAC_H(associated data || ciphertext) truncated to the tag size; gcm(aes) is
 * NIST GCM with a 96-bit IV.  Checked against volumes made by cryptsetup 2.6 and the Linux kernel
 * (tests/fixtures/luks-integrity).
 *
 * authenc's cipher part is a bs_sector_cipher (crypto/cipher.h) driven with explicit IVs, so
 * its XTS and CBC are the ones the plain crypt target uses.
 */
#include "crypto/aead.h"

#include <endian.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/cipher.h"
#include "util/secmem.h"

#define MAX_AEAD_IV 16
#define MAX_DIGEST  64

/* One request's worth of keyed contexts; pooled. */
struct actx {
	EVP_MAC_CTX *mac;    /* authenc: HMAC with the MAC key */
	EVP_CIPHER_CTX *gcm; /* gcm: AES-GCM with the key */
	uint8_t *ivs;	     /* a request's IVs */
	size_t cap;
	struct actx *next;
};

struct bs_aead {
	struct bs_aead_spec spec;
	unsigned tag_size, auth_size, iv_stored;
	unsigned sector_size;
	struct bs_sector_cipher *inner; /* authenc: the cipher */
	EVP_MAC *hmac;
	char digest[16];
	EVP_CIPHER *gcm;
	uint8_t *key; /* locked: gcm key or HMAC key */
	size_t key_len;
	pthread_mutex_t lock;
	struct actx *pool;
};

/* ---- specifications -------------------------------------------------------------------- */

static size_t hash_size(const char *h)
{
	if (!strcmp(h, "sha1"))
		return 20;
	if (!strcmp(h, "sha256"))
		return 32;
	if (!strcmp(h, "sha512"))
		return 64;
	return 0;
}

bool bs_aead_spec_is_aead(const char *spec)
{
	return !strncmp(spec, "capi:authenc(", 13) || !strncmp(spec, "capi:gcm(", 9) ||
	       !strncmp(spec, "capi:rfc4106(", 13) || !strncmp(spec, "capi:rfc7539(", 13) ||
	       strstr(spec, "-gcm-") != NULL || strstr(spec, "-ccm-") != NULL;
}

static int iv_mode(const char *iv, struct bs_aead_spec *s, const char **why)
{
	if (strlen(iv) >= sizeof(s->ivname)) {
		*why = "invalid IV mode";
		return -EINVAL;
	}
	strcpy(s->ivname, iv);
	s->random_iv = !strcmp(iv, "random");
	if (s->kind == BS_AEAD_GCM && !s->random_iv) {
		*why = "gcm needs the random IV mode (gcm(aes)-random)";
		return -EINVAL;
	}
	if (!s->random_iv && strcmp(iv, "plain") && strcmp(iv, "plain64") &&
	    strcmp(iv, "plain64be") && strcmp(iv, "null")) {
		*why = "unsupported IV mode for authenticated encryption (random, plain64, plain, "
		       "plain64be and null are)";
		return -EINVAL;
	}
	return 0;
}

int bs_aead_spec_parse(const char *spec, struct bs_aead_spec *s, const char **why)
{
	char hash[16], chain[8], cipher[8], iv[32];
	int n = 0;

	memset(s, 0, sizeof(*s));
	if (strlen(spec) >= 128) {
		*why = "cipher specification too long";
		return -EINVAL;
	}
	if (sscanf(spec, "capi:authenc(hmac(%15[a-z0-9]),%7[a-z](%7[a-z0-9]))-%31s%n", hash, chain,
		   cipher, iv, &n) == 4 &&
	    spec[n] == '\0') {
		s->kind = BS_AEAD_AUTHENC;
		if (!hash_size(hash)) {
			*why = "unsupported HMAC hash (sha1, sha256 and sha512 are supported)";
			return -EINVAL;
		}
		if (strcmp(cipher, "aes") || (strcmp(chain, "xts") && strcmp(chain, "cbc"))) {
			*why =
			    "unsupported cipher for authenc (xts(aes) and cbc(aes) are supported)";
			return -EINVAL;
		}
		strcpy(s->hash, hash);
		strcpy(s->chain, chain);
		s->iv_size = 16;
		s->mac_key_size = (unsigned)hash_size(hash);
		return iv_mode(iv, s, why);
	}
	if ((sscanf(spec, "capi:gcm(%7[a-z0-9])-%31s%n", cipher, iv, &n) == 2 && spec[n] == '\0') ||
	    (sscanf(spec, "%7[a-z0-9]-gcm-%31s%n", cipher, iv, &n) == 2 && spec[n] == '\0')) {
		s->kind = BS_AEAD_GCM;
		if (strcmp(cipher, "aes")) {
			*why = "unsupported cipher for gcm (aes is supported)";
			return -EINVAL;
		}
		strcpy(s->chain, "gcm");
		s->iv_size = 12;
		return iv_mode(iv, s, why);
	}
	*why = "unsupported authenticated encryption (capi:authenc(hmac(sha256),xts(aes))-plain64, "
	       "capi:gcm(aes)-random and the like are supported)";
	return -EINVAL;
}

bool bs_aead_key_size_valid(const struct bs_aead_spec *s, size_t key_len)
{
	size_t k;

	if (key_len <= s->mac_key_size)
		return false;
	k = key_len - s->mac_key_size;
	if (!strcmp(s->chain, "xts"))
		return k == 32 || k == 48 || k == 64;
	return k == 16 || k == 24 || k == 32;
}

int bs_aead_tag_size_check(const struct bs_aead_spec *s, unsigned tag_size, const char **why)
{
	unsigned stored = s->random_iv ? s->iv_size : 0, auth;

	if (tag_size <= stored) {
		*why = "integrity tag too small for the IV and an authentication tag";
		return -EINVAL;
	}
	auth = tag_size - stored;
	if (s->kind == BS_AEAD_AUTHENC && auth > hash_size(s->hash)) {
		*why = "authentication tag longer than the HMAC digest";
		return -EINVAL;
	}
	if (s->kind == BS_AEAD_GCM && auth != 4 && auth != 8 && (auth < 12 || auth > 16)) {
		*why = "gcm authentication tag must be 4, 8 or 12 to 16 bytes";
		return -EINVAL;
	}
	return 0;
}

/* ---- instances ------------------------------------------------------------------------- */

static void actx_free(struct actx *x)
{
	if (!x)
		return;
	EVP_MAC_CTX_free(x->mac);
	EVP_CIPHER_CTX_free(x->gcm);
	free(x->ivs);
	free(x);
}

static struct actx *actx_new(struct bs_aead *a)
{
	struct actx *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	if (a->hmac) {
		OSSL_PARAM p[] = {
		    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, a->digest, 0),
		    OSSL_PARAM_construct_end(),
		};

		x->mac = EVP_MAC_CTX_new(a->hmac);
		if (!x->mac || !EVP_MAC_init(x->mac, a->key, a->key_len, p))
			goto fail;
	}
	if (a->gcm) {
		x->gcm = EVP_CIPHER_CTX_new();
		if (!x->gcm || !EVP_CipherInit_ex2(x->gcm, a->gcm, a->key, NULL, 1, NULL))
			goto fail;
	}
	return x;
fail:
	actx_free(x);
	return NULL;
}

static struct actx *actx_get(struct bs_aead *a, size_t iv_bytes)
{
	struct actx *x;

	pthread_mutex_lock(&a->lock);
	x = a->pool;
	if (x)
		a->pool = x->next;
	pthread_mutex_unlock(&a->lock);
	if (!x)
		x = actx_new(a);
	if (x && x->cap < iv_bytes) {
		uint8_t *n = malloc(iv_bytes);

		if (!n) {
			actx_free(x);
			return NULL;
		}
		free(x->ivs);
		x->ivs = n;
		x->cap = iv_bytes;
	}
	return x;
}

static void actx_put(struct bs_aead *a, struct actx *x)
{
	pthread_mutex_lock(&a->lock);
	x->next = a->pool;
	a->pool = x;
	pthread_mutex_unlock(&a->lock);
}

void bs_aead_free(struct bs_aead *a)
{
	if (!a)
		return;
	while (a->pool) {
		struct actx *x = a->pool;

		a->pool = x->next;
		actx_free(x);
	}
	bs_sector_cipher_free(a->inner);
	EVP_MAC_free(a->hmac);
	EVP_CIPHER_free(a->gcm);
	bs_secure_free(a->key);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int bs_aead_new(const struct bs_aead_spec *s, const uint8_t *key, size_t key_len, unsigned tag_size,
		unsigned sector_size, bool iv_large_sectors, struct bs_aead **out, const char **why)
{
	struct bs_aead *a;
	struct actx *probe;
	int r;

	if (sector_size < 512 || sector_size > 4096 || (sector_size & (sector_size - 1))) {
		*why = "sector size must be a power of two from 512 to 4096";
		return -EINVAL;
	}
	if (!bs_aead_key_size_valid(s, key_len)) {
		*why = "invalid key size for the cipher";
		return -EINVAL;
	}
	r = bs_aead_tag_size_check(s, tag_size, why);
	if (r)
		return r;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	a->spec = *s;
	a->tag_size = tag_size;
	a->iv_stored = s->random_iv ? s->iv_size : 0;
	a->auth_size = tag_size - a->iv_stored;
	a->sector_size = sector_size;
	r = -EINVAL;
	if (s->kind == BS_AEAD_AUTHENC) {
		struct bs_crypt_spec cs;
		char text[64];
		size_t enc = key_len - s->mac_key_size;

		/* the IV mode only matters when IVs are generated; random ones are given */
		snprintf(text, sizeof(text), "aes-%s-%s", s->chain,
			 s->random_iv ? "plain64" : s->ivname);
		if (bs_crypt_spec_parse(text, &cs, why))
			goto fail;
		r = bs_sector_cipher_new(&cs, key, enc, sector_size, iv_large_sectors, &a->inner,
					 why);
		if (r)
			goto fail;
		r = -EINVAL;
		a->key_len = s->mac_key_size;
		a->key = bs_secure_alloc(a->key_len);
		if (!a->key) {
			r = -ENOMEM;
			goto fail;
		}
		memcpy(a->key, key + enc, a->key_len);
		snprintf(a->digest, sizeof(a->digest), "%s", s->hash);
		a->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		if (!a->hmac) {
			*why = "HMAC unavailable in OpenSSL";
			goto fail;
		}
	} else {
		char name[32];

		a->key_len = key_len;
		a->key = bs_secure_alloc(key_len);
		if (!a->key) {
			r = -ENOMEM;
			goto fail;
		}
		memcpy(a->key, key, key_len);
		snprintf(name, sizeof(name), "AES-%zu-GCM", key_len * 8);
		a->gcm = EVP_CIPHER_fetch(NULL, name, NULL);
		if (!a->gcm) {
			*why = "AES-GCM unavailable in OpenSSL";
			goto fail;
		}
	}
	/* one context now, so that a bad key fails here and not on the first request */
	probe = actx_get(a, 0);
	if (!probe) {
		*why = "OpenSSL refused the key";
		goto fail;
	}
	actx_put(a, probe);
	*out = a;
	return 0;
fail:
	bs_aead_free(a);
	return r;
}

unsigned bs_aead_tag_size(const struct bs_aead *a)
{
	return a->tag_size;
}

/* The associated data of the sector at 512-byte sector S with IV. */
static size_t make_aad(const struct bs_aead *a, uint64_t s, const uint8_t *iv, uint8_t *aad)
{
	uint64_t le = htole64(s);

	memcpy(aad, &le, 8);
	memcpy(aad + 8, iv, a->spec.iv_size);
	return 8 + a->spec.iv_size;
}

/* HMAC(aad || data) into OUT (the whole digest). */
static int hmac_sector(struct bs_aead *a, struct actx *x, const uint8_t *aad, size_t aad_len,
		       const uint8_t *data, uint8_t *out)
{
	size_t n = 0;

	if (!EVP_MAC_init(x->mac, NULL, 0, NULL) || !EVP_MAC_update(x->mac, aad, aad_len) ||
	    !EVP_MAC_update(x->mac, data, a->sector_size) ||
	    !EVP_MAC_final(x->mac, out, &n, MAX_DIGEST))
		return -EIO;
	return 0;
}

/* One GCM message; on decryption returns -EILSEQ when the tag does not match. */
static int gcm_sector(struct bs_aead *a, struct actx *x, bool enc, const uint8_t *aad,
		      size_t aad_len, const uint8_t *iv, const uint8_t *in, uint8_t *out,
		      uint8_t *tag)
{
	int outl = 0;

	if (!EVP_CipherInit_ex2(x->gcm, NULL, NULL, iv, enc, NULL) ||
	    !EVP_CipherUpdate(x->gcm, NULL, &outl, aad, (int)aad_len) ||
	    !EVP_CipherUpdate(x->gcm, out, &outl, in, (int)a->sector_size) ||
	    outl != (int)a->sector_size)
		return -EIO;
	if (enc) {
		if (!EVP_CipherFinal_ex(x->gcm, out + outl, &outl) ||
		    !EVP_CIPHER_CTX_ctrl(x->gcm, EVP_CTRL_GCM_GET_TAG, (int)a->auth_size, tag))
			return -EIO;
		return 0;
	}
	if (!EVP_CIPHER_CTX_ctrl(x->gcm, EVP_CTRL_GCM_SET_TAG, (int)a->auth_size, tag))
		return -EIO;
	return EVP_CipherFinal_ex(x->gcm, out + outl, &outl) ? 0 : -EILSEQ;
}

int bs_aead_encrypt_ivs(struct bs_aead *a, const void *in_, void *out_, size_t len, uint64_t sector,
			uint64_t iv_offset, const uint8_t *given, uint8_t *tags)
{
	const uint8_t *in = in_;
	uint8_t *out = out_;
	const unsigned ss = a->sector_size, step = ss >> 9;
	size_t nsec = len / ss;
	uint8_t aad[8 + MAX_AEAD_IV], mac[MAX_DIGEST];
	struct actx *x;
	int r = 0;

	if (len % ss)
		return -EINVAL;
	if (!nsec)
		return 0;
	x = actx_get(a, nsec * a->spec.iv_size);
	if (!x)
		return -ENOMEM;
	if (a->spec.random_iv) {
		if (given)
			memcpy(x->ivs, given, nsec * a->spec.iv_size);
		else if (RAND_bytes(x->ivs, (int)(nsec * a->spec.iv_size)) != 1)
			r = -EIO;
	} else {
		r = bs_sector_cipher_ivs(a->inner, sector + iv_offset, nsec, x->ivs);
	}
	if (!r && a->spec.kind == BS_AEAD_AUTHENC) {
		r = bs_sector_cipher_crypt_ivs(a->inner, true, in, out, len, x->ivs);
		for (size_t i = 0; i < nsec && !r; i++) {
			const uint8_t *iv = x->ivs + i * a->spec.iv_size;
			size_t n = make_aad(a, sector + i * step, iv, aad);

			r = hmac_sector(a, x, aad, n, out + i * ss, mac);
			memcpy(tags + i * a->tag_size, mac, a->auth_size);
		}
	} else if (!r) {
		for (size_t i = 0; i < nsec && !r; i++) {
			const uint8_t *iv = x->ivs + i * a->spec.iv_size;
			size_t n = make_aad(a, sector + i * step, iv, aad);

			r = gcm_sector(a, x, true, aad, n, iv, in + i * ss, out + i * ss,
				       tags + i * a->tag_size);
		}
	}
	for (size_t i = 0; i < nsec && !r && a->iv_stored; i++)
		memcpy(tags + i * a->tag_size + a->auth_size, x->ivs + i * a->spec.iv_size,
		       a->iv_stored);
	bs_wipe(mac, sizeof(mac));
	actx_put(a, x);
	return r;
}

int bs_aead_encrypt(struct bs_aead *a, const void *in, void *out, size_t len, uint64_t sector,
		    uint64_t iv_offset, uint8_t *tags)
{
	return bs_aead_encrypt_ivs(a, in, out, len, sector, iv_offset, NULL, tags);
}

int bs_aead_decrypt(struct bs_aead *a, const void *in_, void *out_, size_t len, uint64_t sector,
		    uint64_t iv_offset, const uint8_t *tags, uint64_t *bad, unsigned *nbad)
{
	const uint8_t *in = in_;
	uint8_t *out = out_;
	const unsigned ss = a->sector_size, step = ss >> 9;
	size_t nsec = len / ss;
	uint8_t aad[8 + MAX_AEAD_IV], mac[MAX_DIGEST];
	unsigned nb = 0;
	struct actx *x;
	int r = 0;

	if (len % ss)
		return -EINVAL;
	if (!nsec)
		return 0;
	x = actx_get(a, nsec * a->spec.iv_size + nsec);
	if (!x)
		return -ENOMEM;
	{
		uint8_t *failed = x->ivs + nsec * a->spec.iv_size; /* one flag per sector */

		memset(failed, 0, nsec);
		if (a->spec.random_iv)
			for (size_t i = 0; i < nsec; i++)
				memcpy(x->ivs + i * a->spec.iv_size,
				       tags + i * a->tag_size + a->auth_size, a->iv_stored);
		else
			r = bs_sector_cipher_ivs(a->inner, sector + iv_offset, nsec, x->ivs);
		if (!r && a->spec.kind == BS_AEAD_AUTHENC) {
			/* every tag checked before anything is decrypted */
			for (size_t i = 0; i < nsec && !r; i++) {
				const uint8_t *iv = x->ivs + i * a->spec.iv_size;
				size_t n = make_aad(a, sector + i * step, iv, aad);

				r = hmac_sector(a, x, aad, n, in + i * ss, mac);
				if (!r && CRYPTO_memcmp(mac, tags + i * a->tag_size, a->auth_size))
					failed[i] = 1;
			}
			if (!r)
				r = bs_sector_cipher_crypt_ivs(a->inner, false, in, out, len,
							       x->ivs);
		} else if (!r) {
			for (size_t i = 0; i < nsec && !r; i++) {
				const uint8_t *iv = x->ivs + i * a->spec.iv_size;
				size_t n = make_aad(a, sector + i * step, iv, aad);
				uint8_t tag[16];

				memcpy(tag, tags + i * a->tag_size, a->auth_size);
				r = gcm_sector(a, x, false, aad, n, iv, in + i * ss, out + i * ss,
					       tag);
				if (r == -EILSEQ) {
					failed[i] = 1;
					r = 0;
				}
			}
		}
		for (size_t i = 0; i < nsec; i++) {
			if (!failed[i] && !r)
				continue;
			bs_wipe(out + i * ss, ss); /* never hand out what failed */
			if (!failed[i])
				continue;
			if (!nb && bad)
				*bad = sector + i * step;
			nb++;
		}
	}
	bs_wipe(mac, sizeof(mac));
	actx_put(a, x);
	if (nbad)
		*nbad = nb;
	return r ? r : nb ? -EILSEQ : 0;
}
