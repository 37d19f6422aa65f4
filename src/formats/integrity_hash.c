/*
 * integrity_hash.c - dm-integrity tag checksums: crc32c (ISA-L), SHA-1/SHA-256/SHA-512 and
 * their HMACs (OpenSSL's block functions on states kept in locked memory), xxhash64
 * (implemented here from the XXH64 specification).  See integrity_hash.h.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* the SHA*_Init family: states we can place ourselves */

#include "formats/integrity_hash.h"

#include <endian.h>
#include <errno.h>
#include <isa-l/crc.h>
#include <openssl/sha.h>
#include <string.h>

#include "formats/integrity_ondisk.h"
#include "util/secmem.h"

enum alg_kind { ALG_CRC32C, ALG_SHA1, ALG_SHA256, ALG_SHA512, ALG_XXH64 };

union md_ctx {
	SHA_CTX s1;
	SHA256_CTX s256;
	SHA512_CTX s512;
};

struct integrity_hash {
	enum alg_kind kind;
	bool hmac;
	bool salted;
	unsigned digest;
	uint8_t salt[SALT_SIZE];
	uint32_t crc_seed;  /* raw CRC state after the salt */
	union md_ctx inner; /* after ipad (HMAC) and the salt */
	union md_ctx outer; /* after opad (HMAC) */
};

static const struct {
	const char *name; /* Linux crypto API */
	const char *user; /* integritysetup --integrity */
	enum alg_kind kind;
	bool hmac;
	unsigned digest;
} algs[] = {
    {"crc32c", "crc32c", ALG_CRC32C, false, 4},
    {"sha1", "sha1", ALG_SHA1, false, 20},
    {"sha256", "sha256", ALG_SHA256, false, 32},
    {"sha512", "sha512", ALG_SHA512, false, 64},
    {"hmac(sha1)", "hmac-sha1", ALG_SHA1, true, 20},
    {"hmac(sha256)", "hmac-sha256", ALG_SHA256, true, 32},
    {"hmac(sha512)", "hmac-sha512", ALG_SHA512, true, 64},
    {"xxhash64", "xxhash64", ALG_XXH64, false, 8},
};

/* ---- SHA block functions ------------------------------------------------------------------ */

static unsigned md_block_size(enum alg_kind k)
{
	return k == ALG_SHA512 ? 128 : 64;
}

static void md_init(enum alg_kind k, union md_ctx *c)
{
	if (k == ALG_SHA1)
		SHA1_Init(&c->s1);
	else if (k == ALG_SHA256)
		SHA256_Init(&c->s256);
	else
		SHA512_Init(&c->s512);
}

static void md_update(enum alg_kind k, union md_ctx *c, const void *p, size_t n)
{
	if (k == ALG_SHA1)
		SHA1_Update(&c->s1, p, n);
	else if (k == ALG_SHA256)
		SHA256_Update(&c->s256, p, n);
	else
		SHA512_Update(&c->s512, p, n);
}

static void md_final(enum alg_kind k, union md_ctx *c, uint8_t *out)
{
	if (k == ALG_SHA1)
		SHA1_Final(out, &c->s1);
	else if (k == ALG_SHA256)
		SHA256_Final(out, &c->s256);
	else
		SHA512_Final(out, &c->s512);
}

/* ---- XXH64 (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md) -------------- */

#define XXH_P1 0x9E3779B185EBCA87ull
#define XXH_P2 0xC2B2AE3D27D4EB4Full
#define XXH_P3 0x165667B19E3779F9ull
#define XXH_P4 0x85EBCA77C2B2AE63ull
#define XXH_P5 0x27D4EB2F165667C5ull

struct xxh64_state {
	uint64_t total;
	uint64_t v[4];
	uint8_t mem[32];
	unsigned memsize;
	uint64_t seed;
};

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t xxh_round(uint64_t acc, uint64_t in)
{
	acc += in * XXH_P2;
	acc = rotl64(acc, 31);
	return acc * XXH_P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t v)
{
	acc ^= xxh_round(0, v);
	return acc * XXH_P1 + XXH_P4;
}

static void xxh64_init(struct xxh64_state *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->seed = seed;
	s->v[0] = seed + XXH_P1 + XXH_P2;
	s->v[1] = seed + XXH_P2;
	s->v[2] = seed;
	s->v[3] = seed - XXH_P1;
}

static void xxh64_stripe(struct xxh64_state *s, const uint8_t *p)
{
	for (int i = 0; i < 4; i++)
		s->v[i] = xxh_round(s->v[i], rd64(p + 8 * i));
}

static void xxh64_update(struct xxh64_state *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	s->total += len;
	if (s->memsize + len < 32) {
		memcpy(s->mem + s->memsize, p, len);
		s->memsize += (unsigned)len;
		return;
	}
	if (s->memsize) {
		unsigned fill = 32 - s->memsize;

		memcpy(s->mem + s->memsize, p, fill);
		xxh64_stripe(s, s->mem);
		p += fill;
		len -= fill;
		s->memsize = 0;
	}
	while (len >= 32) {
		xxh64_stripe(s, p);
		p += 32;
		len -= 32;
	}
	memcpy(s->mem, p, len);
	s->memsize = (unsigned)len;
}

static uint64_t xxh64_final(const struct xxh64_state *s)
{
	const uint8_t *p = s->mem;
	unsigned left = s->memsize;
	uint64_t h;

	if (s->total >= 32) {
		h = rotl64(s->v[0], 1) + rotl64(s->v[1], 7) + rotl64(s->v[2], 12) +
		    rotl64(s->v[3], 18);
		for (int i = 0; i < 4; i++)
			h = xxh_merge(h, s->v[i]);
	} else {
		h = s->seed + XXH_P5;
	}
	h += s->total;
	while (left >= 8) {
		h ^= xxh_round(0, rd64(p));
		h = rotl64(h, 27) * XXH_P1 + XXH_P4;
		p += 8;
		left -= 8;
	}
	if (left >= 4) {
		h ^= (uint64_t)rd32(p) * XXH_P1;
		h = rotl64(h, 23) * XXH_P2 + XXH_P3;
		p += 4;
		left -= 4;
	}
	while (left) {
		h ^= (uint64_t)*p * XXH_P5;
		h = rotl64(h, 11) * XXH_P1;
		p++;
		left--;
	}
	h ^= h >> 33;
	h *= XXH_P2;
	h ^= h >> 29;
	h *= XXH_P3;
	h ^= h >> 32;
	return h;
}

uint64_t integrity_xxh64(const void *data, size_t len, uint64_t seed)
{
	struct xxh64_state s;

	xxh64_init(&s, seed);
	xxh64_update(&s, data, len);
	return xxh64_final(&s);
}

/* ---- set-up ------------------------------------------------------------------------------ */

bool integrity_hash_known(const char *alg, bool *keyed, unsigned *digest_size)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (!strcmp(algs[i].name, alg)) {
			if (keyed)
				*keyed = algs[i].hmac;
			if (digest_size)
				*digest_size = algs[i].digest;
			return true;
		}
	return false;
}

const char *integrity_hash_from_user(const char *name)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (!strcmp(algs[i].user, name) || !strcmp(algs[i].name, name))
			return algs[i].name;
	return NULL;
}

int integrity_hash_new(const char *alg, const uint8_t *key, size_t key_len, const uint8_t *salt,
		       struct integrity_hash **out, const char **why)
{
	struct integrity_hash *h;
	size_t i;

	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (!strcmp(algs[i].name, alg))
			break;
	if (i == sizeof(algs) / sizeof(algs[0])) {
		*why = "unknown or unsupported hash algorithm";
		return -EINVAL;
	}
	if (algs[i].hmac && !key_len) {
		*why = "this hash needs a key";
		return -EINVAL;
	}
	if (!algs[i].hmac && key_len) {
		*why = "this hash takes no key";
		return -EINVAL;
	}
	if (key_len > INTEGRITY_HASH_MAX_KEY) {
		*why = "key too long";
		return -EINVAL;
	}
	h = bs_secure_alloc(sizeof(*h));
	if (!h) {
		*why = "out of memory";
		return -ENOMEM;
	}
	h->kind = algs[i].kind;
	h->hmac = algs[i].hmac;
	h->digest = algs[i].digest;
	h->salted = salt != NULL;
	if (salt)
		memcpy(h->salt, salt, SALT_SIZE);
	h->crc_seed = 0xffffffffu;
	if (h->kind == ALG_CRC32C && salt)
		h->crc_seed = crc32_iscsi(h->salt, SALT_SIZE, h->crc_seed);
	if (h->kind != ALG_CRC32C && h->kind != ALG_XXH64) {
		unsigned bs = md_block_size(h->kind);

		if (h->hmac) {
			uint8_t *k = bs_secure_alloc(2 * 128);

			if (!k) {
				bs_secure_free(h);
				*why = "out of memory";
				return -ENOMEM;
			}
			/* RFC 2104: keys longer than a block are hashed first. */
			if (key_len > bs) {
				union md_ctx *c = (union md_ctx *)(k + 128);

				md_init(h->kind, c);
				md_update(h->kind, c, key, key_len);
				md_final(h->kind, c, k);
			} else {
				memcpy(k, key, key_len);
			}
			for (unsigned j = 0; j < bs; j++)
				k[j] ^= 0x36;
			md_init(h->kind, &h->inner);
			md_update(h->kind, &h->inner, k, bs);
			for (unsigned j = 0; j < bs; j++)
				k[j] ^= 0x36 ^ 0x5c;
			md_init(h->kind, &h->outer);
			md_update(h->kind, &h->outer, k, bs);
			bs_secure_free(k);
		} else {
			md_init(h->kind, &h->inner);
		}
		if (salt)
			md_update(h->kind, &h->inner, h->salt, SALT_SIZE);
	}
	*out = h;
	return 0;
}

void integrity_hash_free(struct integrity_hash *h)
{
	bs_secure_free(h);
}

unsigned integrity_hash_digest_size(const struct integrity_hash *h)
{
	return h->digest;
}

bool integrity_hash_is_keyed(const struct integrity_hash *h)
{
	return h->hmac;
}

/* ---- tags -------------------------------------------------------------------------------- */

static const uint8_t zero_block[MAX_SECTORS_PER_BLOCK * 512];

void integrity_hash_tags(const struct integrity_hash *h, uint64_t first_sector,
			 unsigned sectors_per_block, const void *data, size_t nblocks,
			 uint8_t *tags, unsigned tag_size)
{
	const size_t bbytes = (size_t)sectors_per_block << 9;
	const uint8_t *p = data ? data : zero_block;
	uint8_t digest[INTEGRITY_HASH_MAX_DIGEST];
	const unsigned copy = tag_size < h->digest ? tag_size : h->digest;
	union md_ctx c;

	for (size_t i = 0; i < nblocks; i++) {
		uint64_t sector = htole64(first_sector + i * sectors_per_block);

		switch (h->kind) {
		case ALG_CRC32C: {
			uint32_t crc = crc32_iscsi((unsigned char *)&sector, 8, h->crc_seed);

			crc = htole32(~crc32_iscsi((unsigned char *)p, (int)bbytes, crc));
			memcpy(digest, &crc, 4);
			break;
		}
		case ALG_XXH64: {
			struct xxh64_state s;
			uint64_t v;

			xxh64_init(&s, 0);
			if (h->salted)
				xxh64_update(&s, h->salt, SALT_SIZE);
			xxh64_update(&s, &sector, 8);
			xxh64_update(&s, p, bbytes);
			v = htole64(xxh64_final(&s));
			memcpy(digest, &v, 8);
			break;
		}
		default:
			c = h->inner;
			md_update(h->kind, &c, &sector, 8);
			md_update(h->kind, &c, p, bbytes);
			md_final(h->kind, &c, digest);
			if (h->hmac) {
				c = h->outer;
				md_update(h->kind, &c, digest, h->digest);
				md_final(h->kind, &c, digest);
			}
			break;
		}
		memcpy(tags, digest, copy);
		if (copy < tag_size)
			memset(tags + copy, 0, tag_size - copy);
		tags += tag_size;
		if (data)
			p += bbytes;
	}
	if (h->hmac) {
		bs_wipe(&c, sizeof(c));
		bs_wipe(digest, sizeof(digest));
	}
}
