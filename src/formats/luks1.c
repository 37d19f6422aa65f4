/*
 * luks1.c - LUKS1: the phdr of the LUKS1 specification (table 1), its eight key slots of
 * AF-split key material, and the PBKDF2 volume key digest.
 *
 * Layout as cryptsetup 2.6 writes it: the 1 KiB phdr at 0, key slot 0's material at sector 8
 * and each further slot 4 KiB aligned after the previous, the payload 1 MiB aligned after
 * the last slot (or at --offset; 0 with a detached header).
 */
#include <endian.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/luks_int.h"
#include "util/secmem.h"

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

/* Copies a NUL-terminated field; false when it has no terminator. */
static bool field(char *dst, const uint8_t *src, size_t len)
{
	if (!memchr(src, '\0', len))
		return false;
	memcpy(dst, src, len);
	return true;
}

uint64_t luks1_area_end(const struct luks1_phdr *p)
{
	uint64_t end = 0;

	for (int i = 0; i < LUKS_NUMKEYS; i++) {
		uint64_t e = (uint64_t)p->kb[i].key_material +
			     luks_af_sectors(p->key_bytes, p->kb[i].stripes);

		if (e > end)
			end = e;
	}
	return end * LUKS_SECTOR_SIZE;
}

static char *cipher_of(const struct luks1_phdr *p, char *buf, size_t len)
{
	if (p->cipher_mode[0])
		snprintf(buf, len, "%s-%s", p->cipher_name, p->cipher_mode);
	else
		snprintf(buf, len, "%s", p->cipher_name);
	return buf;
}

int luks1_parse(const uint8_t *buf, uint64_t dev_size, struct luks1_phdr *p, struct strbuf *err)
{
	uint64_t af;
	char cipher[72];
	int order[LUKS_NUMKEYS];
	int r;

	memset(p, 0, sizeof(*p));
	if (memcmp(buf + LUKS1_OFF_MAGIC, LUKS_MAGIC, LUKS_MAGIC_L))
		return luks_err(err, -EINVAL, "not a LUKS header (bad magic)");
	if ((buf[LUKS1_OFF_VERSION] << 8 | buf[LUKS1_OFF_VERSION + 1]) != LUKS1_VERSION)
		return luks_err(err, -EINVAL, "unsupported LUKS version %u",
				buf[LUKS1_OFF_VERSION] << 8 | buf[LUKS1_OFF_VERSION + 1]);
	if (!field(p->cipher_name, buf + LUKS1_OFF_CIPHER_NAME, LUKS_CIPHERNAME_L) ||
	    !field(p->cipher_mode, buf + LUKS1_OFF_CIPHER_MODE, LUKS_CIPHERMODE_L) ||
	    !field(p->hash_spec, buf + LUKS1_OFF_HASH_SPEC, LUKS_HASHSPEC_L) ||
	    !field(p->uuid, buf + LUKS1_OFF_UUID, UUID_STRING_L))
		return luks_err(err, -EINVAL, "LUKS1 header has an unterminated text field");
	if (!luks_printable(p->cipher_name, LUKS_CIPHERNAME_L) ||
	    !luks_printable(p->cipher_mode, LUKS_CIPHERMODE_L) ||
	    !luks_printable(p->hash_spec, LUKS_HASHSPEC_L) ||
	    !luks_printable(p->uuid, UUID_STRING_L))
		return luks_err(err, -EINVAL,
				"LUKS1 header has control characters in a text field");
	p->payload_offset = get32(buf + LUKS1_OFF_PAYLOAD_OFFSET);
	p->key_bytes = get32(buf + LUKS1_OFF_KEY_BYTES);
	memcpy(p->mk_digest, buf + LUKS1_OFF_MK_DIGEST, LUKS_DIGESTSIZE);
	memcpy(p->mk_digest_salt, buf + LUKS1_OFF_MK_DIGEST_SALT, LUKS_SALTSIZE);
	p->mk_digest_iter = get32(buf + LUKS1_OFF_MK_DIGEST_ITER);
	for (int i = 0; i < LUKS_NUMKEYS; i++) {
		const uint8_t *k = buf + LUKS1_OFF_KEYBLOCK + i * LUKS1_KEYBLOCK_SIZE;

		p->kb[i].active = get32(k + LUKS1_KB_OFF_ACTIVE);
		p->kb[i].iterations = get32(k + LUKS1_KB_OFF_ITERATIONS);
		memcpy(p->kb[i].salt, k + LUKS1_KB_OFF_SALT, LUKS_SALTSIZE);
		p->kb[i].key_material = get32(k + LUKS1_KB_OFF_KEY_MATERIAL);
		p->kb[i].stripes = get32(k + LUKS1_KB_OFF_STRIPES);
	}

	if (luks_hash_size(p->hash_spec) < LUKS_DIGESTSIZE)
		return luks_err(err, -EINVAL, "LUKS1 hash \"%s\" is not supported", p->hash_spec);
	if (p->key_bytes == 0 || p->key_bytes > LUKS1_MAX_KEY_BYTES)
		return luks_err(err, -EINVAL, "LUKS1 header has an invalid key size (%u bytes)",
				p->key_bytes);
	r = luks_cipher_check(cipher_of(p, cipher, sizeof(cipher)), p->key_bytes, err);
	if (r)
		return r;
	if (p->mk_digest_iter == 0)
		return luks_err(err, -EINVAL, "LUKS1 header has a zero digest iteration count");
	af = luks_af_sectors(p->key_bytes, LUKS_STRIPES);
	for (int i = 0; i < LUKS_NUMKEYS; i++) {
		const struct luks1_keyblock *k = &p->kb[i];

		if (k->active != LUKS_KEY_ENABLED && k->active != LUKS_KEY_DISABLED)
			return luks_err(err, -EINVAL, "LUKS1 key slot %d has an invalid state 0x%x",
					i, k->active);
		if (k->stripes != LUKS_STRIPES)
			return luks_err(err, -EINVAL,
					"LUKS1 key slot %d has %u AF stripes (must be %u)", i,
					k->stripes, LUKS_STRIPES);
		if ((uint64_t)k->key_material * LUKS_SECTOR_SIZE < LUKS1_PHDR_DISK_SIZE)
			return luks_err(err, -EINVAL,
					"LUKS1 key slot %d overlaps the header (offset %u)", i,
					k->key_material);
		if (p->payload_offset &&
		    (uint64_t)k->key_material + af > (uint64_t)p->payload_offset)
			return luks_err(err, -EINVAL,
					"LUKS1 key slot %d reaches into the data area (offset %u, "
					"data at %u)",
					i, k->key_material, p->payload_offset);
		if (k->active == LUKS_KEY_ENABLED && k->iterations == 0)
			return luks_err(err, -EINVAL,
					"LUKS1 key slot %d has a zero iteration count", i);
		order[i] = i;
	}
	/* sort by offset and check that no two slots overlap */
	for (int i = 1; i < LUKS_NUMKEYS; i++)
		for (int j = i;
		     j > 0 && p->kb[order[j]].key_material < p->kb[order[j - 1]].key_material;
		     j--) {
			int t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (int i = 1; i < LUKS_NUMKEYS; i++)
		if ((uint64_t)p->kb[order[i - 1]].key_material + af > p->kb[order[i]].key_material)
			return luks_err(err, -EINVAL, "LUKS1 key slots %d and %d overlap",
					order[i - 1], order[i]);
	if (dev_size && luks1_area_end(p) > dev_size)
		return luks_err(err, -EINVAL,
				"device too small for the LUKS1 key slots (%llu bytes needed)",
				(unsigned long long)luks1_area_end(p));
	return 0;
}

void luks1_encode(const struct luks1_phdr *p, uint8_t *buf)
{
	memset(buf, 0, LUKS1_PHDR_DISK_SIZE);
	memcpy(buf + LUKS1_OFF_MAGIC, LUKS_MAGIC, LUKS_MAGIC_L);
	buf[LUKS1_OFF_VERSION + 1] = LUKS1_VERSION;
	memcpy(buf + LUKS1_OFF_CIPHER_NAME, p->cipher_name, LUKS_CIPHERNAME_L);
	memcpy(buf + LUKS1_OFF_CIPHER_MODE, p->cipher_mode, LUKS_CIPHERMODE_L);
	memcpy(buf + LUKS1_OFF_HASH_SPEC, p->hash_spec, LUKS_HASHSPEC_L);
	put32(buf + LUKS1_OFF_PAYLOAD_OFFSET, p->payload_offset);
	put32(buf + LUKS1_OFF_KEY_BYTES, p->key_bytes);
	memcpy(buf + LUKS1_OFF_MK_DIGEST, p->mk_digest, LUKS_DIGESTSIZE);
	memcpy(buf + LUKS1_OFF_MK_DIGEST_SALT, p->mk_digest_salt, LUKS_SALTSIZE);
	put32(buf + LUKS1_OFF_MK_DIGEST_ITER, p->mk_digest_iter);
	memcpy(buf + LUKS1_OFF_UUID, p->uuid, UUID_STRING_L);
	for (int i = 0; i < LUKS_NUMKEYS; i++) {
		uint8_t *k = buf + LUKS1_OFF_KEYBLOCK + i * LUKS1_KEYBLOCK_SIZE;

		put32(k + LUKS1_KB_OFF_ACTIVE, p->kb[i].active);
		put32(k + LUKS1_KB_OFF_ITERATIONS, p->kb[i].iterations);
		memcpy(k + LUKS1_KB_OFF_SALT, p->kb[i].salt, LUKS_SALTSIZE);
		put32(k + LUKS1_KB_OFF_KEY_MATERIAL, p->kb[i].key_material);
		put32(k + LUKS1_KB_OFF_STRIPES, p->kb[i].stripes);
	}
}

int luks1_write(struct luks_hdr *h, struct strbuf *err)
{
	uint8_t buf[LUKS1_PHDR_DISK_SIZE];
	int r;

	luks1_encode(&h->v1, buf);
	r = bs_bdev_write(h->dev, buf, sizeof(buf), 0, BS_IO_FUA);
	if (!r)
		r = bs_bdev_flush(h->dev);
	if (r)
		return luks_err(err, r, "%s: cannot write the LUKS1 header: %s", h->dev->name,
				strerror(-r));
	return 0;
}

static int mk_digest(const struct luks1_phdr *p, const uint8_t *vk, uint8_t *out)
{
	struct bs_pbkdf pb = {.type = BS_PBKDF2, .iterations = p->mk_digest_iter};

	snprintf(pb.hash, sizeof(pb.hash), "%s", p->hash_spec);
	return bs_pbkdf_derive(&pb, vk, p->key_bytes, p->mk_digest_salt, LUKS_SALTSIZE, out,
			       LUKS_DIGESTSIZE);
}

int luks1_verify_key(struct luks_hdr *h, const uint8_t *vk, size_t vk_len)
{
	uint8_t d[LUKS_DIGESTSIZE];

	if (vk_len != h->v1.key_bytes || mk_digest(&h->v1, vk, d))
		return -EPERM;
	return CRYPTO_memcmp(d, h->v1.mk_digest, LUKS_DIGESTSIZE) ? -EPERM : 0;
}

/* Tries one slot: 0, -EPERM (wrong passphrase) or another error. */
static int try_slot(struct luks_hdr *h, int i, const void *pass, size_t pass_len, uint8_t *vk,
		    struct strbuf *err)
{
	const struct luks1_phdr *p = &h->v1;
	struct bs_pbkdf pb = {.type = BS_PBKDF2, .iterations = p->kb[i].iterations};
	uint8_t *key = bs_secure_alloc(p->key_bytes);
	char cipher[72];
	int r;

	if (!key)
		return luks_err(err, -ENOMEM, "out of memory");
	snprintf(pb.hash, sizeof(pb.hash), "%s", p->hash_spec);
	r = bs_pbkdf_derive(&pb, pass, pass_len, p->kb[i].salt, LUKS_SALTSIZE, key, p->key_bytes);
	if (r)
		luks_err(err, r, "key slot %d: PBKDF2 failed", i);
	else
		r = luks_material_load(h->dev, (uint64_t)p->kb[i].key_material * LUKS_SECTOR_SIZE,
				       cipher_of(p, cipher, sizeof(cipher)), key, p->key_bytes, vk,
				       p->key_bytes, p->kb[i].stripes, p->hash_spec, err);
	bs_secure_free(key);
	if (!r)
		r = luks1_verify_key(h, vk, p->key_bytes);
	return r;
}

int luks1_unlock(struct luks_hdr *h, int slot, const void *pass, size_t pass_len, uint8_t *vk,
		 int *slot_used, struct strbuf *err)
{
	int tried = 0;

	for (int i = 0; i < LUKS_NUMKEYS; i++) {
		int r;

		if ((slot != LUKS_ANY_SLOT && i != slot) || h->v1.kb[i].active != LUKS_KEY_ENABLED)
			continue;
		tried++;
		r = try_slot(h, i, pass, pass_len, vk, err);
		if (!r) {
			*slot_used = i;
			return 0;
		}
		if (r != -EPERM)
			return r;
	}
	if (!tried)
		return luks_err(err, -ENOENT, "No usable keyslot is available.");
	return luks_err(err, -EPERM, "No key available with this passphrase.");
}

int luks1_add_key(struct luks_hdr *h, int slot, const uint8_t *vk, const void *pass,
		  size_t pass_len, const struct luks_pbkdf_opts *pb, int *slot_out,
		  struct strbuf *err)
{
	struct luks1_phdr *p = &h->v1;
	struct luks_pbkdf_opts o = *pb;
	struct bs_pbkdf kdf;
	uint8_t *key;
	char cipher[72];
	int r;

	if (slot == LUKS_ANY_SLOT) {
		for (int i = 0; i < LUKS_NUMKEYS && slot < 0; i++)
			if (p->kb[i].active == LUKS_KEY_DISABLED)
				slot = i;
		if (slot < 0)
			return luks_err(err, -EINVAL, "All key slots full.");
	} else if (slot < 0 || slot >= LUKS_NUMKEYS) {
		return luks_err(err, -EINVAL, "Key slot %d is invalid (LUKS1 has slots 0 to 7).",
				slot);
	} else if (p->kb[slot].active != LUKS_KEY_DISABLED) {
		return luks_err(err, -EINVAL, "Key slot %d is full, please select another one.",
				slot);
	}
	/* LUKS1 key slots use the header's hash */
	snprintf(o.hash, sizeof(o.hash), "%s", p->hash_spec);
	r = luks_pbkdf_resolve(&o, 1, p->key_bytes, &kdf, err);
	if (r)
		return r;
	if (kdf.iterations < LUKS_SLOT_ITERATIONS_MIN)
		kdf.iterations = LUKS_SLOT_ITERATIONS_MIN;
	key = bs_secure_alloc(p->key_bytes);
	if (!key)
		return luks_err(err, -ENOMEM, "out of memory");
	if (RAND_bytes(p->kb[slot].salt, LUKS_SALTSIZE) != 1)
		r = luks_err(err, -EIO, "cannot read random bytes");
	if (!r && (r = bs_pbkdf_derive(&kdf, pass, pass_len, p->kb[slot].salt, LUKS_SALTSIZE, key,
				       p->key_bytes)))
		luks_err(err, r, "PBKDF2 failed");
	if (!r)
		r = luks_material_store(h->dev,
					(uint64_t)p->kb[slot].key_material * LUKS_SECTOR_SIZE,
					cipher_of(p, cipher, sizeof(cipher)), key, p->key_bytes, vk,
					p->key_bytes, p->kb[slot].stripes, p->hash_spec, err);
	bs_secure_free(key);
	if (r) {
		memset(p->kb[slot].salt, 0, LUKS_SALTSIZE);
		return r;
	}
	p->kb[slot].iterations = kdf.iterations;
	p->kb[slot].active = LUKS_KEY_ENABLED;
	r = luks1_write(h, err);
	if (r)
		return r;
	if (slot_out)
		*slot_out = slot;
	return 0;
}

int luks1_kill_slot(struct luks_hdr *h, int slot, bool write, struct strbuf *err)
{
	struct luks1_phdr *p = &h->v1;
	int r;

	if (slot < 0 || slot >= LUKS_NUMKEYS)
		return luks_err(err, -EINVAL, "Key slot %d is invalid (LUKS1 has slots 0 to 7).",
				slot);
	if (p->kb[slot].active != LUKS_KEY_ENABLED)
		return luks_err(err, -EINVAL, "Keyslot %d is not active.", slot);
	r = luks_wipe(h->dev, (uint64_t)p->kb[slot].key_material * LUKS_SECTOR_SIZE,
		      luks_af_sectors(p->key_bytes, p->kb[slot].stripes) * LUKS_SECTOR_SIZE, true,
		      err);
	if (r)
		return r;
	p->kb[slot].active = LUKS_KEY_DISABLED;
	p->kb[slot].iterations = 0;
	memset(p->kb[slot].salt, 0, LUKS_SALTSIZE);
	return write ? luks1_write(h, err) : 0;
}

int luks1_format(struct luks_hdr *h, uint64_t data_size, const struct luks_format_opts *o,
		 const struct luks_pbkdf_opts *slot_pb, const uint8_t *vk, size_t vk_len,
		 const void *pass, size_t pass_len, int *slot, struct strbuf *err)
{
	struct luks1_phdr *p = &h->v1;
	const char *cipher = o->cipher ? o->cipher : LUKS_DEFAULT_CIPHER;
	const char *hash = o->pbkdf.hash[0] ? o->pbkdf.hash : LUKS_DEFAULT_HASH;
	uint64_t af = luks_af_sectors(vk_len, LUKS_STRIPES), end = LUKS_ALIGN_KEYSLOTS / 512;
	uint64_t payload;
	int r;

	memset(p, 0, sizeof(*p));
	if (luks_cipher_split(cipher, p->cipher_name, sizeof(p->cipher_name), p->cipher_mode,
			      sizeof(p->cipher_mode)))
		return luks_err(err, -EINVAL, "cipher %s cannot be stored in a LUKS1 header",
				cipher);
	if (luks_hash_size(hash) < LUKS_DIGESTSIZE || strlen(hash) >= LUKS_HASHSPEC_L)
		return luks_err(err, -EINVAL, "Requested LUKS hash %s is not supported.", hash);
	snprintf(p->hash_spec, sizeof(p->hash_spec), "%s", hash);
	p->key_bytes = (uint32_t)vk_len;
	for (int i = 0; i < LUKS_NUMKEYS; i++) {
		p->kb[i].active = LUKS_KEY_DISABLED;
		p->kb[i].key_material = (uint32_t)end;
		p->kb[i].stripes = LUKS_STRIPES;
		end = (end + af + LUKS_ALIGN_KEYSLOTS / 512 - 1) / (LUKS_ALIGN_KEYSLOTS / 512) *
		      (LUKS_ALIGN_KEYSLOTS / 512);
	}
	if (o->offset_set)
		payload = o->data_offset / LUKS_SECTOR_SIZE;
	else if (o->detached)
		payload = 0;
	else
		payload = (end + LUKS_DATA_ALIGNMENT / 512 - 1) / (LUKS_DATA_ALIGNMENT / 512) *
			  (LUKS_DATA_ALIGNMENT / 512);
	if (payload > UINT32_MAX)
		return luks_err(err, -EINVAL, "data offset too large for LUKS1");
	if (payload && payload < end && !o->detached)
		return luks_err(err, -EINVAL,
				"Data offset for LUKS header must be either 0 or higher than "
				"header size (%llu sectors).",
				(unsigned long long)end);
	if (!payload && !o->detached)
		return luks_err(err, -EINVAL, "data offset 0 needs a detached header (--header)");
	p->payload_offset = (uint32_t)payload;
	if (payload * LUKS_SECTOR_SIZE >= data_size)
		return luks_err(err, -EINVAL, "Device is too small (data offset %llu bytes).",
				(unsigned long long)(payload * LUKS_SECTOR_SIZE));
	if (bs_bdev_size(h->dev) < end * LUKS_SECTOR_SIZE)
		return luks_err(err, -EINVAL,
				"Device %s is too small. (LUKS1 requires at least %llu bytes.)",
				h->dev->name, (unsigned long long)(end * LUKS_SECTOR_SIZE));
	if (o->uuid)
		snprintf(p->uuid, sizeof(p->uuid), "%s", o->uuid);
	else
		luks_uuid_generate(p->uuid);
	for (char *c = p->uuid; *c; c++)
		if (*c >= 'A' && *c <= 'F')
			*c = (char)(*c - 'A' + 'a');

	r = luks_digest_iterations(&o->pbkdf, hash, vk_len, &p->mk_digest_iter, err);
	if (r)
		return r;
	if (RAND_bytes(p->mk_digest_salt, LUKS_SALTSIZE) != 1)
		return luks_err(err, -EIO, "cannot read random bytes");
	if (mk_digest(p, vk, p->mk_digest))
		return luks_err(err, -EINVAL, "cannot compute the volume key digest with %s", hash);

	/* zero the header area (up to the data, unless detached), key slot areas random */
	r = luks_wipe(h->dev, 0,
		      o->detached || !payload ? end * LUKS_SECTOR_SIZE : payload * LUKS_SECTOR_SIZE,
		      false, err);
	for (int i = 0; i < LUKS_NUMKEYS && !r; i++)
		r = luks_wipe(h->dev, (uint64_t)p->kb[i].key_material * LUKS_SECTOR_SIZE,
			      af * LUKS_SECTOR_SIZE, true, err);
	if (r)
		return r;
	return luks1_add_key(h, o->keyslot, vk, pass, pass_len, slot_pb, slot, err);
}

void luks1_dump(const struct luks_hdr *h, const char *devname, struct strbuf *out)
{
	const struct luks1_phdr *p = &h->v1;

	sb_printf(out, "LUKS header information for %s\n\n", devname);
	sb_printf(out, "Version:       \t%d\n", LUKS1_VERSION);
	sb_printf(out, "Cipher name:   \t%s\n", p->cipher_name);
	sb_printf(out, "Cipher mode:   \t%s\n", p->cipher_mode);
	sb_printf(out, "Hash spec:     \t%s\n", p->hash_spec);
	sb_printf(out, "Payload offset:\t%u\n", p->payload_offset);
	sb_printf(out, "MK bits:       \t%u\n", p->key_bytes * 8);
	sb_puts(out, "MK digest:     \t");
	luks_hexdump(out, p->mk_digest, LUKS_DIGESTSIZE, 0, "");
	sb_puts(out, "MK salt:       \t");
	luks_hexdump(out, p->mk_digest_salt, LUKS_SALTSIZE, 16, "               \t");
	sb_printf(out, "MK iterations: \t%u\n", p->mk_digest_iter);
	sb_printf(out, "UUID:          \t%s\n\n", p->uuid);
	for (int i = 0; i < LUKS_NUMKEYS; i++) {
		const struct luks1_keyblock *k = &p->kb[i];

		if (k->active != LUKS_KEY_ENABLED) {
			sb_printf(out, "Key Slot %d: DISABLED\n", i);
			continue;
		}
		sb_printf(out, "Key Slot %d: ENABLED\n", i);
		sb_printf(out, "\tIterations:         \t%u\n", k->iterations);
		sb_puts(out, "\tSalt:               \t");
		luks_hexdump(out, k->salt, LUKS_SALTSIZE, 16, "\t                      \t");
		sb_printf(out, "\tKey material offset:\t%u\n", k->key_material);
		sb_printf(out, "\tAF stripes:            \t%u\n", k->stripes);
	}
}
