/*
 * fuzz_luks.c - the LUKS1 and LUKS2 header parsers on hostile bytes.
 *
 * Input: byte 0 holds flags: bit 0 loads with REPAIR, bit 1 recomputes the checksums of both
 * LUKS2 header copies first (so that mutations reach the JSON checks instead of stopping at
 * the checksum), bits 2-4 pick the device size (the input's own, or 256 KiB .. 4 MiB, zero
 * padded).  The rest is the start of the device.  A header that loads must dump, give its
 * segment, build a crypt table, survive a rewrite (new UUID) and load again; one whose KDF
 * costs are small is also unlocked with the passphrase "fuzz" (the corpus headers use it).
 * Every refusal must say why.  The corpus holds small headers made by cryptsetup 2.6 with
 * tiny key slot areas: `cryptsetup luksFormat --luks2-metadata-size 16k
 * --luks2-keyslots-size 128k --key-size 256 ...`, truncated after the key slot areas, with a
 * flags byte in front.
 */
#include <endian.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mem_bdev.h"
#include "formats/luks_int.h"
#include "util/secmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint64_t sizes[] = {0, 256 << 10, 1 << 20, 2 << 20, 4 << 20, 0, 64 << 10, 3 << 20};

static void fix_checksums(uint8_t *d, uint64_t dev)
{
	uint64_t hs, v;

	if (dev < LUKS2_HDR_BIN_LEN)
		return;
	memcpy(&v, d + LUKS2_OFF_HDR_SIZE, 8);
	hs = be64toh(v);
	if (hs < LUKS2_HDR_BIN_LEN || hs > LUKS2_HDR_OFFSET_MAX || 2 * hs > dev)
		return;
	for (int w = 0; w < 2; w++) {
		uint8_t *c = d + (w ? hs : 0);

		memset(c + LUKS2_OFF_CSUM, 0, LUKS2_CHECKSUM_L);
		SHA256(c, hs, c + LUKS2_OFF_CSUM);
	}
}

/* True when unlocking costs little (the fuzzer must not spend seconds in a KDF). */
static bool cheap(const struct luks_hdr *h)
{
	if (h->version == 1) {
		if (h->v1.mk_digest_iter > 2000)
			return false;
		for (int i = 0; i < LUKS_NUMKEYS; i++)
			if (h->v1.kb[i].active == LUKS_KEY_ENABLED && h->v1.kb[i].iterations > 2000)
				return false;
		return true;
	}
	for (int i = 0; i < LUKS2_KEYSLOTS_MAX; i++) {
		const struct luks2_keyslot *k = &h->v2.meta.ks[i];

		if (k->used && (k->kdf == BS_PBKDF2 ? k->iterations > 2000
						    : k->iterations > 4 || k->memory > 1024))
			return false;
	}
	for (int i = 0; i < LUKS2_DIGEST_MAX; i++)
		if (h->v2.meta.dig[i].used && h->v2.meta.dig[i].iterations > 2000)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf err = STRBUF_INIT, out = STRBUF_INIT, table = STRBUF_SECURE_INIT;
	struct luks_segment_info seg;
	struct luks_hdr *h = NULL, *again = NULL;
	struct bs_bdev *b;
	uint64_t dev;
	unsigned flags;
	int r;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	dev = sizes[(flags >> 2) & 7];
	if (dev < size)
		dev = size;
	if (dev == 0 || bs_mem_bdev_create("fuzz", dev, false, &b))
		return 0;
	memcpy(bs_mem_bdev_data(b), data, size);
	if (flags & 2)
		fix_checksums(bs_mem_bdev_data(b), dev);

	r = luks_load(b, flags & 1, &h, &err);
	if (r) {
		if (!err.len || strchr(sb_str(&err), '\n')) {
			fprintf(stderr, "refused (%d) without a one-line reason: \"%s\"\n", r,
				sb_str(&err));
			abort(); /* every refusal says why, in one line */
		}
		goto done;
	}
	luks_dump(h, "fuzz", &out);
	luks_header_area_size(h);
	luks_data_offset(h);
	luks_active_slots(h);
	sb_reset(&err);
	if (!luks_segment(h, &seg, &err) && seg.key_bytes && seg.key_bytes <= 512) {
		uint8_t *vk = bs_secure_alloc(seg.key_bytes);

		luks_crypt_table(h, vk, seg.key_bytes, "/dev/fuzz", dev, 0, LUKS_TABLE_DISCARDS,
				 &table, &err);
		bs_secure_free(vk);
	}
	if (cheap(h)) {
		uint8_t *vk = NULL;
		size_t n;
		int slot;

		if (!luks_unlock(h, LUKS_ANY_SLOT, "fuzz", 4, &vk, &n, &slot, &err)) {
			if (luks_verify_key(h, vk, n, &err))
				abort(); /* an unlocked key must match the digest */
			luks_dump_volume_key(h, "fuzz", vk, n, &out);
		}
		bs_secure_free(vk);
	}
	/* what loads can be rewritten, and reads back */
	sb_reset(&err);
	if (luks_set_uuid(h, "01234567-89ab-4cde-8f01-23456789abcd", &err) ||
	    luks_load(b, false, &again, &err)) {
		fprintf(stderr, "rewrite failed: %s\n", sb_str(&err));
		abort();
	}
	if (strcmp(luks_uuid(again), "01234567-89ab-4cde-8f01-23456789abcd") ||
	    luks_version(again) != luks_version(h) ||
	    luks_active_slots(again) != luks_active_slots(h))
		abort();
done:
	luks_free(h);
	luks_free(again);
	sb_free(&err);
	sb_free(&out);
	sb_free(&table);
	bs_bdev_close(b);
	return 0;
}
