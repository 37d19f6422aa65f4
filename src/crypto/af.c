/*
 * af.c - see af.h.
 *
 * diffuse(d): d is cut into digest-sized pieces; piece i becomes H(be32(i) || piece i),
 * truncated to the piece's length.  split: s_0..s_{n-2} random, d_k = diffuse(d_{k-1} ^ s_k),
 * s_{n-1} = d_{n-2} ^ key.  merge runs the same chain and XORs the last stripe.
 */
#include "crypto/af.h"

#include <endian.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <string.h>

#include "util/secmem.h"

size_t bs_af_split_size(size_t key_len, unsigned stripes)
{
	return key_len * stripes;
}

static void xor_into(uint8_t *d, const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] ^= s[i];
}

static int diffuse(uint8_t *d, size_t len, const EVP_MD *md)
{
	size_t ds = (size_t)EVP_MD_get_size(md);
	uint8_t out[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int r = 0;

	if (!ctx)
		return -ENOMEM;
	for (uint32_t i = 0; (size_t)i * ds < len; i++) {
		size_t n = len - (size_t)i * ds < ds ? len - (size_t)i * ds : ds;
		uint32_t be = htobe32(i);

		if (!EVP_DigestInit_ex(ctx, md, NULL) || !EVP_DigestUpdate(ctx, &be, 4) ||
		    !EVP_DigestUpdate(ctx, d + (size_t)i * ds, n) ||
		    !EVP_DigestFinal_ex(ctx, out, NULL)) {
			r = -EIO;
			break;
		}
		memcpy(d + (size_t)i * ds, out, n);
	}
	bs_wipe(out, sizeof(out));
	EVP_MD_CTX_free(ctx);
	return r;
}

int bs_af_split(const void *key, size_t key_len, unsigned stripes, const char *hash, void *out)
{
	const EVP_MD *md = EVP_get_digestbyname(hash);
	uint8_t *dst = out, *d;
	int r = 0;

	if (!md || stripes == 0)
		return -EINVAL;
	d = bs_secure_alloc(key_len);
	if (!d)
		return -ENOMEM;
	for (unsigned i = 0; i + 1 < stripes && !r; i++) {
		uint8_t *s = dst + (size_t)i * key_len;

		if (RAND_bytes(s, (int)key_len) != 1) {
			r = -EIO;
			break;
		}
		xor_into(d, s, key_len);
		r = diffuse(d, key_len, md);
	}
	if (!r) {
		memcpy(dst + (size_t)(stripes - 1) * key_len, d, key_len);
		xor_into(dst + (size_t)(stripes - 1) * key_len, key, key_len);
	}
	bs_secure_free(d);
	return r;
}

int bs_af_merge(const void *in, size_t key_len, unsigned stripes, const char *hash, void *key)
{
	const EVP_MD *md = EVP_get_digestbyname(hash);
	const uint8_t *src = in;
	uint8_t *d;
	int r = 0;

	if (!md || stripes == 0)
		return -EINVAL;
	d = bs_secure_alloc(key_len);
	if (!d)
		return -ENOMEM;
	for (unsigned i = 0; i + 1 < stripes && !r; i++) {
		xor_into(d, src + (size_t)i * key_len, key_len);
		r = diffuse(d, key_len, md);
	}
	if (!r) {
		memcpy(key, d, key_len);
		xor_into(key, src + (size_t)(stripes - 1) * key_len, key_len);
	}
	bs_secure_free(d);
	return r;
}
