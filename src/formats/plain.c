/*
 * plain.c - see plain.h.
 */
#include "formats/plain.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "crypto/cipher.h"
#include "util/parse.h"
#include "util/secmem.h"

/* Splits "NAME[:LEN]"; *len is 0 without ":LEN". */
static int split_hash(const char *hash, char *name, size_t name_size, size_t *len, const char **why)
{
	const char *colon = strchr(hash, ':');
	size_t n = colon ? (size_t)(colon - hash) : strlen(hash);
	uint64_t v = 0;

	if (n == 0 || n >= name_size || strlen(hash) >= BS_PLAIN_HASH_MAX) {
		*why = "invalid hash (want NAME or NAME:LENGTH, e.g. sha256 or plain)";
		return -EINVAL;
	}
	memcpy(name, hash, n);
	name[n] = '\0';
	if (colon && (bs_parse_u64(colon + 1, &v) || v == 0 || v > 4096)) {
		*why = "invalid hash length after ':' (want a number of bytes)";
		return -EINVAL;
	}
	*len = (size_t)v;
	return 0;
}

static EVP_MD *fetch_md(const char *name, const char **why)
{
	EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);

	if (!md) {
		*why = "hash algorithm not supported";
		return NULL;
	}
	if (EVP_MD_get_size(md) <= 0 || (EVP_MD_get_flags(md) & EVP_MD_FLAG_XOF)) {
		EVP_MD_free(md);
		*why = "hash algorithm not supported (it has no fixed output size)";
		return NULL;
	}
	return md;
}

int bs_plain_hash_check(const char *hash, size_t key_len, const char **why)
{
	char name[BS_PLAIN_HASH_MAX];
	size_t len;
	EVP_MD *md;

	if (split_hash(hash, name, sizeof(name), &len, why))
		return -EINVAL;
	if (len > key_len) {
		*why = "hash length is larger than the key";
		return -EINVAL;
	}
	if (!strcmp(name, "plain"))
		return 0;
	md = fetch_md(name, why);
	if (!md)
		return -EINVAL;
	EVP_MD_free(md);
	return 0;
}

/* KEY = H(P) || H("A" P) || H("AA" P) ... cut to N bytes. */
static int iterated_hash(const EVP_MD *md, const void *pass, size_t pass_len, uint8_t *key,
			 size_t n)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t *digest = bs_secure_alloc(EVP_MAX_MD_SIZE);
	size_t dlen = (size_t)EVP_MD_get_size(md);
	int r = 0;

	if (!ctx || !digest) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t round = 0, done = 0; done < n; round++) {
		size_t take = n - done < dlen ? n - done : dlen;

		if (!EVP_DigestInit_ex(ctx, md, NULL)) {
			r = -EIO;
			goto out;
		}
		for (size_t i = 0; i < round; i++)
			if (!EVP_DigestUpdate(ctx, "A", 1)) {
				r = -EIO;
				goto out;
			}
		if (!EVP_DigestUpdate(ctx, pass, pass_len) ||
		    !EVP_DigestFinal_ex(ctx, digest, NULL)) {
			r = -EIO;
			goto out;
		}
		memcpy(key + done, digest, take);
		done += take;
	}
out:
	EVP_MD_CTX_free(ctx);
	bs_secure_free(digest);
	return r;
}

int bs_plain_derive_key(const char *hash, const void *pass, size_t pass_len, uint8_t *key,
			size_t key_len, const char **why)
{
	char name[BS_PLAIN_HASH_MAX];
	size_t len = 0;
	EVP_MD *md;
	int r;

	if (key_len == 0) {
		*why = "key size must not be zero";
		return -EINVAL;
	}
	memset(key, 0, key_len);
	if (!hash) {
		/* A key file: its bytes are the key. */
		if (pass_len < key_len) {
			*why = "key file is shorter than the key";
			return -EINVAL;
		}
		memcpy(key, pass, key_len);
		return 0;
	}
	if (bs_plain_hash_check(hash, key_len, why) ||
	    split_hash(hash, name, sizeof(name), &len, why))
		return -EINVAL;
	if (!strcmp(name, "plain")) {
		if (len == 0) {
			/* cut to the key size or zero-padded */
			memcpy(key, pass, pass_len < key_len ? pass_len : key_len);
			return 0;
		}
		if (pass_len < len) {
			*why = "passphrase is shorter than the length given with --hash plain:LEN";
			return -EINVAL;
		}
		memcpy(key, pass, len);
		return 0;
	}
	md = fetch_md(name, why);
	if (!md)
		return -EINVAL;
	r = iterated_hash(md, pass, pass_len, key, len ? len : key_len);
	EVP_MD_free(md);
	if (r) {
		bs_wipe(key, key_len);
		*why = "cannot hash the passphrase";
		return r;
	}
	return 0;
}

int bs_plain_cipher_spec(const char *cipher, char *out, size_t outlen, const char **why)
{
	struct bs_crypt_spec spec;
	int n;

	if (!*cipher || strpbrk(cipher, " \t\n\\")) {
		*why = "invalid cipher";
		return -EINVAL;
	}
	if (strchr(cipher, '-') || !strncmp(cipher, "capi:", 5) || !strcmp(cipher, "cipher_null"))
		n = snprintf(out, outlen, "%s", cipher);
	else
		n = snprintf(out, outlen, "%s-cbc-plain", cipher);
	if (n < 0 || (size_t)n >= outlen) {
		*why = "cipher specification too long";
		return -EINVAL;
	}
	return bs_crypt_spec_parse(out, &spec, why);
}
