/*
 * table.c - parsing, construction and request splitting for tables.
 */
#include "engine/table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h"
#include "util/secmem.h"

static void target_release(struct bs_target *t, bool constructed)
{
	if (constructed && t->type->dtr)
		t->type->dtr(t);
	for (unsigned i = 0; i < t->ndevs; i++)
		bs_bdev_close(t->devs[i].bdev);
	free(t->devs);
	t->devs = NULL;
	t->ndevs = 0;
}

void bs_table_destroy(struct bs_table *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->nr_targets; i++)
		target_release(&t->targets[i], true);
	free(t->targets);
	free(t);
}

/* Builds one segment from an already split line.  Returns -errno with ERR set. */
static int table_add_target(struct bs_table *t, unsigned lineno, unsigned argc, char **argv,
			    struct strbuf *err)
{
	const struct bs_target_type *type;
	struct bs_target *tg;
	uint64_t start, len;
	int r;

	if (argc < 3) {
		sb_printf(err, "line %u: expected \"<start> <length> <target> [args]\"", lineno);
		return -EINVAL;
	}
	if (bs_parse_u64(argv[0], &start) || bs_parse_u64(argv[1], &len) ||
	    len > (UINT64_MAX >> BS_SECTOR_SHIFT)) {
		sb_printf(err, "line %u: invalid start or length", lineno);
		return -EINVAL;
	}
	if (start != t->size) {
		sb_printf(err,
			  "line %u: segment starts at sector %llu but the previous one ends at "
			  "%llu (gap or overlap)",
			  lineno, (unsigned long long)start, (unsigned long long)t->size);
		return -EINVAL;
	}
	if (len == 0) {
		sb_printf(err, "line %u: zero-length segment", lineno);
		return -EINVAL;
	}
	if (t->size + len < t->size || t->size + len > (UINT64_MAX >> BS_SECTOR_SHIFT)) {
		sb_printf(err, "line %u: table too large", lineno);
		return -EINVAL;
	}
	type = bs_target_type_find(argv[2]);
	if (!type) {
		sb_printf(err, "line %u: unknown target type \"%s\"", lineno, argv[2]);
		return -EINVAL;
	}
	/* The array was sized up front: targets never move once constructed. */
	tg = &t->targets[t->nr_targets];
	memset(tg, 0, sizeof(*tg));
	tg->type = type;
	tg->table = t;
	tg->begin = start;
	tg->len = len;
	tg->readonly = t->readonly;
	tg->block_size = BS_SECTOR_SIZE;

	r = type->ctr(tg, argc - 3, argv + 3);
	if (r) {
		sb_printf(err, "line %u: %s: %s", lineno, type->name,
			  tg->error ? tg->error : "invalid arguments");
		target_release(tg, false);
		return r;
	}
	if (((start << BS_SECTOR_SHIFT) % tg->block_size) ||
	    ((len << BS_SECTOR_SHIFT) % tg->block_size)) {
		sb_printf(err, "line %u: %s: segment not aligned to its %u-byte block size", lineno,
			  type->name, tg->block_size);
		target_release(tg, true);
		return -EINVAL;
	}
	if (tg->block_size > t->block_size)
		t->block_size = tg->block_size;
	t->nr_targets++;
	t->size += len;
	return 0;
}

/* An upper bound on the number of segments: the number of lines. */
static unsigned count_lines(const char *s)
{
	unsigned n = 1;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

int bs_table_create(const char *text, struct bs_device *owner, bool readonly, struct bs_table **out,
		    struct strbuf *err)
{
	struct bs_table *t = calloc(1, sizeof(*t));
	char *copy;
	char *line, *next;
	unsigned lineno = 0;
	int r = 0;

	if (!t) {
		sb_puts(err, "out of memory");
		return -ENOMEM;
	}
	copy = bs_secure_strdup(text);
	if (!copy) {
		free(t);
		sb_puts(err, "out of memory");
		return -ENOMEM;
	}
	t->owner = owner;
	t->readonly = readonly;
	t->block_size = BS_SECTOR_SIZE;
	t->targets = calloc(count_lines(copy) + 1, sizeof(*t->targets));
	if (!t->targets) {
		bs_secure_free(copy);
		free(t);
		sb_puts(err, "out of memory");
		return -ENOMEM;
	}

	for (line = copy; line && !r; line = next) {
		unsigned argc;
		char **argv;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		line += strspn(line, " \t\r");
		if (*line == '\0' || *line == '#')
			continue;
		r = bs_split_args(line, &argc, &argv);
		if (r) {
			sb_puts(err, "out of memory");
			break;
		}
		r = table_add_target(t, lineno, argc, argv, err);
		free(argv);
	}
	bs_secure_free(copy);
	if (!r && t->nr_targets == 0) {
		sb_puts(err, "empty table");
		r = -EINVAL;
	}
	if (!r && (t->size << BS_SECTOR_SHIFT) % t->block_size) {
		sb_printf(err, "table size is not a multiple of its %u-byte block size",
			  t->block_size);
		r = -EINVAL;
	}
	if (r) {
		bs_table_destroy(t);
		return r;
	}
	*out = t;
	return 0;
}

struct bs_target *bs_table_find_target(struct bs_table *t, uint64_t sector)
{
	unsigned lo = 0, hi = t->nr_targets;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		struct bs_target *tg = &t->targets[mid];

		if (sector < tg->begin)
			hi = mid;
		else if (sector >= tg->begin + tg->len)
			lo = mid + 1;
		else
			return tg;
	}
	return NULL;
}

int bs_table_flush(struct bs_table *t)
{
	int r = 0;

	for (unsigned i = 0; i < t->nr_targets; i++) {
		struct bs_target *tg = &t->targets[i];
		struct bs_io io = {.op = BS_OP_FLUSH};
		int e = tg->type->submit(tg, &io);

		if (e && !r)
			r = e;
	}
	return r;
}

int bs_table_submit(struct bs_table *t, struct bs_io *io)
{
	uint64_t off = io->off, left = io->len;
	char *buf = io->buf;
	bool meta_taken = false;

	if (io->op == BS_OP_FLUSH)
		return bs_table_flush(t);
	if (off > (t->size << BS_SECTOR_SHIFT) || left > (t->size << BS_SECTOR_SHIFT) - off)
		return -EINVAL;
	if (io->meta && !io->meta->interval)
		return -EINVAL;

	while (left) {
		struct bs_target *tg = bs_table_find_target(t, off >> BS_SECTOR_SHIFT);
		uint64_t tbegin, tend, n;
		struct bs_io sub;
		struct bs_io_meta m; /* this segment's part of io->meta (see io.h) */
		int r;

		if (!tg)
			return -EIO;
		tbegin = tg->begin << BS_SECTOR_SHIFT;
		tend = tbegin + (tg->len << BS_SECTOR_SHIFT);
		n = tend - off < left ? tend - off : left;
		sub = (struct bs_io){
		    .op = io->op,
		    .flags = io->flags,
		    .off = off - tbegin,
		    .len = n,
		    .buf = buf,
		};
		if (io->meta) {
			if ((off - io->off) % io->meta->interval)
				return -EINVAL;
			m = *io->meta;
			m.buf += (off - io->off) / m.interval * m.tuple_size;
			m.taken = false;
			sub.meta = &m;
		}
		r = tg->type->submit(tg, &sub);
		if (r)
			return r;
		if (io->meta)
			meta_taken = (off == io->off || meta_taken) && m.taken;
		off += n;
		left -= n;
		if (buf)
			buf += n;
	}
	if (io->meta)
		io->meta->taken = meta_taken;
	return 0;
}

void bs_table_status(struct bs_table *t, enum bs_status_type type, unsigned flags,
		     const char *target_filter, struct strbuf *out)
{
	for (unsigned i = 0; i < t->nr_targets; i++) {
		struct bs_target *tg = &t->targets[i];

		if (target_filter && strcmp(target_filter, tg->type->name))
			continue;
		sb_printf(out, "%llu %llu %s", (unsigned long long)tg->begin,
			  (unsigned long long)tg->len, tg->type->name);
		if (tg->type->status) {
			size_t mark = out->len;

			sb_putc(out, ' ');
			tg->type->status(tg, type, flags, out);
			/* Like dmsetup, no trailing blank when a target has nothing to say. */
			while (out->len > mark && out->s[out->len - 1] == ' ')
				out->s[--out->len] = '\0';
		}
		sb_putc(out, '\n');
	}
}

void bs_table_presuspend(struct bs_table *t)
{
	for (unsigned i = 0; i < t->nr_targets; i++)
		if (t->targets[i].type->presuspend)
			t->targets[i].type->presuspend(&t->targets[i]);
}

void bs_table_postsuspend(struct bs_table *t)
{
	for (unsigned i = 0; i < t->nr_targets; i++)
		if (t->targets[i].type->postsuspend)
			t->targets[i].type->postsuspend(&t->targets[i]);
}

int bs_table_preresume(struct bs_table *t, struct strbuf *err)
{
	for (unsigned i = 0; i < t->nr_targets; i++) {
		struct bs_target *tg = &t->targets[i];

		if (tg->type->preresume) {
			int r;

			tg->error = NULL;
			r = tg->type->preresume(tg);
			if (r) {
				sb_printf(err, "%s: %s", tg->type->name,
					  tg->error ? tg->error : "cannot resume");
				return r;
			}
		}
	}
	return 0;
}

void bs_table_resume(struct bs_table *t)
{
	for (unsigned i = 0; i < t->nr_targets; i++)
		if (t->targets[i].type->resume)
			t->targets[i].type->resume(&t->targets[i]);
}

void bs_table_for_each_bdev(struct bs_table *t, void (*fn)(struct bs_bdev *b, void *arg), void *arg)
{
	for (unsigned i = 0; i < t->nr_targets; i++)
		for (unsigned d = 0; d < t->targets[i].ndevs; d++)
			fn(t->targets[i].devs[d].bdev, arg);
}
