/*
 * integrity_hash.h - the checksums dm-integrity stores as tags ("internal_hash").
 *
 * The tag of a block is the digest, computed as Linux's crypto API computes it (the names
 * are Linux's: crc32c, sha1, sha256, sha512, hmac(sha1), hmac(sha256), hmac(sha512),
 * xxhash64), of
 *     [salt (16 bytes, when the superblock has SB_FLAG_FIXED_HMAC)]
 *     le64 sector number of the block's first 512-byte sector
 *     the block's data (512 to 4096 bytes)
 * truncated to the tag size, or padded with zeroes when the tag is longer than the digest.
 * crc32c is output as le32 of the inverted CRC, xxhash64 as le64 with seed 0.
 *
 * A keyed hash keeps its key, and the HMAC states derived from it, in locked memory.  A
 * hash is read-only once set up, so any number of threads may compute tags at once.
 */
#ifndef BS_FORMATS_INTEGRITY_HASH_H
#define BS_FORMATS_INTEGRITY_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INTEGRITY_HASH_MAX_DIGEST 64
#define INTEGRITY_HASH_MAX_KEY	  4096

struct integrity_hash;

/*
 * Sets up ALG (a Linux name) with KEY (NULL/0 for the unkeyed ones; an HMAC needs one).
 * SALT is the superblock's salt when it has SB_FLAG_FIXED_HMAC, otherwise NULL.  Returns 0,
 * or -EINVAL/-ENOMEM with *why set.
 */
int integrity_hash_new(const char *alg, const uint8_t *key, size_t key_len, const uint8_t *salt,
		       struct integrity_hash **out, const char **why);
void integrity_hash_free(struct integrity_hash *h);

unsigned integrity_hash_digest_size(const struct integrity_hash *h);
bool integrity_hash_is_keyed(const struct integrity_hash *h);

/*
 * Tags of NBLOCKS consecutive blocks of SECTORS_PER_BLOCK sectors: block i starts at sector
 * FIRST_SECTOR + i * SECTORS_PER_BLOCK and its data at DATA + i * SECTORS_PER_BLOCK * 512;
 * its tag (TAG_SIZE bytes) goes to TAGS + i * TAG_SIZE.  DATA NULL means blocks of zeroes.
 */
void integrity_hash_tags(const struct integrity_hash *h, uint64_t first_sector,
			 unsigned sectors_per_block, const void *data, size_t nblocks,
			 uint8_t *tags, unsigned tag_size);

/* True when ALG is a name integrity_hash_new() knows; *keyed says whether it needs a key. */
bool integrity_hash_known(const char *alg, bool *keyed, unsigned *digest_size);

/*
 * integritysetup's --integrity names ("crc32c", "sha256", "hmac-sha256", "xxhash64", ...)
 * to Linux's ("hmac(sha256)"); also accepts Linux's own.  NULL when unknown.
 */
const char *integrity_hash_from_user(const char *name);

/* XXH64 of one buffer (exposed for the known-answer tests). */
uint64_t integrity_xxh64(const void *data, size_t len, uint64_t seed);

#endif
