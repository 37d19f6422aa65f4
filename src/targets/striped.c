/*
 * striped.c - the `striped` target: chunks spread round-robin over several devices (RAID0).
 *
 * Table: striped <#stripes> <chunk size> [<dev> <offset>]...
 *   chunk size in sectors (any positive value; the segment length must divide evenly into
 *   stripes and chunks, as Linux requires).
 * Status: <#stripes> <dev>... 1 <A|D per stripe>   (D once a stripe has returned an error)
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "engine/target.h"
#include "util/parse.h"

struct stripe {
	struct bs_bdev *dev;
	uint64_t start; /* sectors */
	atomic_uint errors;
};

struct striped {
	uint32_t nr;
	uint64_t chunk; /* sectors */
	struct stripe s[];
};

static int striped_ctr(struct bs_target *t, unsigned argc, char **argv)
{
	struct striped *sc;
	uint32_t nr, chunk;
	uint64_t width;
	int r;

	if (argc < 2)
		return bs_target_error(t, "not enough arguments");
	if (bs_parse_u32(argv[0], &nr) || nr == 0)
		return bs_target_error(t, "invalid stripe count \"%s\"", argv[0]);
	if (bs_parse_u32(argv[1], &chunk) || chunk == 0)
		return bs_target_error(t, "invalid chunk size \"%s\"", argv[1]);
	if (t->len % nr)
		return bs_target_error(t, "target length not divisible by number of stripes");
	width = t->len / nr;
	if (width % chunk)
		return bs_target_error(t, "target length not divisible by chunk size");
	if (argc != 2 + 2 * (uint64_t)nr)
		return bs_target_error(t, "%u stripes need %llu arguments, got %u", nr,
				       2 + 2 * (unsigned long long)nr, argc);

	sc = calloc(1, sizeof(*sc) + nr * sizeof(sc->s[0]));
	if (!sc)
		return -ENOMEM;
	sc->nr = nr;
	sc->chunk = chunk;
	for (uint32_t i = 0; i < nr; i++) {
		struct stripe *s = &sc->s[i];

		r = bs_target_parse_sector(t, argv[3 + 2 * i], "stripe device sector", &s->start);
		if (!r)
			r = bs_target_get_device(t, argv[2 + 2 * i], "stripe device", &s->dev);
		if (!r)
			r = bs_target_check_area(t, s->dev, s->start, width);
		if (r) {
			free(sc);
			return r;
		}
	}
	t->private = sc;
	return 0;
}

static void striped_dtr(struct bs_target *t)
{
	free(t->private);
}

static int stripe_io(struct bs_target *t, struct stripe *s, struct bs_io *io)
{
	int r = bs_bdev_submit(s->dev, io);

	/* Only real device errors mark a stripe dead, as in Linux. */
	if (r == -EIO && atomic_fetch_add(&s->errors, 1) == 0)
		bs_target_event(t);
	return r;
}

static int striped_submit(struct bs_target *t, struct bs_io *io)
{
	struct striped *sc = t->private;
	const uint64_t chunk_bytes = sc->chunk << BS_SECTOR_SHIFT;
	uint64_t off = io->off, left = io->len;
	char *buf = io->buf;

	if (io->op == BS_OP_FLUSH) {
		int r = 0;

		for (uint32_t i = 0; i < sc->nr; i++) {
			struct bs_io f = {.op = BS_OP_FLUSH};
			int e = stripe_io(t, &sc->s[i], &f);

			if (e && !r)
				r = e;
		}
		return r;
	}
	while (left) {
		uint64_t chunk = off / chunk_bytes, in_chunk = off % chunk_bytes;
		uint64_t n = chunk_bytes - in_chunk < left ? chunk_bytes - in_chunk : left;
		struct stripe *s = &sc->s[chunk % sc->nr];
		struct bs_io sub = {
		    .op = io->op,
		    .flags = io->flags,
		    .off =
			(s->start << BS_SECTOR_SHIFT) + (chunk / sc->nr) * chunk_bytes + in_chunk,
		    .len = n,
		    .buf = buf,
		};
		int r = stripe_io(t, s, &sub);

		if (r)
			return r;
		off += n;
		left -= n;
		if (buf)
			buf += n;
	}
	return 0;
}

static void striped_status(struct bs_target *t, enum bs_status_type type, unsigned flags,
			   struct strbuf *out)
{
	struct striped *sc = t->private;

	(void)flags;
	if (type == BS_STATUS_INFO) {
		sb_printf(out, "%u ", sc->nr);
		for (uint32_t i = 0; i < sc->nr; i++) {
			sb_put_arg(out, sc->s[i].dev->name);
			sb_putc(out, ' ');
		}
		sb_puts(out, "1 ");
		for (uint32_t i = 0; i < sc->nr; i++)
			sb_putc(out, atomic_load(&sc->s[i].errors) ? 'D' : 'A');
		return;
	}
	sb_printf(out, "%u %llu", sc->nr, (unsigned long long)sc->chunk);
	for (uint32_t i = 0; i < sc->nr; i++) {
		sb_putc(out, ' ');
		sb_put_arg(out, sc->s[i].dev->name);
		sb_printf(out, " %llu", (unsigned long long)sc->s[i].start);
	}
}

const struct bs_target_type bs_striped_target = {
    .name = "striped",
    .version = {1, 6, 0},
    .ctr = striped_ctr,
    .dtr = striped_dtr,
    .submit = striped_submit,
    .status = striped_status,
};
