/*
 * fuzz_md_sb.c - md superblocks (1.x and 0.90) and the bitmap superblock on hostile bytes.
 *
 * Input: byte 0 picks where the rest goes on an in-memory member device (0: 1.2 at 4 KiB,
 * 1: 1.1 at 0, 2: 1.0 near the end, 3: 0.90 at the end, 4: a bitmap superblock at sector
 * 16, 5: the whole device is the input); bytes 1-2 pick the device size (16 sectors to
 * 16 MiB, not always 4 KiB aligned); the rest is the superblock.  Every refusal must give a
 * reason, and a superblock that reads must examine, and (1.x) write back and read back the
 * same.  The corpus holds superblocks the kernel wrote (tests/fixtures/md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mem_bdev.h"
#include "formats/md.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_bitmap(struct bs_bdev *b, uint64_t at, const struct md_sb *sb)
{
	struct md_bitmap_sb bsb;
	const char *why = NULL;
	uint64_t nbits;
	uint8_t *bits;

	if (md_bitmap_sb_read(b, at, &bsb, &why)) {
		if (!why)
			abort();
		return;
	}
	if (sb && md_bitmap_sb_check(&bsb, sb, &why) && !why)
		abort();
	nbits = md_bitmap_bits(bsb.sync_size, bsb.chunksize);
	if (nbits > (1u << 20))
		return;
	bits = malloc(nbits / 8 + 1);
	if (!bits)
		return;
	if (!md_bitmap_bits_read(b, at, bits, nbits))
		md_bitmap_bits_write(b, at, bits, 0, nbits / 8 + (nbits % 8 != 0));
	free(bits);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf out = STRBUF_INIT;
	struct md_sb *sb, *again;
	struct bs_bdev *b;
	uint64_t sectors, at = 0;
	const char *why = NULL;
	unsigned mode, sel;
	size_t len;
	int r;

	if (size < 3)
		return 0;
	mode = data[0] % 6;
	sel = (unsigned)data[1] | (unsigned)data[2] << 8;
	data += 3;
	size -= 3;
	sectors = 16 + (uint64_t)(sel & 4095) * 8 + ((sel >> 12) & 7);
	if (mode == 5)
		sectors = size / 512 + 1;
	if (bs_mem_bdev_create("fuzz", sectors * 512, false, &b))
		return 0;
	switch (mode) {
	case 0:
		at = 8;
		break;
	case 1:
		at = 0;
		break;
	case 2:
		at = md_sb_offset(0, sectors);
		break;
	case 3:
		at = sectors >= 256 ? (sectors & ~127ull) - 128 : 0;
		break;
	case 4:
		at = 16;
		break;
	}
	len = size;
	if (at * 512 + len > sectors * 512)
		len = sectors * 512 > at * 512 ? sectors * 512 - at * 512 : 0;
	memcpy(bs_mem_bdev_data(b) + at * 512, data, len);

	if (mode == 4) {
		check_bitmap(b, 16, NULL);
		bs_bdev_close(b);
		return 0;
	}
	sb = malloc(sizeof(*sb));
	again = malloc(sizeof(*again));
	if (!sb || !again)
		abort();
	r = md_sb_read_any(b, sb, &why);
	if (r) {
		if (!why || !*why)
			abort(); /* every refusal says why */
	} else {
		md_sb_examine(sb, "fuzz", &out);
		md_sb_array_line(sb, &out);
		md_sb_readonly_reason(sb);
		if (md_sb_read(b, again, &why) && (!why || !*why))
			abort();
		if (sb->feature_map & MD_FEATURE_BITMAP_OFFSET)
			check_bitmap(b, sb->super_offset + (uint64_t)(int64_t)sb->bitmap_offset,
				     sb);
		/* what was read writes back, and reads back the same */
		if (sb->major == 1) {
			if (md_sb_write(b, sb))
				abort();
			if (md_sb_read_any(b, again, &why))
				abort();
			again->bitmap_sectors = sb->bitmap_sectors;
			if (memcmp(sb, again, sizeof(*sb)))
				abort();
		}
	}
	sb_free(&out);
	free(sb);
	free(again);
	bs_bdev_close(b);
	return 0;
}
