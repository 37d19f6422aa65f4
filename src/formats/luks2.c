/*
 * luks2.c - LUKS2: the two binary headers with their JSON areas (specification section 2),
 * key slots of type luks2 (3.2), the pbkdf2 digest (3.4), formatting and dumping.
 *
 * Reading: the primary header at 0; the secondary at the primary's hdr_size, or, when the
 * primary is unusable, at each offset the specification allows.  A copy is good when its
 * magic, version, offset and size are right, its checksum (the hash named in the header over
 * the whole copy with the checksum field zeroed) matches and its JSON checks out.  Of two
 * good copies the one with the higher seqid wins.  Writing: seqid + 1, primary then
 * secondary, each with its own salt.
 */
#include <endian.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/luks_int.h"
#include "util/secmem.h"

static const uint64_t hdr2_offsets[] = LUKS2_HDR2_OFFSETS;

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static bool valid_hdr_size(uint64_t s)
{
	for (size_t i = 0; i < sizeof(hdr2_offsets) / sizeof(hdr2_offsets[0]); i++)
		if (s == hdr2_offsets[i])
			return true;
	return false;
}

/* One header copy as read. */
struct copy {
	uint64_t hdr_size;
	uint64_t seqid;
	char label[LUKS2_LABEL_L];
	char subsystem[LUKS2_LABEL_L];
	char csum_alg[LUKS2_CHECKSUM_ALG_L];
	char uuid[LUKS2_UUID_L];
	uint8_t salt[LUKS2_SALT_L];
	struct json_object *json;
	struct luks2_meta meta;
	bool csum_ok; /* the binary header and checksum are fine (the JSON may not be) */
};

static bool text_field(char *dst, const uint8_t *src, size_t n)
{
	if (!memchr(src, '\0', n))
		return false;
	memcpy(dst, src, n);
	return true;
}

static int checksum(const char *alg, const uint8_t *buf, size_t len, uint8_t *out)
{
	const EVP_MD *md = EVP_get_digestbyname(alg);
	unsigned n = 0;

	if (!md || EVP_MD_get_size(md) > LUKS2_CHECKSUM_L ||
	    !EVP_Digest(buf, len, out, &n, md, NULL))
		return -EINVAL;
	return (int)n;
}

/*
 * Reads the copy at OFF.  0 when good; -ENOENT when there is no header magic there; -EIO for
 * I/O errors; -EINVAL otherwise.  WHY says what was wrong.
 */
static int read_copy(struct bs_bdev *dev, uint64_t off, bool secondary, struct copy *c,
		     struct strbuf *why)
{
	uint64_t size = bs_bdev_size(dev);
	uint8_t bin[LUKS2_HDR_BIN_LEN], sum[LUKS2_CHECKSUM_L];
	uint8_t *buf;
	int r, n;

	memset(c, 0, sizeof(*c));
	if (off > size || size - off < LUKS2_HDR_BIN_LEN)
		return luks_err(why, -ENOENT, "beyond the end of the device");
	r = bs_bdev_read(dev, bin, sizeof(bin), off);
	if (r)
		return luks_err(why, -EIO, "cannot read at offset %llu: %s",
				(unsigned long long)off, strerror(-r));
	if (memcmp(bin + LUKS2_OFF_MAGIC, secondary ? LUKS2_MAGIC_2ND : LUKS2_MAGIC_1ST,
		   LUKS2_MAGIC_L))
		return luks_err(why, -ENOENT, "bad magic");
	if ((bin[LUKS2_OFF_VERSION] << 8 | bin[LUKS2_OFF_VERSION + 1]) != LUKS2_VERSION)
		return luks_err(why, -EINVAL, "version %u is not 2",
				bin[LUKS2_OFF_VERSION] << 8 | bin[LUKS2_OFF_VERSION + 1]);
	if (get64(bin + LUKS2_OFF_HDR_OFFSET) != off)
		return luks_err(why, -EINVAL, "header offset field %llu does not match %llu",
				(unsigned long long)get64(bin + LUKS2_OFF_HDR_OFFSET),
				(unsigned long long)off);
	c->hdr_size = get64(bin + LUKS2_OFF_HDR_SIZE);
	if (!valid_hdr_size(c->hdr_size))
		return luks_err(why, -EINVAL, "invalid header size %llu",
				(unsigned long long)c->hdr_size);
	if (secondary && off != c->hdr_size)
		return luks_err(why, -EINVAL, "secondary header at %llu but header size %llu",
				(unsigned long long)off, (unsigned long long)c->hdr_size);
	if (size - off < c->hdr_size)
		return luks_err(why, -EINVAL, "truncated by the end of the device");
	c->seqid = get64(bin + LUKS2_OFF_SEQID);
	if (!text_field(c->label, bin + LUKS2_OFF_LABEL, LUKS2_LABEL_L) ||
	    !text_field(c->subsystem, bin + LUKS2_OFF_SUBSYSTEM, LUKS2_LABEL_L) ||
	    !text_field(c->csum_alg, bin + LUKS2_OFF_CSUM_ALG, LUKS2_CHECKSUM_ALG_L) ||
	    !text_field(c->uuid, bin + LUKS2_OFF_UUID, LUKS2_UUID_L))
		return luks_err(why, -EINVAL, "unterminated text field");
	if (!luks_printable(c->label, LUKS2_LABEL_L) ||
	    !luks_printable(c->subsystem, LUKS2_LABEL_L) ||
	    !luks_printable(c->csum_alg, LUKS2_CHECKSUM_ALG_L) ||
	    !luks_printable(c->uuid, LUKS2_UUID_L))
		return luks_err(why, -EINVAL, "control characters in a text field");
	memcpy(c->salt, bin + LUKS2_OFF_SALT, LUKS2_SALT_L);
	buf = malloc(c->hdr_size);
	if (!buf)
		return luks_err(why, -ENOMEM, "out of memory");
	memcpy(buf, bin, sizeof(bin));
	r = bs_bdev_read(dev, buf + LUKS2_HDR_BIN_LEN, c->hdr_size - LUKS2_HDR_BIN_LEN,
			 off + LUKS2_HDR_BIN_LEN);
	if (r) {
		free(buf);
		return luks_err(why, -EIO, "cannot read the JSON area: %s", strerror(-r));
	}
	memset(buf + LUKS2_OFF_CSUM, 0, LUKS2_CHECKSUM_L);
	n = checksum(c->csum_alg, buf, c->hdr_size, sum);
	if (n < 0) {
		free(buf);
		return luks_err(why, -EINVAL, "unsupported checksum algorithm \"%s\"", c->csum_alg);
	}
	if (CRYPTO_memcmp(sum, bin + LUKS2_OFF_CSUM, (size_t)n)) {
		free(buf);
		return luks_err(why, -EINVAL, "checksum mismatch");
	}
	c->csum_ok = true;
	r = luks2_json_parse((const char *)buf + LUKS2_HDR_BIN_LEN, c->hdr_size - LUKS2_HDR_BIN_LEN,
			     &c->json, why);
	free(buf);
	if (r)
		return r;
	r = luks2_json_check(c->json, c->hdr_size, size, &c->meta, why);
	if (r) {
		json_object_put(c->json);
		c->json = NULL;
		return r == -ENOMEM || r == -ENOTSUP ? r : -EINVAL;
	}
	return 0;
}

/* Writes copy WHICH (0 primary, 1 secondary) of H's header with TEXT as its JSON. */
static int write_copy(struct luks_hdr *h, int which, const char *text, struct strbuf *err)
{
	struct luks2_state *s = &h->v2;
	uint64_t off = which ? s->hdr_size : 0;
	uint8_t *buf = calloc(1, s->hdr_size);
	uint8_t sum[LUKS2_CHECKSUM_L];
	int n, r;

	if (!buf)
		return luks_err(err, -ENOMEM, "out of memory");
	memcpy(buf + LUKS2_OFF_MAGIC, which ? LUKS2_MAGIC_2ND : LUKS2_MAGIC_1ST, LUKS2_MAGIC_L);
	buf[LUKS2_OFF_VERSION + 1] = LUKS2_VERSION;
	put64(buf + LUKS2_OFF_HDR_SIZE, s->hdr_size);
	put64(buf + LUKS2_OFF_SEQID, s->seqid);
	memcpy(buf + LUKS2_OFF_LABEL, s->label, LUKS2_LABEL_L);
	memcpy(buf + LUKS2_OFF_CSUM_ALG, s->csum_alg, LUKS2_CHECKSUM_ALG_L);
	memcpy(buf + LUKS2_OFF_SALT, s->salt[which], LUKS2_SALT_L);
	memcpy(buf + LUKS2_OFF_UUID, s->uuid, LUKS2_UUID_L);
	memcpy(buf + LUKS2_OFF_SUBSYSTEM, s->subsystem, LUKS2_LABEL_L);
	put64(buf + LUKS2_OFF_HDR_OFFSET, off);
	memcpy(buf + LUKS2_HDR_BIN_LEN, text, strlen(text));
	n = checksum(s->csum_alg, buf, s->hdr_size, sum);
	if (n < 0) {
		free(buf);
		return luks_err(err, -EINVAL, "unsupported checksum algorithm \"%s\"", s->csum_alg);
	}
	memcpy(buf + LUKS2_OFF_CSUM, sum, (size_t)n);
	r = bs_bdev_write(h->dev, buf, s->hdr_size, off, BS_IO_FUA);
	free(buf);
	if (!r)
		r = bs_bdev_flush(h->dev);
	if (r)
		return luks_err(err, r, "%s: cannot write the %s LUKS2 header: %s", h->dev->name,
				which ? "secondary" : "primary", strerror(-r));
	return 0;
}

int luks2_write(struct luks_hdr *h, struct strbuf *err)
{
	struct luks2_state *s = &h->v2;
	struct luks2_meta *m = malloc(sizeof(*m));
	const char *text;
	int r;

	if (!m)
		return luks_err(err, -ENOMEM, "out of memory");
	/* what is written must read back: check it as a reader would */
	r = luks2_json_check(s->json, s->hdr_size, bs_bdev_size(h->dev), m, err);
	if (r) {
		free(m);
		return r;
	}
	s->meta = *m;
	free(m);
	text = luks2_json_text(s->json);
	s->seqid++;
	r = write_copy(h, 0, text, err);
	if (!r)
		r = write_copy(h, 1, text, err);
	return r;
}

static void take_copy(struct luks_hdr *h, struct copy *c)
{
	struct luks2_state *s = &h->v2;

	s->hdr_size = c->hdr_size;
	s->seqid = c->seqid;
	memcpy(s->label, c->label, sizeof(s->label));
	memcpy(s->subsystem, c->subsystem, sizeof(s->subsystem));
	memcpy(s->csum_alg, c->csum_alg, sizeof(s->csum_alg));
	memcpy(s->uuid, c->uuid, sizeof(s->uuid));
	s->json = c->json;
	s->meta = c->meta;
	c->json = NULL;
}

int luks2_load(struct luks_hdr *h, bool repair, struct strbuf *err)
{
	struct strbuf why1 = STRBUF_INIT, why2 = STRBUF_INIT;
	struct copy *c1 = calloc(1, sizeof(*c1)), *c2 = calloc(1, sizeof(*c2));
	int r1, r2 = -ENOENT, r = 0, good;

	if (!c1 || !c2) {
		free(c1);
		free(c2);
		return luks_err(err, -ENOMEM, "out of memory");
	}
	r1 = read_copy(h->dev, 0, false, c1, &why1);
	if (c1->csum_ok) {
		/* the primary's binary header is sound: its size locates the secondary */
		r2 = read_copy(h->dev, c1->hdr_size, true, c2, &why2);
	} else {
		/* no trustworthy size: try every offset the specification allows */
		for (size_t i = 0; i < sizeof(hdr2_offsets) / sizeof(hdr2_offsets[0]); i++) {
			struct strbuf w = STRBUF_INIT;
			int x = read_copy(h->dev, hdr2_offsets[i], true, c2, &w);

			if (x != -ENOENT || !i) {
				sb_reset(&why2);
				sb_puts(&why2, sb_str(&w));
				r2 = x;
			}
			sb_free(&w);
			if (x != -ENOENT)
				break;
		}
	}
	if (r1 == -ENOMEM || r2 == -ENOMEM) {
		r = luks_err(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (r1 == -ENOENT && r2 == -ENOENT) {
		r = luks_err(err, -ENOENT, "no LUKS2 header");
		goto out;
	}
	if (r1 == -ENOTSUP || r2 == -ENOTSUP) {
		/* a sound copy that needs what is not implemented: never fall back to the other */
		r = luks_err(err, -ENOTSUP, "%s: %s", h->dev->name,
			     sb_str(r1 == -ENOTSUP ? &why1 : &why2));
		goto out;
	}
	if (r1 && r2) {
		if (!strcmp(sb_str(&why1), sb_str(&why2)))
			r = luks_err(err, -EINVAL, "%s: LUKS2 header is damaged: %s (both copies)",
				     h->dev->name, sb_str(&why1));
		else
			r = luks_err(err, -EINVAL,
				     "%s: LUKS2 header is damaged: primary: %s; secondary: %s",
				     h->dev->name, sb_str(&why1), sb_str(&why2));
		goto out;
	}
	/* the good copy; of two good ones the newer */
	good = r1 ? 1 : r2 ? 0 : c2->seqid > c1->seqid ? 1 : 0;
	take_copy(h, good ? c2 : c1);
	memcpy(h->v2.salt[0], c1->salt, LUKS2_SALT_L);
	memcpy(h->v2.salt[1], c2->salt, LUKS2_SALT_L);
	if ((good ? r1 : r2) && RAND_bytes(h->v2.salt[!good], LUKS2_SALT_L) != 1)
		memset(h->v2.salt[!good], 0, LUKS2_SALT_L); /* a rebuilt copy gets a new salt */
	if (repair && !h->dev->readonly && (r1 || r2 || c1->seqid != c2->seqid))
		r = write_copy(h, !good, luks2_json_text(h->v2.json), err);
out:
	json_object_put(c1->json);
	json_object_put(c2->json);
	free(c1);
	free(c2);
	sb_free(&why1);
	sb_free(&why2);
	return r;
}

/* ---- layout and format ------------------------------------------------------------------ */

int luks2_layout(const struct luks_format_opts *o, uint64_t *hdr_size, uint64_t *ks_size,
		 uint64_t *data_offset, struct strbuf *err)
{
	uint64_t hs = o->metadata_size ? o->metadata_size : LUKS2_HDR_16K_LEN, min, ks, off;

	if (!valid_hdr_size(hs))
		return luks_err(err, -EINVAL,
				"invalid LUKS2 metadata size %llu (16 KiB, 32 KiB, ... 4 MiB)",
				(unsigned long long)hs);
	min = 2 * hs;
	off = o->offset_set ? o->data_offset : 0;
	if (off % LUKS_SECTOR_SIZE)
		return luks_err(err, -EINVAL, "data offset not a multiple of 512 bytes");
	if (off && off < min)
		return luks_err(err, -EINVAL, "Requested data offset is too small.");
	ks = o->keyslots_size;
	if (!ks && off)
		ks = off - min;
	if (ks > LUKS2_MAX_KEYSLOTS_SIZE)
		ks = LUKS2_MAX_KEYSLOTS_SIZE;
	ks -= ks % LUKS2_KEYSLOT_ALIGN;
	if (!ks)
		ks = LUKS2_DEFAULT_HDR_SIZE - min;
	if (off && ks + min > off)
		ks = (off - min) - (off - min) % LUKS2_KEYSLOT_ALIGN;
	if (o->keyslots_size &&
	    (o->keyslots_size % LUKS2_KEYSLOT_ALIGN || o->keyslots_size > LUKS2_MAX_KEYSLOTS_SIZE))
		return luks_err(
		    err, -EINVAL,
		    "invalid keyslots area size %llu (a multiple of 4 KiB up to 128 MiB)",
		    (unsigned long long)o->keyslots_size);
	if (!ks)
		return luks_err(err, -EINVAL, "no room for key slots before the data offset");
	if (!o->offset_set && !o->detached)
		off = (min + ks + LUKS_DATA_ALIGNMENT - 1) / LUKS_DATA_ALIGNMENT *
		      LUKS_DATA_ALIGNMENT;
	*hdr_size = hs;
	*ks_size = ks;
	*data_offset = off;
	return 0;
}

int luks2_default_segment(const struct luks_hdr *h)
{
	for (unsigned i = 0; i < h->v2.meta.nsegments; i++)
		if (h->v2.meta.seg[i].crypt)
			return (int)i;
	return -1;
}

/* The digest that covers the default segment, or -1. */
static int segment_digest(const struct luks_hdr *h)
{
	int seg = luks2_default_segment(h);

	for (int d = 0; seg >= 0 && d < LUKS2_DIGEST_MAX; d++)
		if (h->v2.meta.dig[d].used && (h->v2.meta.dig[d].segments & (1u << seg)))
			return d;
	return -1;
}

static int digest_compute(const struct luks2_digest *d, const uint8_t *vk, size_t vk_len,
			  uint8_t *out)
{
	struct bs_pbkdf p = {.type = BS_PBKDF2, .iterations = d->iterations};

	snprintf(p.hash, sizeof(p.hash), "%s", d->hash);
	return bs_pbkdf_derive(&p, vk, vk_len, d->salt, d->salt_len, out, d->digest_len);
}

int luks2_verify_key(struct luks_hdr *h, const uint8_t *vk, size_t vk_len)
{
	int d = segment_digest(h);
	uint8_t out[64];

	if (d < 0 || digest_compute(&h->v2.meta.dig[d], vk, vk_len, out))
		return -EPERM;
	return CRYPTO_memcmp(out, h->v2.meta.dig[d].digest, h->v2.meta.dig[d].digest_len) ? -EPERM
											  : 0;
}

int luks2_format(struct luks_hdr *h, uint64_t data_size, const struct luks_format_opts *o,
		 const struct luks_pbkdf_opts *slot_pb, const uint8_t *vk, size_t vk_len,
		 const void *pass, size_t pass_len, int *slot, struct strbuf *err)
{
	struct luks2_state *s = &h->v2;
	const char *cipher = o->cipher ? o->cipher : LUKS_DEFAULT_CIPHER;
	const char *hash = o->pbkdf.hash[0] ? o->pbkdf.hash : LUKS_DEFAULT_HASH;
	unsigned sector = o->sector_size ? o->sector_size : LUKS_SECTOR_SIZE;
	struct json_object *seg, *segs, *cfg, *digs;
	struct luks2_digest d = {.used = true, .segments = 1};
	uint64_t hs, ks, off;
	int r;

	memset(s, 0, sizeof(*s));
	r = o->integrity ? luks_integrity_key_check(cipher, o->integrity, vk_len, err)
			 : luks_cipher_check(cipher, vk_len, err);
	if (r)
		return r;
	if (strlen(cipher) >= sizeof(s->meta.seg[0].cipher))
		return luks_err(err, -EINVAL, "cipher specification too long");
	if (sector < LUKS_SECTOR_SIZE || sector > LUKS2_MAX_SECTOR_SIZE || (sector & (sector - 1)))
		return luks_err(err, -EINVAL, "Unsupported encryption sector size.");
	if (!luks_hash_size(hash) || strlen(hash) >= sizeof(d.hash))
		return luks_err(err, -EINVAL, "Requested hash %s is not supported.", hash);
	if ((o->label && strlen(o->label) >= LUKS2_LABEL_L) ||
	    (o->subsystem && strlen(o->subsystem) >= LUKS2_LABEL_L))
		return luks_err(err, -EINVAL, "label or subsystem longer than %d characters",
				LUKS2_LABEL_L - 1);
	r = luks2_layout(o, &hs, &ks, &off, err);
	if (r)
		return r;
	if (off % sector)
		return luks_err(err, -EINVAL, "data offset not aligned to the sector size %u",
				sector);
	if (off >= data_size)
		return luks_err(err, -EINVAL,
				"Device is too small (data offset %llu bytes, device %llu bytes).",
				(unsigned long long)off, (unsigned long long)data_size);
	if ((data_size - off) % sector)
		return luks_err(err, -EINVAL,
				"Device size is not aligned to requested sector size.");
	if (bs_bdev_size(h->dev) < 2 * hs + ks)
		return luks_err(err, -EINVAL,
				"Device %s is too small for the LUKS2 header (%llu bytes).",
				h->dev->name, (unsigned long long)(2 * hs + ks));

	s->hdr_size = hs;
	strcpy(s->csum_alg, "sha256");
	if (o->label)
		strcpy(s->label, o->label);
	if (o->subsystem)
		strcpy(s->subsystem, o->subsystem);
	if (o->uuid)
		snprintf(s->uuid, sizeof(s->uuid), "%s", o->uuid);
	else
		luks_uuid_generate(s->uuid);
	for (char *c = s->uuid; *c; c++)
		if (*c >= 'A' && *c <= 'F')
			*c = (char)(*c - 'A' + 'a');
	if (RAND_bytes(s->salt[0], LUKS2_SALT_L) != 1 ||
	    RAND_bytes(s->salt[1], LUKS2_SALT_L) != 1 || RAND_bytes(d.salt, LUKS_SALTSIZE) != 1)
		return luks_err(err, -EIO, "cannot read random bytes");

	/* the volume key digest */
	strcpy(d.hash, hash);
	d.salt_len = LUKS_SALTSIZE;
	d.digest_len = luks_hash_size(hash);
	r = luks_digest_iterations(&o->pbkdf, hash, vk_len, &d.iterations, err);
	if (r)
		return r;
	if (digest_compute(&d, vk, vk_len, d.digest))
		return luks_err(err, -EINVAL, "cannot compute the volume key digest");

	s->json = json_object_new_object();
	segs = json_object_new_object();
	seg = json_object_new_object();
	cfg = json_object_new_object();
	digs = json_object_new_object();
	json_object_object_add(s->json, "keyslots", json_object_new_object());
	json_object_object_add(s->json, "tokens", json_object_new_object());
	json_object_object_add(seg, "type", json_object_new_string("crypt"));
	json_object_object_add(seg, "offset", luks2_json_u64(off));
	json_object_object_add(seg, "size", json_object_new_string("dynamic"));
	json_object_object_add(seg, "iv_tweak", json_object_new_string("0"));
	json_object_object_add(seg, "encryption", json_object_new_string(cipher));
	json_object_object_add(seg, "sector_size", json_object_new_int((int32_t)sector));
	if (o->integrity) {
		struct json_object *integ = json_object_new_object();

		json_object_object_add(integ, "type", json_object_new_string(o->integrity));
		json_object_object_add(integ, "journal_encryption", json_object_new_string("none"));
		json_object_object_add(integ, "journal_integrity", json_object_new_string("none"));
		json_object_object_add(seg, "integrity", integ);
	}
	json_object_object_add(segs, "0", seg);
	json_object_object_add(s->json, "segments", segs);
	json_object_object_add(digs, "0", luks2_json_digest(&d));
	json_object_object_add(s->json, "digests", digs);
	json_object_object_add(cfg, "json_size", luks2_json_u64(hs - LUKS2_HDR_BIN_LEN));
	json_object_object_add(cfg, "keyslots_size", luks2_json_u64(ks));
	json_object_object_add(s->json, "config", cfg);
	r = luks2_json_check(s->json, hs, bs_bdev_size(h->dev), &s->meta, err);
	if (r)
		return r;

	/* zero the metadata (and what lies between it and the data), key slot areas random */
	r = luks_wipe(h->dev, 0, 2 * hs, false, err);
	if (!r)
		r = luks_wipe(h->dev, 2 * hs, ks, true, err);
	if (!r && !o->detached && off > 2 * hs + ks)
		r = luks_wipe(h->dev, 2 * hs + ks, off - 2 * hs - ks, false, err);
	if (r)
		return r;
	return luks2_add_key(h, o->keyslot, vk, vk_len, pass, pass_len, slot_pb, slot, err);
}

/* ---- key slots -------------------------------------------------------------------------- */

/* The first gap of LEN bytes in the keyslots area, or -ENOSPC. */
static int find_area(const struct luks_hdr *h, uint64_t len, uint64_t *off)
{
	const struct luks2_meta *m = &h->v2.meta;
	uint64_t at = 2 * h->v2.hdr_size, end = at + m->keyslots_size;

	for (;;) {
		bool moved = false;

		for (int i = 0; i < LUKS2_KEYSLOTS_MAX; i++) {
			const struct luks2_keyslot *k = &m->ks[i];

			if (k->used && at < k->area_offset + k->area_size &&
			    k->area_offset < at + len) {
				at = k->area_offset + k->area_size;
				at = (at + LUKS2_KEYSLOT_ALIGN - 1) / LUKS2_KEYSLOT_ALIGN *
				     LUKS2_KEYSLOT_ALIGN;
				moved = true;
			}
		}
		if (!moved)
			break;
	}
	if (at + len > end)
		return -ENOSPC;
	*off = at;
	return 0;
}

static struct json_object *section(struct json_object *j, const char *name)
{
	struct json_object *o = NULL;

	json_object_object_get_ex(j, name, &o);
	return o;
}

int luks2_add_key(struct luks_hdr *h, int slot, const uint8_t *vk, size_t vk_len, const void *pass,
		  size_t pass_len, const struct luks_pbkdf_opts *pb, int *slot_out,
		  struct strbuf *err)
{
	struct luks2_meta *m = &h->v2.meta;
	int seg = luks2_default_segment(h), dig = segment_digest(h);
	struct luks2_keyslot ks = {.used = true, .stripes = LUKS_STRIPES, .digest = dig};
	struct bs_pbkdf kdf;
	struct strbuf tmp = STRBUF_INIT;
	uint8_t *key;
	char id[12];
	int r;

	if (seg < 0 || dig < 0)
		return luks_err(err, -EINVAL, "LUKS2 header has no crypt segment with a digest");
	if (luks2_verify_key(h, vk, vk_len))
		return luks_err(err, -EPERM, "Volume key does not match the volume.");
	if (slot == LUKS_ANY_SLOT) {
		for (int i = 0; i < LUKS2_KEYSLOTS_MAX && slot < 0; i++)
			if (!m->ks[i].used)
				slot = i;
		if (slot < 0)
			return luks_err(err, -EINVAL, "All key slots full.");
	} else if (slot < 0 || slot >= LUKS2_KEYSLOTS_MAX) {
		return luks_err(err, -EINVAL, "Key slot %d is invalid (LUKS2 has slots 0 to %d).",
				slot, LUKS2_KEYSLOTS_MAX - 1);
	} else if (m->ks[slot].used) {
		return luks_err(err, -EINVAL, "Key slot %d is full, please select another one.",
				slot);
	}
	/* the key slot area is encrypted like the data, if that cipher can be used here */
	snprintf(ks.area_cipher, sizeof(ks.area_cipher), "%s", m->seg[seg].cipher);
	ks.area_key_size = (uint32_t)vk_len;
	if (luks_cipher_check(ks.area_cipher, vk_len, &tmp)) {
		strcpy(ks.area_cipher, LUKS_DEFAULT_CIPHER);
		ks.area_key_size = 64;
	}
	sb_free(&tmp);
	ks.key_size = (uint32_t)vk_len;
	ks.area_size = luks_af_sectors(vk_len, LUKS_STRIPES) * LUKS_SECTOR_SIZE;
	ks.area_size =
	    (ks.area_size + LUKS2_KEYSLOT_ALIGN - 1) / LUKS2_KEYSLOT_ALIGN * LUKS2_KEYSLOT_ALIGN;
	if (find_area(h, ks.area_size, &ks.area_offset))
		return luks_err(err, -ENOSPC, "No space for new keyslot.");
	snprintf(ks.af_hash, sizeof(ks.af_hash), "%s", pb->hash[0] ? pb->hash : LUKS_DEFAULT_HASH);
	r = luks_pbkdf_resolve(pb, 2, ks.area_key_size, &kdf, err);
	if (r)
		return r;
	ks.kdf = kdf.type;
	snprintf(ks.kdf_hash, sizeof(ks.kdf_hash), "%s", kdf.hash);
	ks.iterations = kdf.iterations;
	ks.memory = kdf.memory_kb;
	ks.cpus = kdf.parallel;
	if (RAND_bytes(ks.salt, LUKS_SALTSIZE) != 1)
		return luks_err(err, -EIO, "cannot read random bytes");
	key = bs_secure_alloc(ks.area_key_size);
	if (!key)
		return luks_err(err, -ENOMEM, "out of memory");
	r = bs_pbkdf_derive(&kdf, pass, pass_len, ks.salt, LUKS_SALTSIZE, key, ks.area_key_size);
	if (r)
		luks_err(err, r,
			 r == -ENOMEM ? "Not enough available memory to open a keyslot."
				      : "%s failed",
			 bs_pbkdf_type_name(kdf.type));
	else
		r = luks_material_store(h->dev, ks.area_offset, ks.area_cipher, key,
					ks.area_key_size, vk, vk_len, LUKS_STRIPES, ks.af_hash,
					err);
	bs_secure_free(key);
	if (r)
		return r;
	snprintf(id, sizeof(id), "%d", slot);
	json_object_object_add(section(h->v2.json, "keyslots"), id, luks2_json_keyslot(&ks));
	luks2_json_assign(h->v2.json, slot, dig);
	r = luks2_write(h, err);
	if (r) {
		/* leave the tree as it was */
		struct strbuf e2 = STRBUF_INIT;

		json_object_object_del(section(h->v2.json, "keyslots"), id);
		luks2_json_unassign(h->v2.json, slot);
		luks2_json_check(h->v2.json, h->v2.hdr_size, 0, &h->v2.meta, &e2);
		sb_free(&e2);
		return r;
	}
	if (slot_out)
		*slot_out = slot;
	return 0;
}

int luks2_kill_slot(struct luks_hdr *h, int slot, struct strbuf *err)
{
	struct luks2_keyslot k;
	char id[12];
	int r;

	if (slot < 0 || slot >= LUKS2_KEYSLOTS_MAX)
		return luks_err(err, -EINVAL, "Key slot %d is invalid (LUKS2 has slots 0 to %d).",
				slot, LUKS2_KEYSLOTS_MAX - 1);
	if (!h->v2.meta.ks[slot].used)
		return luks_err(err, -EINVAL, "Keyslot %d is not active.", slot);
	k = h->v2.meta.ks[slot];
	r = luks_wipe(h->dev, k.area_offset, k.area_size, true, err);
	if (r)
		return r;
	snprintf(id, sizeof(id), "%d", slot);
	json_object_object_del(section(h->v2.json, "keyslots"), id);
	luks2_json_unassign(h->v2.json, slot);
	return luks2_write(h, err);
}

int luks2_change_key(struct luks_hdr *h, int slot, const uint8_t *vk, size_t vk_len,
		     const void *pass, size_t pass_len, const struct luks_pbkdf_opts *pb,
		     struct strbuf *err)
{
	struct json_object *slots = section(h->v2.json, "keyslots"), *obj;
	struct luks2_keyslot old;
	int tmp = -1, r;
	char id[12], tid[12];

	if (slot < 0 || slot >= LUKS2_KEYSLOTS_MAX || !h->v2.meta.ks[slot].used)
		return luks_err(err, -EINVAL, "Keyslot %d is not active.", slot);
	old = h->v2.meta.ks[slot];
	for (int i = 0; i < LUKS2_KEYSLOTS_MAX && tmp < 0; i++)
		if (!h->v2.meta.ks[i].used)
			tmp = i;
	if (tmp >= 0) {
		/* the new passphrase in a new area first; the old one goes only after */
		r = luks2_add_key(h, tmp, vk, vk_len, pass, pass_len, pb, NULL, err);
		if (r && r != -ENOSPC)
			return r;
		if (!r) {
			snprintf(id, sizeof(id), "%d", slot);
			snprintf(tid, sizeof(tid), "%d", tmp);
			json_object_object_get_ex(slots, tid, &obj);
			json_object_get(obj);
			json_object_object_del(slots, tid);
			json_object_object_add(slots, id, obj); /* replaces the old slot */
			luks2_json_unassign(h->v2.json, tmp);
			r = luks2_write(h, err);
			if (r)
				return r;
			return luks_wipe(h->dev, old.area_offset, old.area_size, true, err);
		}
	}
	/* no free slot or area: overwrite in place, as cryptsetup does */
	r = luks2_kill_slot(h, slot, err);
	if (!r)
		r = luks2_add_key(h, slot, vk, vk_len, pass, pass_len, pb, NULL, err);
	return r;
}

/* Tries one key slot: 0, -EPERM for a wrong passphrase, or another error. */
static int try_slot(struct luks_hdr *h, int i, const void *pass, size_t pass_len, uint8_t *vk,
		    struct strbuf *err)
{
	const struct luks2_keyslot *k = &h->v2.meta.ks[i];
	struct bs_pbkdf p = {.type = k->kdf,
			     .iterations = k->iterations,
			     .memory_kb = k->memory,
			     .parallel = k->cpus};
	uint8_t *key = bs_secure_alloc(k->area_key_size);
	int r;

	if (!key)
		return luks_err(err, -ENOMEM, "out of memory");
	snprintf(p.hash, sizeof(p.hash), "%s", k->kdf_hash);
	r = bs_pbkdf_derive(&p, pass, pass_len, k->salt, LUKS_SALTSIZE, key, k->area_key_size);
	if (r == -ENOMEM)
		luks_err(err, r, "Not enough available memory to open a keyslot.");
	else if (r)
		luks_err(err, r, "keyslot %d: %s failed", i, bs_pbkdf_type_name(k->kdf));
	else
		r = luks_material_load(h->dev, k->area_offset, k->area_cipher, key,
				       k->area_key_size, vk, k->key_size, k->stripes, k->af_hash,
				       err);
	bs_secure_free(key);
	if (!r)
		r = luks2_verify_key(h, vk, k->key_size);
	return r;
}

int luks2_unlock(struct luks_hdr *h, int slot, const void *pass, size_t pass_len, uint8_t **vk,
		 size_t *vk_len, int *slot_used, struct strbuf *err)
{
	const struct luks2_meta *m = &h->v2.meta;
	int dig = segment_digest(h), tried = 0;

	if (dig < 0)
		return luks_err(err, -EINVAL, "LUKS2 header has no crypt segment with a digest");
	/* preferred slots first, then normal ones; ignored ones only when asked for */
	for (int prio = LUKS2_PRIORITY_PREFER; prio >= LUKS2_PRIORITY_IGNORE; prio--) {
		for (int i = 0; i < LUKS2_KEYSLOTS_MAX; i++) {
			const struct luks2_keyslot *k = &m->ks[i];
			uint8_t *key;
			int r;

			if (!k->used || k->digest != dig || k->priority != prio ||
			    (slot != LUKS_ANY_SLOT && i != slot) ||
			    (prio == LUKS2_PRIORITY_IGNORE && slot == LUKS_ANY_SLOT))
				continue;
			tried++;
			key = bs_secure_alloc(k->key_size);
			if (!key)
				return luks_err(err, -ENOMEM, "out of memory");
			r = try_slot(h, i, pass, pass_len, key, err);
			if (!r) {
				*vk = key;
				*vk_len = k->key_size;
				*slot_used = i;
				return 0;
			}
			bs_secure_free(key);
			if (r != -EPERM)
				return r;
		}
	}
	if (!tried)
		return luks_err(err, -ENOENT, "No usable keyslot is available.");
	return luks_err(err, -EPERM, "No key available with this passphrase.");
}

/* ---- dump ------------------------------------------------------------------------------- */

static void dump_b64(struct strbuf *out, struct json_object *o, const char *key)
{
	struct json_object *v;
	uint8_t b[64];
	size_t n = 0;

	if (json_object_object_get_ex(o, key, &v) &&
	    !luks_b64_decode(json_object_get_string(v), b, sizeof(b), &n))
		luks_hexdump(out, b, n, 16, "\t            ");
	else
		sb_putc(out, '\n');
}

void luks2_dump(const struct luks_hdr *h, struct strbuf *out)
{
	const struct luks2_state *s = &h->v2;
	const struct luks2_meta *m = &s->meta;
	struct json_object *cfg = section(s->json, "config"), *flags = NULL, *toks, *digs;

	sb_puts(out, "LUKS header information\n");
	sb_printf(out, "Version:       \t%d\n", LUKS2_VERSION);
	sb_printf(out, "Epoch:         \t%llu\n", (unsigned long long)s->seqid);
	sb_printf(out, "Metadata area: \t%llu [bytes]\n", (unsigned long long)s->hdr_size);
	sb_printf(out, "Keyslots area: \t%llu [bytes]\n", (unsigned long long)m->keyslots_size);
	sb_printf(out, "UUID:          \t%s\n", s->uuid[0] ? s->uuid : "(no UUID)");
	sb_printf(out, "Label:         \t%s\n", s->label[0] ? s->label : "(no label)");
	sb_printf(out, "Subsystem:     \t%s\n", s->subsystem[0] ? s->subsystem : "(no subsystem)");
	sb_puts(out, "Flags:       \t");
	json_object_object_get_ex(cfg, "flags", &flags);
	if (flags && json_object_array_length(flags)) {
		for (size_t i = 0; i < json_object_array_length(flags); i++)
			sb_printf(out, "%s ",
				  json_object_get_string(json_object_array_get_idx(flags, i)));
		sb_puts(out, "\n\n");
	} else {
		sb_puts(out, "(no flags)\n\n");
	}

	sb_puts(out, "Data segments:\n");
	for (unsigned i = 0; i < m->nsegments; i++) {
		const struct luks2_segment *g = &m->seg[i];

		sb_printf(out, "  %u: %s\n", i, g->type);
		sb_printf(out, "\toffset: %llu [bytes]\n", (unsigned long long)g->offset);
		if (g->size)
			sb_printf(out, "\tlength: %llu [bytes]\n", (unsigned long long)g->size);
		else
			sb_puts(out, "\tlength: (whole device)\n");
		if (g->crypt) {
			sb_printf(out, "\tcipher: %s\n", g->cipher);
			sb_printf(out, "\tsector: %u [bytes]\n", g->sector_size);
			if (g->integrity)
				sb_printf(out, "\tintegrity: %s\n", g->integrity_type);
		}
		sb_putc(out, '\n');
	}

	sb_puts(out, "Keyslots:\n");
	for (int i = 0; i < LUKS2_KEYSLOTS_MAX; i++) {
		const struct luks2_keyslot *k = &m->ks[i];
		struct json_object *ko = NULL, *kdf = NULL;
		char id[12];

		if (!k->used)
			continue;
		snprintf(id, sizeof(id), "%d", i);
		json_object_object_get_ex(section(s->json, "keyslots"), id, &ko);
		json_object_object_get_ex(ko, "kdf", &kdf);
		sb_printf(out, "  %d: luks2%s\n", i, k->digest < 0 ? " (unbound)" : "");
		sb_printf(out, "\tKey:        %u bits\n", k->key_size * 8);
		sb_printf(out, "\tPriority:   %s\n",
			  k->priority == LUKS2_PRIORITY_IGNORE	 ? "ignored"
			  : k->priority == LUKS2_PRIORITY_PREFER ? "preferred"
								 : "normal");
		sb_printf(out, "\tCipher:     %s\n", k->area_cipher);
		sb_printf(out, "\tCipher key: %u bits\n", k->area_key_size * 8);
		sb_printf(out, "\tPBKDF:      %s\n", bs_pbkdf_type_name(k->kdf));
		if (k->kdf == BS_PBKDF2) {
			sb_printf(out, "\tHash:       %s\n", k->kdf_hash);
			sb_printf(out, "\tIterations: %u\n", k->iterations);
		} else {
			sb_printf(out, "\tTime cost:  %u\n", k->iterations);
			sb_printf(out, "\tMemory:     %u\n", k->memory);
			sb_printf(out, "\tThreads:    %u\n", k->cpus);
		}
		sb_puts(out, "\tSalt:       ");
		luks_hexdump(out, k->salt, LUKS_SALTSIZE, 16, "\t            ");
		sb_printf(out, "\tAF stripes: %u\n", k->stripes);
		sb_printf(out, "\tAF hash:    %s\n", k->af_hash);
		sb_printf(out, "\tArea offset:%llu [bytes]\n", (unsigned long long)k->area_offset);
		sb_printf(out, "\tArea length:%llu [bytes]\n", (unsigned long long)k->area_size);
		if (k->digest >= 0)
			sb_printf(out, "\tDigest ID:  %d\n", k->digest);
	}

	sb_puts(out, "Tokens:\n");
	toks = section(s->json, "tokens");
	for (int i = 0; i < LUKS2_TOKENS_MAX; i++) {
		struct json_object *t, *ks;
		char id[12];

		snprintf(id, sizeof(id), "%d", i);
		if (!json_object_object_get_ex(toks, id, &t))
			continue;
		sb_printf(out, "  %d: %s\n", i,
			  json_object_get_string(json_object_object_get(t, "type")));
		ks = json_object_object_get(t, "keyslots");
		for (size_t j = 0; j < json_object_array_length(ks); j++)
			sb_printf(out, "\tKeyslot:    %s\n",
				  json_object_get_string(json_object_array_get_idx(ks, j)));
	}

	sb_puts(out, "Digests:\n");
	digs = section(s->json, "digests");
	for (int i = 0; i < LUKS2_DIGEST_MAX; i++) {
		const struct luks2_digest *d = &m->dig[i];
		struct json_object *dobj;
		char id[12];

		if (!d->used)
			continue;
		snprintf(id, sizeof(id), "%d", i);
		json_object_object_get_ex(digs, id, &dobj);
		sb_printf(out, "  %d: pbkdf2\n", i);
		sb_printf(out, "\tHash:       %s\n", d->hash);
		sb_printf(out, "\tIterations: %u\n", d->iterations);
		sb_puts(out, "\tSalt:       ");
		dump_b64(out, dobj, "salt");
		sb_puts(out, "\tDigest:     ");
		dump_b64(out, dobj, "digest");
	}
}
