/*
 * luks_integrity.c - LUKS2 authenticated encryption, as cryptsetup 2.6 lays it out
 * (`luksFormat --integrity`).
 *
 * The segment's "integrity" object names the integrity algorithm ("hmac(sha256)", "aead");
 * together with the segment's cipher it gives the dm-crypt AEAD specification:
 *   aes-xts-plain64 + hmac(sha256)  ->  capi:authenc(hmac(sha256),xts(aes))-plain64
 *   aes-gcm-random  + aead          ->  capi:gcm(aes)-random
 * The volume key is the cipher key followed by the HMAC key (the digest size; none for aead).
 * Each sector's metadata is the authentication tag (the HMAC digest; 16 bytes for gcm) and,
 * with the random IV mode, the IV after it: 32 bytes for xts-plain64 + hmac(sha256), 28 for
 * gcm-random.  The data segment holds a dm-integrity device (superblock at the segment's
 * offset, journal, interleaved tags and data) that stores that metadata; dm-crypt runs on
 * top of it at offset 0, its sectors numbered from the start of the integrity device.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/aead.h"
#include "formats/integrity_sb.h"
#include "formats/luks_int.h"

/* HMAC digests cryptsetup accepts for --integrity hmac-*, by Linux name. */
static size_t hmac_size(const char *integrity)
{
	if (!strcmp(integrity, "hmac(sha1)"))
		return 20;
	if (!strcmp(integrity, "hmac(sha256)"))
		return 32;
	if (!strcmp(integrity, "hmac(sha512)"))
		return 64;
	return 0;
}

const char *luks_integrity_name(const char *cli)
{
	if (!strcmp(cli, "hmac-sha1") || !strcmp(cli, "hmac(sha1)"))
		return "hmac(sha1)";
	if (!strcmp(cli, "hmac-sha256") || !strcmp(cli, "hmac(sha256)"))
		return "hmac(sha256)";
	if (!strcmp(cli, "hmac-sha512") || !strcmp(cli, "hmac(sha512)"))
		return "hmac(sha512)";
	if (!strcmp(cli, "aead"))
		return "aead";
	return NULL;
}

int luks_integrity_resolve(const char *cipher, const char *integrity,
			   struct luks_integrity_info *out, struct strbuf *err)
{
	char name[32], mode[32], iv[32];
	struct bs_aead_spec s;
	const char *why = NULL;
	size_t mac = hmac_size(integrity);
	int n = 0;

	memset(out, 0, sizeof(*out));
	if (sscanf(cipher, "%31[a-z0-9]-%31[a-z0-9]-%31[a-z0-9]%n", name, mode, iv, &n) != 3 ||
	    cipher[n])
		return luks_err(err, -EINVAL,
				"cipher %s with integrity %s is not supported (ciphers such as "
				"aes-xts-plain64 and aes-gcm-random are)",
				cipher, integrity);
	if (!strcmp(integrity, "aead"))
		n = snprintf(out->dm_cipher, sizeof(out->dm_cipher), "capi:%s(%s)-%s", mode, name,
			     iv);
	else if (mac)
		n = snprintf(out->dm_cipher, sizeof(out->dm_cipher), "capi:authenc(%s,%s(%s))-%s",
			     integrity, mode, name, iv);
	else
		return luks_err(err, -EINVAL,
				"integrity %s is not supported (hmac(sha1), hmac(sha256), "
				"hmac(sha512) and aead are)",
				integrity);
	if (n < 0 || (size_t)n >= sizeof(out->dm_cipher) ||
	    bs_aead_spec_parse(out->dm_cipher, &s, &why))
		return luks_err(err, -EINVAL, "cipher %s with integrity %s: %s", cipher, integrity,
				why ? why : "specification too long");
	out->integrity_key_bytes = mac;
	out->tag_size = (unsigned)(mac ? mac : 16) + (s.random_iv ? s.iv_size : 0);
	if (bs_aead_tag_size_check(&s, out->tag_size, &why))
		return luks_err(err, -EINVAL, "cipher %s with integrity %s: %s", cipher, integrity,
				why);
	return 0;
}

int luks_integrity_key_check(const char *cipher, const char *integrity, size_t key_bytes,
			     struct strbuf *err)
{
	struct luks_integrity_info ii;
	struct bs_aead_spec s;
	const char *why;
	int r = luks_integrity_resolve(cipher, integrity, &ii, err);

	if (r)
		return r;
	bs_aead_spec_parse(ii.dm_cipher, &s, &why);
	if (!bs_aead_key_size_valid(&s, key_bytes))
		return luks_err(err, -EINVAL,
				"cipher %s with integrity %s: invalid key size %zu bits", cipher,
				integrity, key_bytes * 8);
	return 0;
}

/* The superblock of the integrity device inside the segment at OFFSET of DEV. */
static int read_sb(struct bs_bdev *dev, uint64_t offset, struct integrity_sb *sb,
		   struct strbuf *err)
{
	const char *why = NULL;
	bool blank = false;
	int r = integrity_sb_read(dev, offset / 512, sb, &blank, &why);

	if (r == -ENOENT)
		return luks_err(err, -EINVAL,
				"%s: no dm-integrity superblock at the data offset %llu (the "
				"volume was not formatted for integrity, or that area was "
				"overwritten)",
				dev->name, (unsigned long long)offset);
	if (r)
		return luks_err(err, r, "%s: integrity superblock: %s", dev->name,
				why ? why : strerror(-r));
	return 0;
}

int luks_integrity_table(const struct luks_hdr *h, struct bs_bdev *data, const char *data_path,
			 uint64_t *provided, struct strbuf *table, struct strbuf *err)
{
	struct luks_segment_info s;
	struct integrity_sb sb;
	int r = luks_segment(h, &s, err);

	if (r)
		return r;
	if (!s.tag_size)
		return luks_err(err, -EINVAL, "the data segment has no integrity");
	r = read_sb(data, s.offset, &sb, err);
	if (r)
		return r;
	if (sb.tag_size != s.tag_size)
		return luks_err(err, -EINVAL,
				"integrity superblock: tag size %u, the segment needs %u",
				sb.tag_size, s.tag_size);
	if ((512u << sb.log2_sectors_per_block) != s.sector_size)
		return luks_err(err, -EINVAL,
				"integrity superblock: block size %u, the segment's sector size is "
				"%u",
				512u << sb.log2_sectors_per_block, s.sector_size);
	if (!sb.provided_data_sectors || sb.provided_data_sectors % (s.sector_size / 512))
		return luks_err(err, -EINVAL, "integrity superblock: invalid data size");
	*provided = sb.provided_data_sectors;
	sb_printf(table, "0 %llu integrity ", (unsigned long long)sb.provided_data_sectors);
	luks_put_path(table, data_path);
	sb_printf(table, " %llu %u J ", (unsigned long long)(s.offset / 512), s.tag_size);
	if (s.sector_size != 512)
		sb_printf(table, "1 block_size:%u", s.sector_size);
	else
		sb_puts(table, "0");
	return 0;
}

/* Zeroes encrypted and authenticated: every sector then reads back as zeroes. */
static int wipe(struct bs_bdev *dev, const struct integrity_geom *g, struct bs_aead *a,
		struct strbuf *err)
{
	const size_t chunk = 1u << 20;
	const unsigned bs = 512u << g->log2_spb;
	uint8_t *zero = calloc(1, chunk), *buf = malloc(chunk);
	uint8_t *tags = malloc(chunk / bs * g->tag_size);
	int r = 0;

	if (!zero || !buf || !tags)
		r = luks_err(err, -ENOMEM, "out of memory");
	for (uint64_t l = 0; l < g->provided_data_sectors && !r;) {
		uint64_t dsec, toff, left, blocks;

		integrity_geom_map(g, l, &dsec, &toff, &left);
		if (left > g->provided_data_sectors - l)
			left = g->provided_data_sectors - l;
		blocks = left >> g->log2_spb;
		if (blocks > chunk / bs)
			blocks = chunk / bs;
		r = bs_aead_encrypt(a, zero, buf, blocks * bs, l, 0, tags);
		if (!r)
			r = bs_bdev_write(dev, buf, blocks * bs, dsec << 9, 0);
		if (!r)
			r = bs_bdev_write(dev, tags, blocks * g->tag_size, toff, 0);
		if (r)
			r = luks_err(err, r, "%s: wiping the data area failed: %s", dev->name,
				     strerror(-r));
		l += blocks << g->log2_spb;
	}
	if (!r && (r = bs_bdev_flush(dev)))
		r = luks_err(err, r, "%s: flush: %s", dev->name, strerror(-r));
	free(zero);
	free(buf);
	free(tags);
	return r;
}

int luks_integrity_format(const struct luks_hdr *h, struct bs_bdev *data, const uint8_t *vk,
			  size_t vk_len, bool wipe_data, struct strbuf *err)
{
	struct luks_segment_info s;
	struct integrity_format_params p = {0};
	struct integrity_sb sb;
	struct integrity_geom g;
	struct bs_aead_spec as;
	struct bs_aead *a = NULL;
	const char *why = NULL;
	int r = luks_segment(h, &s, err);

	if (r)
		return r;
	p.alg = "crc32c"; /* only its name is checked: the tags come from dm-crypt */
	p.tag_size = s.tag_size;
	p.sector_size = s.sector_size;
	p.fix_padding = true;
	p.mode = 'J';
	if (integrity_sb_create(&p, false, s.offset / 512, bs_bdev_size(data) / 512,
				bs_bdev_size(data) / 512, NULL, &sb, &g, &why))
		return luks_err(err, -EINVAL, "%s: cannot lay out the integrity device: %s",
				data->name, why);
	if (wipe_data) {
		bs_aead_spec_parse(s.dm_cipher, &as, &why);
		r = bs_aead_new(&as, vk, vk_len, s.tag_size, s.sector_size, false, &a, &why);
		if (r)
			return luks_err(err, r, "%s: %s", s.dm_cipher, why);
	}
	if (integrity_format_write(data, data, &g, &sb, NULL, false, 'J', &why))
		r = luks_err(err, -EIO, "%s: %s", data->name, why);
	else if (wipe_data)
		r = wipe(data, &g, a, err);
	bs_aead_free(a);
	return r;
}
