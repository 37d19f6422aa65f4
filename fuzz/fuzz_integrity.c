/*
 * fuzz_integrity.c - dm-integrity superblocks and journals on hostile bytes.
 *
 * Input: byte 0 picks options (bit 0: continue the journal ring, as journal mode does; bit 1:
 * read-only device; bit 2: also format a new superblock for the device), bytes 1-2 the
 * device size (16 sectors to 4 MiB); the rest is written at the start of an in-memory
 * device: superblock, then journal.  Every refusal must give a reason; a superblock that
 * reads must encode back to itself, dump, map every sector inside the device, and have its
 * journal scanned, replayed and cleared or continued without touching memory it should not.
 * The corpus holds superblocks and journals the kernel wrote (tests/fixtures/integrity).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mem_bdev.h"
#include "formats/integrity_hash.h"
#include "formats/integrity_sb.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SECTORS 8192u

/* Data and tag of every sampled sector must lie inside the devices. */
static void check_map(const struct integrity_geom *g)
{
	uint64_t samples[5] = {0, g->provided_data_sectors / 3, g->provided_data_sectors / 2,
			       g->provided_data_sectors - g->spb, g->provided_data_sectors - 1};

	for (int i = 0; i < 5; i++) {
		uint64_t l = samples[i] & ~(uint64_t)(g->spb - 1), dsec, toff, left;

		integrity_geom_map(g, l, &dsec, &toff, &left);
		if (dsec + g->spb > g->data_device_sectors ||
		    toff + g->tag_size > g->meta_device_sectors * 512 || !left)
			abort();
		if (!g->meta_dev && dsec < g->start + g->initial_sectors)
			abort(); /* data inside the superblock or journal */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct integrity_sb sb, again;
	struct integrity_geom g;
	struct integrity_hash *h = NULL;
	struct strbuf out = STRBUF_INIT;
	struct bs_bdev *b;
	uint8_t *enc, opts;
	uint64_t sectors, jbytes;
	const char *why = NULL;
	int r;

	if (size < 3)
		return 0;
	opts = data[0];
	sectors = 16 + (((unsigned)data[1] | (unsigned)data[2] << 8) % (MAX_SECTORS - 15));
	data += 3;
	size -= 3;
	if (size > sectors * 512)
		size = sectors * 512;
	if (bs_mem_bdev_create("fuzz", sectors * 512, false, &b))
		return 0;
	memcpy(bs_mem_bdev_data(b), data, size);

	if (opts & 4) {
		struct integrity_format_params p = {
		    .alg = "crc32c",
		    .tag_size = size ? (unsigned)(data[0] % 16) : 0,
		    .sector_size = 512u << (opts >> 3 & 3),
		    .journal_sectors = size ? (uint64_t)data[size - 1] * 7 : 0,
		    .fix_padding = opts & 0x20,
		    .fix_hmac = opts & 0x40,
		};
		struct integrity_sb nsb;
		struct integrity_geom ng;

		if (!integrity_sb_create(&p, false, 0, sectors, sectors, NULL, &nsb, &ng, &why)) {
			check_map(&ng);
			if (integrity_geom_limits(&ng))
				abort();
		} else if (!why) {
			abort();
		}
	}

	r = integrity_sb_read(b, 0, &sb, NULL, &why);
	if (r) {
		if (!why || !*why)
			abort();
		goto out;
	}
	/* what decodes encodes back to the same superblock */
	enc = malloc(SB_SECTORS * 512);
	if (!enc)
		abort();
	integrity_sb_encode(&sb, enc);
	if (integrity_sb_decode(enc, &again, &why) || memcmp(&sb, &again, sizeof(sb)))
		abort();
	free(enc);
	integrity_sb_dump(&sb, "fuzz", &out);

	if (integrity_geom_init(&g, &sb, false, 0, sectors, sectors, 7, &why)) {
		if (!why)
			abort();
		goto out;
	}
	if (!integrity_geom_fit(&g))
		goto out;
	check_map(&g);
	jbytes = ((uint64_t)g.journal_sections * g.section_sectors) << 9;
	if (jbytes > sectors * 512)
		abort(); /* fit() accepted a journal larger than the device */
	if (integrity_hash_new("crc32c", NULL, 0, (sb.flags & SB_FLAG_FIXED_HMAC) ? sb.salt : NULL,
			       &h, &why))
		abort();
	{
		uint8_t *j = malloc(jbytes);
		struct integrity_journal_state st;
		struct integrity_journal_scan s;

		if (!j)
			abort();
		if (!integrity_journal_read(b, &g, j) && !integrity_journal_scan(&g, j, &s, &why) &&
		    (s.write_start >= g.journal_sections || s.write_sections > g.journal_sections))
			abort();
		r = integrity_journal_recover(b, b, &g, j, h, opts & 1, opts & 2, &st, &why);
		if (r && !why)
			abort();
		if (!r) {
			if (st.section >= g.journal_sections || st.seq >= N_COMMIT_IDS)
				abort();
			/* what is left in memory is an empty journal */
			if (!(opts & 2))
				for (unsigned i = 0; i < g.journal_sections; i++)
					for (unsigned e = 0; e < g.section_entries; e++)
						if (!ij_entry_unused(ij_entry(&g, j, i, e)))
							abort();
		}
		free(j);
	}
out:
	integrity_hash_free(h);
	sb_free(&out);
	bs_bdev_close(b);
	return 0;
}
