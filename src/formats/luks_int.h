/*
 * luks_int.h - what the LUKS implementation files share: the in-memory headers and helpers.
 * Not for use outside src/formats/luks*.c (and the unit tests).
 */
#ifndef BS_FORMATS_LUKS_INT_H
#define BS_FORMATS_LUKS_INT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto/pbkdf.h"
#include "formats/luks.h"
#include "formats/luks_defs.h"

/* ---- LUKS1 ------------------------------------------------------------------------------ */

struct luks1_keyblock {
	uint32_t active;
	uint32_t iterations;
	uint8_t salt[LUKS_SALTSIZE];
	uint32_t key_material; /* sectors */
	uint32_t stripes;
};

struct luks1_phdr {
	char cipher_name[LUKS_CIPHERNAME_L];
	char cipher_mode[LUKS_CIPHERMODE_L];
	char hash_spec[LUKS_HASHSPEC_L];
	uint32_t payload_offset; /* sectors */
	uint32_t key_bytes;
	uint8_t mk_digest[LUKS_DIGESTSIZE];
	uint8_t mk_digest_salt[LUKS_SALTSIZE];
	uint32_t mk_digest_iter;
	char uuid[UUID_STRING_L];
	struct luks1_keyblock kb[LUKS_NUMKEYS];
};

/* ---- LUKS2: a checked summary of the JSON tree ------------------------------------------- */

struct luks2_keyslot {
	bool used;
	uint32_t key_size; /* the volume key it holds */
	int priority;
	enum bs_pbkdf_type kdf;
	char kdf_hash[32];
	uint32_t iterations; /* PBKDF2 iterations or Argon2 time */
	uint32_t memory;
	uint32_t cpus;
	uint8_t salt[LUKS_SALTSIZE];
	char af_hash[32];
	uint32_t stripes;
	char area_cipher[64];
	uint32_t area_key_size;
	uint64_t area_offset;
	uint64_t area_size;
	int digest; /* the digest it is assigned to, or -1 */
};

struct luks2_segment {
	bool used;
	bool crypt;
	bool integrity;
	char integrity_type[32]; /* "hmac(sha256)", "aead", ... */
	bool integrity_journal;	 /* journal_encryption or journal_integrity not "none" */
	char type[32];
	uint64_t offset;
	uint64_t size; /* 0 = dynamic */
	uint64_t iv_tweak;
	char cipher[64];
	uint32_t sector_size;
	unsigned nflags;
};

struct luks2_digest {
	bool used;
	char hash[32];
	uint32_t iterations;
	uint8_t salt[64];
	size_t salt_len;
	uint8_t digest[64];
	size_t digest_len;
	uint32_t keyslots; /* bit mask */
	uint32_t segments; /* bit mask */
};

struct luks2_meta {
	struct luks2_keyslot ks[LUKS2_KEYSLOTS_MAX];
	struct luks2_segment seg[LUKS2_SEGMENT_MAX];
	struct luks2_digest dig[LUKS2_DIGEST_MAX];
	unsigned nsegments;
	unsigned ntokens;
	uint64_t json_size;
	uint64_t keyslots_size;
};

struct luks2_state {
	uint64_t hdr_size;
	uint64_t seqid;
	char label[LUKS2_LABEL_L];
	char subsystem[LUKS2_LABEL_L];
	char csum_alg[LUKS2_CHECKSUM_ALG_L];
	char uuid[LUKS2_UUID_L];
	uint8_t salt[2][LUKS2_SALT_L];
	struct json_object *json;
	struct luks2_meta meta;
};

struct luks_hdr {
	int version;
	struct bs_bdev *dev; /* not owned */
	struct luks1_phdr v1;
	struct luks2_state v2;
};

/* ---- helpers (luks_util.c) -------------------------------------------------------------- */

/* Replaces ERR's text with the message; returns CODE. */
int luks_err(struct strbuf *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void luks_uuid_generate(char out[37]);
/* Base64 (RFC 4648, with padding), as LUKS2 stores binary values. */
char *luks_b64_encode(const uint8_t *in, size_t n); /* malloc'd */
/* Strict decoding; -EINVAL for bad text or more than MAX bytes. */
int luks_b64_decode(const char *s, uint8_t *out, size_t max, size_t *len);
/* No control characters in the first MAX bytes of S (up to its end). */
bool luks_printable(const char *s, size_t max);
/* A hash OpenSSL knows, with its digest size, or 0. */
size_t luks_hash_size(const char *hash);
/* Sectors of AF material for a key. */
uint64_t luks_af_sectors(size_t key_len, unsigned stripes);
/* Appends hex bytes, PER_LINE a line, the first line unindented, later ones with INDENT. */
void luks_hexdump(struct strbuf *out, const uint8_t *b, size_t n, unsigned per_line,
		  const char *indent);

/* Resolves the PBKDF of a new key slot (defaults, limits, benchmark). */
int luks_pbkdf_resolve(const struct luks_pbkdf_opts *o, int version, size_t key_len,
		       struct bs_pbkdf *p, struct strbuf *err);
/* Iterations of the volume key digest (PBKDF2 with HASH for 125 ms, at least 1000). */
int luks_digest_iterations(const struct luks_pbkdf_opts *o, const char *hash, size_t key_len,
			   uint32_t *iter, struct strbuf *err);

/*
 * Key material: the AF-split volume key encrypted with CIPHER under KEY, 512-byte sectors
 * with IVs counted from 0, at byte OFFSET of DEV.
 */
int luks_material_store(struct bs_bdev *dev, uint64_t offset, const char *cipher,
			const uint8_t *key, size_t key_len, const uint8_t *vk, size_t vk_len,
			unsigned stripes, const char *af_hash, struct strbuf *err);
int luks_material_load(struct bs_bdev *dev, uint64_t offset, const char *cipher, const uint8_t *key,
		       size_t key_len, uint8_t *vk, size_t vk_len, unsigned stripes,
		       const char *af_hash, struct strbuf *err);
/* Overwrites [OFF, OFF+LEN) of DEV with random bytes (RANDOM) or zeroes. */
int luks_wipe(struct bs_bdev *dev, uint64_t off, uint64_t len, bool random, struct strbuf *err);

/* Appends PATH with white space and backslashes escaped, as table arguments need. */
void luks_put_path(struct strbuf *t, const char *path);

/* LUKS2 authenticated encryption (luks_integrity.c): a segment's cipher and integrity. */
struct luks_integrity_info {
	char dm_cipher[96];	    /* capi:authenc(hmac(sha256),xts(aes))-plain64, ... */
	unsigned tag_size;	    /* metadata bytes per sector: auth tag [+ random IV] */
	size_t integrity_key_bytes; /* the HMAC key at the end of the volume key; 0 for aead */
};
int luks_integrity_resolve(const char *cipher, const char *integrity,
			   struct luks_integrity_info *out, struct strbuf *err);
/* Checks KEY_BYTES (the whole volume key) for CIPHER with INTEGRITY. */
int luks_integrity_key_check(const char *cipher, const char *integrity, size_t key_bytes,
			     struct strbuf *err);
/* Splits "aes-xts-plain64" into "aes" and "xts-plain64" (LUKS1 fields). */
int luks_cipher_split(const char *spec, char *name, size_t nlen, char *mode, size_t mlen);
/* Checks that SPEC with KEY_LEN bytes can be used here; says why not. */
int luks_cipher_check(const char *spec, size_t key_len, struct strbuf *err);

/* ---- LUKS1 (luks1.c) --------------------------------------------------------------------- */

int luks1_parse(const uint8_t *buf, uint64_t dev_size, struct luks1_phdr *p, struct strbuf *err);
void luks1_encode(const struct luks1_phdr *p, uint8_t *buf /* LUKS1_PHDR_DISK_SIZE */);
int luks1_write(struct luks_hdr *h, struct strbuf *err);
int luks1_format(struct luks_hdr *h, uint64_t data_size, const struct luks_format_opts *o,
		 const struct luks_pbkdf_opts *slot_pb, const uint8_t *vk, size_t vk_len,
		 const void *pass, size_t pass_len, int *slot, struct strbuf *err);
int luks1_unlock(struct luks_hdr *h, int slot, const void *pass, size_t pass_len, uint8_t *vk,
		 int *slot_used, struct strbuf *err);
int luks1_verify_key(struct luks_hdr *h, const uint8_t *vk, size_t vk_len);
int luks1_add_key(struct luks_hdr *h, int slot, const uint8_t *vk, const void *pass,
		  size_t pass_len, const struct luks_pbkdf_opts *pb, int *slot_out,
		  struct strbuf *err);
int luks1_kill_slot(struct luks_hdr *h, int slot, bool write, struct strbuf *err);
uint64_t luks1_area_end(const struct luks1_phdr *p); /* bytes */
void luks1_dump(const struct luks_hdr *h, const char *devname, struct strbuf *out);

/* ---- LUKS2 (luks2.c, luks2_json.c) ------------------------------------------------------- */

int luks2_load(struct luks_hdr *h, bool repair, struct strbuf *err);
int luks2_write(struct luks_hdr *h, struct strbuf *err);
int luks2_format(struct luks_hdr *h, uint64_t data_size, const struct luks_format_opts *o,
		 const struct luks_pbkdf_opts *slot_pb, const uint8_t *vk, size_t vk_len,
		 const void *pass, size_t pass_len, int *slot, struct strbuf *err);
int luks2_layout(const struct luks_format_opts *o, uint64_t *hdr_size, uint64_t *keyslots_size,
		 uint64_t *data_offset, struct strbuf *err);
int luks2_unlock(struct luks_hdr *h, int slot, const void *pass, size_t pass_len, uint8_t **vk,
		 size_t *vk_len, int *slot_used, struct strbuf *err);
int luks2_verify_key(struct luks_hdr *h, const uint8_t *vk, size_t vk_len);
int luks2_add_key(struct luks_hdr *h, int slot, const uint8_t *vk, size_t vk_len, const void *pass,
		  size_t pass_len, const struct luks_pbkdf_opts *pb, int *slot_out,
		  struct strbuf *err);
int luks2_change_key(struct luks_hdr *h, int slot, const uint8_t *vk, size_t vk_len,
		     const void *pass, size_t pass_len, const struct luks_pbkdf_opts *pb,
		     struct strbuf *err);
int luks2_kill_slot(struct luks_hdr *h, int slot, struct strbuf *err);
void luks2_dump(const struct luks_hdr *h, struct strbuf *out);
int luks2_default_segment(const struct luks_hdr *h);

/*
 * Checks the whole JSON tree of a header whose copy is HDR_SIZE bytes on a device of
 * DEV_SIZE bytes (0: unknown) and fills META.  Nothing in the tree is used before this.
 */
int luks2_json_check(struct json_object *j, uint64_t hdr_size, uint64_t dev_size,
		     struct luks2_meta *meta, struct strbuf *err);
/* Parses the JSON area (LEN bytes: text, then NULs) into a tree. */
int luks2_json_parse(const char *area, size_t len, struct json_object **out, struct strbuf *err);
/* The text to write: plain, no slash escaping (as cryptsetup writes it). */
const char *luks2_json_text(struct json_object *j);
/* Builders for new metadata. */
struct json_object *luks2_json_u64(uint64_t v);
struct json_object *luks2_json_keyslot(const struct luks2_keyslot *ks);
struct json_object *luks2_json_digest(const struct luks2_digest *d);
/* Sets the "keyslots" arrays of the digests so that SLOT belongs to DIGEST (or none, -1). */
void luks2_json_assign(struct json_object *j, int slot, int digest);
/* Removes SLOT from the keyslots arrays of digests and tokens. */
void luks2_json_unassign(struct json_object *j, int slot);

#endif
