/*
 * test_md.c - Linux md superblocks and bitmaps (formats/md.c) against arrays the real kernel
 * made (tests/fixtures/md, see its README.md) and against the real mdadm.
 *
 *   - every fixture member parses, its fields equal those of the `mdadm --examine` text
 *     recorded when it was made, md_sb_examine prints that text line for line, and writing
 *     the parsed superblock back gives the kernel's bytes exactly;
 *   - superblocks written here read back in `mdadm --examine` (run when mdadm is installed)
 *     with the same text, for every feature examine shows;
 *   - hostile superblocks and bitmaps: each bad field refused with its reason, and nothing
 *     written while reading.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/bdev.h"
#include "engine/mem_bdev.h"
#include "formats/md.h"
#include "util/strbuf.h"

#define MIB (1024 * 1024)

static char fixdir[1024];
static char tmpdir[] = "/tmp/blkstack-test-md.XXXXXX";
static bool have_mdadm;

/* ---- helpers ------------------------------------------------------------------------- */

static uint32_t le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* An independent 1.x checksum: 256 bytes + 2 per max_dev, 32-bit words, carries folded. */
static void fix_csum1(uint8_t *sb)
{
	uint32_t max_dev = le32_at(sb + 220);
	unsigned size = 256 + 2 * (max_dev > 1920 ? 1920 : max_dev), o;
	uint64_t sum = 0;

	put_le32(sb + 216, 0);
	for (o = 0; o + 4 <= size; o += 4)
		sum += le32_at(sb + o);
	if (size - o == 2)
		sum += (uint32_t)sb[o] | (uint32_t)sb[o + 1] << 8;
	put_le32(sb + 216, (uint32_t)((sum & 0xffffffff) + (sum >> 32)));
}

static void fix_csum0(uint8_t *sb)
{
	uint64_t sum = 0;

	put_le32(sb + 38 * 4, 0);
	for (unsigned i = 0; i < 1024; i++)
		sum += le32_at(sb + 4 * i);
	put_le32(sb + 38 * 4, (uint32_t)((sum & 0xffffffff) + (sum >> 32)));
}

static bool find_fixtures(void)
{
	char exe[900];
	ssize_t n;
	struct stat st;

	if (!stat("tests/fixtures/md/r0/info.txt", &st)) {
		snprintf(fixdir, sizeof(fixdir), "tests/fixtures/md");
		return true;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	for (char *slash = strrchr(exe, '/'); slash; slash = strrchr(exe, '/')) {
		*slash = '\0';
		snprintf(fixdir, sizeof(fixdir), "%s/tests/fixtures/md/r0/info.txt", exe);
		if (!stat(fixdir, &st)) {
			snprintf(fixdir, sizeof(fixdir), "%s/tests/fixtures/md", exe);
			return true;
		}
	}
	return false;
}

struct fixture {
	char name[32];
	char metadata[8];
	int level;
	char layout[32];
	unsigned chunk_kib;
	bool bitmap;
	char action[16];
	unsigned n;
	char member[8][48]; /* "missing" for a missing member */
	unsigned mib[8];
};

static const char *const fixture_names[] = {
    "r0",      "r0-orig",   "r0-alt",  "r1-bm",	   "r1-spare", "r4",	    "r5-ls-bm",
    "r5-la",   "r5-rs",	    "r5-ra",   "r5-pf",	   "r5-pl",    "r5-c16",    "r6",
    "r6-ls6",  "r10-n2",    "r10-f2",  "r10-o2",   "r10-n2x3", "v10-r1-bm", "v11-r5",
    "v090-r5", "r5-failed", "r5-miss", "r5-rebld",
};
#define NFIX (sizeof(fixture_names) / sizeof(fixture_names[0]))

static void load_fixture(const char *name, struct fixture *fx)
{
	char path[PATH_MAX], line[512];
	FILE *f;

	memset(fx, 0, sizeof(*fx));
	snprintf(path, sizeof(path), "%s/%s/info.txt", fixdir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *v = strchr(line, '='), *tok, *save;

		if (!v)
			continue;
		*v++ = '\0';
		v[strcspn(v, "\n")] = '\0';
		if (!strcmp(line, "name"))
			snprintf(fx->name, sizeof(fx->name), "%s", v);
		else if (!strcmp(line, "metadata"))
			snprintf(fx->metadata, sizeof(fx->metadata), "%s", v);
		else if (!strcmp(line, "level"))
			fx->level = atoi(v);
		else if (!strcmp(line, "layout"))
			snprintf(fx->layout, sizeof(fx->layout), "%s", v);
		else if (!strcmp(line, "chunk_kib"))
			fx->chunk_kib = (unsigned)atoi(v);
		else if (!strcmp(line, "bitmap"))
			fx->bitmap = strcmp(v, "none") != 0;
		else if (!strcmp(line, "action"))
			snprintf(fx->action, sizeof(fx->action), "%s", v);
		else if (!strcmp(line, "members")) {
			fx->n = 0;
			for (tok = strtok_r(v, " ", &save); tok && fx->n < 8;
			     tok = strtok_r(NULL, " ", &save))
				snprintf(fx->member[fx->n++], sizeof(fx->member[0]), "%s", tok);
		} else if (!strcmp(line, "member_mib")) {
			unsigned i = 0;

			for (tok = strtok_r(v, " ", &save); tok && i < 8;
			     tok = strtok_r(NULL, " ", &save))
				fx->mib[i++] = (unsigned)atoi(tok);
		}
	}
	fclose(f);
	assert_string_equal(fx->name, name);
	assert_true(fx->n > 0);
}

/*
 * Member I of FX as an in-memory device of its full size.  Only the first MiB is unpacked
 * unless the superblock lives at the end (1.0 and 0.90) or FULL is asked for.
 */
static struct bs_bdev *load_member(const struct fixture *fx, unsigned i, bool full)
{
	uint64_t size = (uint64_t)fx->mib[i] * MIB, want = size, got = 0;
	char cmd[PATH_MAX + 64];
	struct bs_bdev *b;
	uint8_t *data;
	FILE *p;
	size_t n;

	if (!full && strcmp(fx->metadata, "1.0") && strcmp(fx->metadata, "0.90"))
		want = MIB;
	assert_int_equal(bs_mem_bdev_create(fx->member[i], size, false, &b), 0);
	data = bs_mem_bdev_data(b);
	snprintf(cmd, sizeof(cmd), "xz -dc '%s/%s/%s.xz'", fixdir, fx->name, fx->member[i]);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (got < want && (n = fread(data + got, 1, want - got, p)) > 0)
		got += n;
	pclose(p);
	assert_true(got == want);
	return b;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return s;
}

/* The value of "KEY : value" in examine text, or NULL. */
static const char *field(const char *text, const char *key, char *buf, size_t len)
{
	const char *p = text;
	size_t kl = strlen(key);

	while (p && *p) {
		const char *e = strchr(p, '\n'), *k = p;

		while (*k == ' ')
			k++;
		if (!strncmp(k, key, kl) && !strncmp(k + kl, " : ", 3)) {
			size_t vl = (e ? (size_t)(e - k) : strlen(k)) - kl - 3;

			if (vl >= len)
				vl = len - 1;
			memcpy(buf, k + kl + 3, vl);
			buf[vl] = '\0';
			return buf;
		}
		p = e ? e + 1 : NULL;
	}
	return NULL;
}

/* Compares two texts line by line, printing both on the first difference. */
static void same_text(const char *what, const char *want, const char *got)
{
	const char *a = want, *b = got;
	unsigned line = 1;

	while (*a || *b) {
		size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");

		if (la != lb || memcmp(a, b, la)) {
			fprintf(stderr, "%s: line %u differs:\nwant: %.*s\ngot:  %.*s\n", what,
				line, (int)la, a, (int)lb, b);
			fprintf(stderr, "--- want:\n%s\n--- got:\n%s\n", want, got);
			fail();
		}
		a += la + (a[la] == '\n');
		b += lb + (b[lb] == '\n');
		line++;
	}
}

/* 0.90 examine text without the device names mdadm looks up in /dev. */
static void strip_dev_names(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		char *e = strchr(r, '\n');
		size_t l = e ? (size_t)(e - r) : strlen(r);
		char *dev = memmem(r, l, "   /dev/", 8);

		if (dev)
			l = (size_t)(dev - r);
		memmove(w, r, l);
		w += l;
		if (e)
			*w++ = '\n';
		r = e ? e + 1 : r + l;
	}
	*w = '\0';
}

static const char *level_text(int level)
{
	static char buf[16];

	if (level == -1)
		return "linear";
	snprintf(buf, sizeof(buf), "raid%d", level);
	return buf;
}

static int run(const char *cmd, char *out, size_t len)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0, r;

	if (!p)
		return -1;
	while (n + 1 < len && (r = fread(out + n, 1, len - 1 - n, p)) > 0)
		n += r;
	out[n] = '\0';
	return pclose(p);
}

/* ---- fixtures ------------------------------------------------------------------------ */

static void check_fields(const struct fixture *fx, const struct md_sb *sb, const char *ex,
			 const uint8_t *raw_sb)
{
	char v[256], want[64], u[36];

	if (sb->major == 1) {
		md_uuid_format(sb->set_uuid, u);
		assert_string_equal(field(ex, "Array UUID", v, sizeof(v)), u);
		assert_string_equal(field(ex, "Name", v, sizeof(v)), sb->set_name);
		snprintf(want, sizeof(want), "fixture:%s", fx->name);
		assert_string_equal(sb->set_name, want);
		snprintf(want, sizeof(want), "0x%x", sb->feature_map);
		assert_string_equal(field(ex, "Feature Map", v, sizeof(v)), want);
		snprintf(want, sizeof(want), "%llu sectors", (unsigned long long)sb->data_size);
		assert_non_null(strstr(field(ex, "Avail Dev Size", v, sizeof(v)), want));
		if (field(ex, "Used Dev Size", v, sizeof(v))) {
			snprintf(want, sizeof(want), "%llu sectors", (unsigned long long)sb->size);
			assert_non_null(strstr(v, want));
		} else if (sb->level > 0) {
			assert_true(sb->size == sb->data_size);
		}
		if (field(ex, "Data Offset", v, sizeof(v)))
			assert_true(strtoull(v, NULL, 10) == sb->data_offset);
		else
			assert_true(sb->data_offset == 0);
		assert_true(strtoull(field(ex, "Super Offset", v, sizeof(v)), NULL, 10) ==
			    sb->super_offset);
		if (field(ex, "Recovery Offset", v, sizeof(v))) {
			assert_true(sb->feature_map & MD_FEATURE_RECOVERY_OFFSET);
			assert_true(strtoull(v, NULL, 10) == sb->recovery_offset);
		} else {
			assert_false(sb->feature_map & MD_FEATURE_RECOVERY_OFFSET);
		}
		md_uuid_format(sb->device_uuid, u);
		assert_string_equal(field(ex, "Device UUID", v, sizeof(v)), u);
		if (field(ex, "Internal Bitmap", v, sizeof(v)))
			assert_int_equal(atoi(v), sb->bitmap_offset);
		else
			assert_false(sb->feature_map & MD_FEATURE_BITMAP_OFFSET);
		assert_non_null(field(ex, "Bad Block Log", v, sizeof(v)));
		snprintf(want, sizeof(want), "%u entries available at offset %d sectors",
			 sb->bblog_size * 64u, sb->bblog_offset);
		assert_string_equal(v, want);
		/* the checksum on disk is the one mdadm found correct */
		snprintf(want, sizeof(want), "%x - correct", le32_at(raw_sb + 216));
		assert_string_equal(field(ex, "Checksum", v, sizeof(v)), want);
		{
			unsigned role = sb->dev_roles[sb->dev_number];

			if (role >= MD_ROLE_FAULTY)
				snprintf(want, sizeof(want), "spare");
			else
				snprintf(want, sizeof(want), "Active device %u", role);
			assert_string_equal(field(ex, "Device Role", v, sizeof(v)), want);
		}
		assert_int_equal(strcmp(fx->metadata, "1.2") ? strcmp(fx->metadata, "1.1") ? 0 : 1
							     : 2,
				 sb->minor);
	} else {
		md_uuid_format(sb->set_uuid, u);
		assert_string_equal(field(ex, "UUID", v, sizeof(v)), u);
		assert_string_equal(field(ex, "Version", v, sizeof(v)), "0.90.00");
		snprintf(want, sizeof(want), "%llu (", (unsigned long long)sb->size / 2);
		assert_non_null(strstr(field(ex, "Used Dev Size", v, sizeof(v)), want));
		assert_int_equal(atoi(field(ex, "Total Devices", v, sizeof(v))), sb->v0.nr_disks);
		assert_int_equal(atoi(field(ex, "Preferred Minor", v, sizeof(v))), sb->v0.md_minor);
		snprintf(want, sizeof(want), "%x - correct", sb->v0.sb_csum);
		assert_string_equal(field(ex, "Checksum", v, sizeof(v)), want);
		assert_string_equal(fx->metadata, "0.90");
	}
	assert_string_equal(field(ex, "Raid Level", v, sizeof(v)), level_text(sb->level));
	assert_int_equal(sb->level, fx->level);
	assert_int_equal(atoi(field(ex, "Raid Devices", v, sizeof(v))), sb->raid_disks);
	assert_true(strtoull(field(ex, "Events", v, sizeof(v)), NULL, 10) == sb->events);
	assert_string_equal(field(ex, "State", v, sizeof(v)),
			    sb->resync_offset == MD_MAX_SECTOR ? "clean" : "active");
	if (field(ex, "Chunk Size", v, sizeof(v))) {
		snprintf(want, sizeof(want), "%uK", sb->chunksize / 2);
		assert_string_equal(v, want);
		assert_int_equal(sb->chunksize / 2, fx->chunk_kib);
	}
	if (strcmp(fx->layout, "-") && fx->level != 10) {
		assert_non_null(field(ex, "Layout", v, sizeof(v)));
		assert_string_equal(v, fx->layout);
	}
	if (fx->level == 10) {
		const char *want10 = !strcmp(fx->layout, "n2")	 ? "near=2"
				     : !strcmp(fx->layout, "f2") ? "far=2"
								 : "offset=2";

		assert_string_equal(field(ex, "Layout", v, sizeof(v)), want10);
	}
}

static void test_fixtures(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	for (unsigned f = 0; f < NFIX; f++) {
		struct fixture fx;
		char path[PATH_MAX], *brief;
		unsigned present = 0;

		load_fixture(fixture_names[f], &fx);
		snprintf(path, sizeof(path), "%s/%s/brief.txt", fixdir, fx.name);
		brief = slurp(path);
		assert_non_null(brief);
		for (unsigned i = 0; i < fx.n; i++) {
			struct strbuf ex = STRBUF_INIT;
			struct bs_bdev *b, *copy;
			struct md_sb sb, again;
			const char *why = NULL;
			char *want;
			uint8_t *raw;
			unsigned sbbytes;

			if (!strcmp(fx.member[i], "missing"))
				continue;
			present++;
			b = load_member(&fx, i, false);
			if (md_sb_read(b, &sb, &why))
				fail_msg("%s: %s", fx.member[i], why);
			assert_int_equal(md_sb_read_any(b, &again, &why), 0);
			assert_memory_equal(&sb, &again, sizeof(sb));
			if (sb.major == 1)
				assert_null(md_sb_readonly_reason(&sb));
			raw = bs_mem_bdev_data(b) + sb.super_offset * 512;

			snprintf(path, sizeof(path), "%s/%s/%s", fixdir, fx.name, fx.member[i]);
			snprintf(path + strlen(path) - 4, 16, ".examine.txt");
			want = slurp(path);
			assert_non_null(want);
			check_fields(&fx, &sb, want, raw);

			/* examine, line by line */
			md_sb_examine(&sb, fx.member[i], &ex);
			if (sb.major == 0)
				strip_dev_names(want);
			same_text(fx.member[i], want, sb_str(&ex));
			sb_reset(&ex);

			/* the brief line of every member is the array's */
			md_sb_array_line(&sb, &ex);
			assert_int_equal(strncmp(brief, sb_str(&ex), strlen(sb_str(&ex))), 0);
			sb_free(&ex);
			free(want);

			/* writing back gives the kernel's bytes */
			if (sb.major == 1) {
				assert_int_equal(
				    bs_mem_bdev_create("copy", bs_bdev_size(b), false, &copy), 0);
				assert_int_equal(md_sb_write(copy, &sb), 0);
				sbbytes = 256 + 2 * sb.max_dev;
				assert_memory_equal(bs_mem_bdev_data(copy) + sb.super_offset * 512,
						    raw, sbbytes);
				/* and nothing but the superblock's own sectors */
				for (uint64_t k = 0; k < bs_bdev_size(copy); k += 512)
					if (k / 512 < sb.super_offset ||
					    k / 512 >= sb.super_offset + (sbbytes + 511) / 512)
						assert_int_equal(bs_mem_bdev_data(copy)[k], 0);
				bs_bdev_close(copy);
			}
			bs_bdev_close(b);
		}
		assert_true(present > 0);
		free(brief);
	}
}

/* What the special fixtures show beyond the generic checks. */
static void test_fixture_states(void **state)
{
	struct fixture fx;
	struct bs_bdev *b;
	struct md_sb sb;
	const char *why;

	(void)state;
	/* an interrupted rebuild: the new member records how far it got */
	load_fixture("r5-rebld", &fx);
	b = load_member(&fx, 2, false);
	assert_int_equal(md_sb_read(b, &sb, &why), 0);
	assert_true(sb.feature_map & MD_FEATURE_RECOVERY_OFFSET);
	assert_true(sb.recovery_offset > 0 && sb.recovery_offset < sb.size);
	assert_true(sb.data_size > sb.size); /* a bigger member */
	assert_int_equal(sb.dev_roles[sb.dev_number], 2);
	bs_bdev_close(b);

	/* a failed member: the survivors mark it faulty and are newer */
	load_fixture("r5-failed", &fx);
	{
		struct md_sb s0, s1;

		b = load_member(&fx, 0, false);
		assert_int_equal(md_sb_read(b, &s0, &why), 0);
		bs_bdev_close(b);
		b = load_member(&fx, 1, false);
		assert_int_equal(md_sb_read(b, &s1, &why), 0);
		bs_bdev_close(b);
		assert_true(s0.events > s1.events);
		assert_int_equal(s0.dev_roles[s1.dev_number], MD_ROLE_FAULTY);
		assert_int_equal(s1.dev_roles[s1.dev_number], 1);
	}

	/* created with a member missing */
	load_fixture("r5-miss", &fx);
	b = load_member(&fx, 0, false);
	assert_int_equal(md_sb_read(b, &sb, &why), 0);
	assert_int_equal(sb.raid_disks, 3);
	for (unsigned i = 0; i < sb.max_dev; i++)
		assert_true(sb.dev_roles[i] != 2);
	bs_bdev_close(b);

	/* a spare */
	load_fixture("r1-spare", &fx);
	b = load_member(&fx, 2, false);
	assert_int_equal(md_sb_read(b, &sb, &why), 0);
	assert_int_equal(sb.dev_roles[sb.dev_number], MD_ROLE_SPARE);
	bs_bdev_close(b);

	/* RAID0: equal members have no layout feature, unequal ones say which */
	load_fixture("r0", &fx);
	b = load_member(&fx, 0, false);
	assert_int_equal(md_sb_read(b, &sb, &why), 0);
	assert_false(sb.feature_map & MD_FEATURE_RAID0_LAYOUT);
	bs_bdev_close(b);
	load_fixture("r0-alt", &fx);
	b = load_member(&fx, 2, false);
	assert_int_equal(md_sb_read(b, &sb, &why), 0);
	assert_true(sb.feature_map & MD_FEATURE_RAID0_LAYOUT);
	assert_int_equal(sb.layout, 2);
	assert_true(sb.data_size == 16 * 2048 - sb.data_offset);
	bs_bdev_close(b);

	/* 1.0 with the bitmap before the superblock, 1.1 at sector 0, 0.90 at the end */
	load_fixture("v10-r1-bm", &fx);
	b = load_member(&fx, 1, false);
	assert_int_equal(md_sb_read(b, &sb, &why), 0);
	assert_int_equal(sb.minor, 0);
	assert_true(sb.super_offset == ((8 * 2048 - 16) & ~7ull));
	assert_true(sb.bitmap_offset < 0);
	assert_true(sb.data_offset == 0);
	bs_bdev_close(b);
	load_fixture("v11-r5", &fx);
	b = load_member(&fx, 0, false);
	assert_int_equal(md_sb_read(b, &sb, &why), 0);
	assert_int_equal(sb.minor, 1);
	assert_true(sb.super_offset == 0);
	bs_bdev_close(b);
	load_fixture("v090-r5", &fx);
	b = load_member(&fx, 1, false);
	assert_int_equal(md_sb_read(b, &sb, &why), 0);
	assert_int_equal(sb.major, 0);
	assert_int_equal(sb.minor, 90);
	assert_true(sb.super_offset == 8 * 2048 - 128);
	assert_int_equal(sb.dev_roles[sb.dev_number], 1);
	assert_non_null(md_sb_readonly_reason(&sb));
	assert_int_equal(md_sb_write(b, &sb), -EINVAL); /* 0.90 is read-only */
	bs_bdev_close(b);
}

static void test_fixture_bitmaps(void **state)
{
	(void)state;
	for (unsigned f = 0; f < NFIX; f++) {
		struct fixture fx;

		load_fixture(fixture_names[f], &fx);
		if (!fx.bitmap)
			continue;
		for (unsigned i = 0; i < fx.n; i++) {
			struct bs_bdev *b = load_member(&fx, i, false);
			struct md_bitmap_sb bsb;
			struct md_sb sb;
			const char *why;
			char path[PATH_MAX], v[128], want[64], u[36], *txt;
			uint64_t at, nbits, dirty = 0;
			uint8_t *bits;

			assert_int_equal(md_sb_read(b, &sb, &why), 0);
			at = sb.super_offset + (uint64_t)(int64_t)sb.bitmap_offset;
			if (md_bitmap_sb_read(b, at, &bsb, &why))
				fail_msg("%s: %s", fx.member[i], why);
			if (md_bitmap_sb_check(&bsb, &sb, &why))
				fail_msg("%s: %s", fx.member[i], why);
			snprintf(path, sizeof(path), "%s/%s/%s", fixdir, fx.name, fx.member[i]);
			snprintf(path + strlen(path) - 4, 16, ".bitmap.txt");
			txt = slurp(path);
			assert_non_null(txt);
			snprintf(want, sizeof(want), "%u", bsb.version);
			assert_string_equal(field(txt, "Version", v, sizeof(v)), want);
			md_uuid_format(bsb.uuid, u);
			assert_string_equal(field(txt, "UUID", v, sizeof(v)), u);
			assert_true(strtoull(field(txt, "Events", v, sizeof(v)), NULL, 10) ==
				    bsb.events);
			assert_true(strtoull(field(txt, "Events Cleared", v, sizeof(v)), NULL,
					     10) == bsb.events_cleared);
			assert_true(strtoull(field(txt, "Sync Size", v, sizeof(v)), NULL, 10) ==
				    bsb.sync_size / 2);
			assert_true(strtoull(field(txt, "Chunksize", v, sizeof(v)), NULL, 10) *
					MIB ==
				    bsb.chunksize);
			snprintf(want, sizeof(want), "%us flush period", bsb.daemon_sleep);
			assert_string_equal(field(txt, "Daemon", v, sizeof(v)), want);
			assert_string_equal(field(txt, "Write Mode", v, sizeof(v)), "Normal");
			assert_int_equal(bsb.write_behind, 0);
			nbits = md_bitmap_bits(bsb.sync_size, bsb.chunksize);
			bits = calloc(1, nbits / 8 + 1);
			assert_int_equal(md_bitmap_bits_read(b, at, bits, nbits), 0);
			for (uint64_t k = 0; k < nbits; k++)
				dirty += (bits[k / 8] >> (k % 8)) & 1;
			snprintf(want, sizeof(want), "%llu bits (chunks), %llu dirty",
				 (unsigned long long)nbits, (unsigned long long)dirty);
			assert_non_null(strstr(field(txt, "Bitmap", v, sizeof(v)), want));
			/* mdadm's size of the bitmap, which examine's Unused Space uses */
			assert_int_equal(sb.bitmap_sectors,
					 (256 + (nbits + 7) / 8 + 4095) / 4096 * 8);
			free(bits);
			free(txt);
			bs_bdev_close(b);
		}
	}
}

/* ---- hostile superblocks ----------------------------------------------------------------- */

/* A mutation of a 1.2 superblock (checksum fixed afterwards unless RAW). */
struct mut {
	const char *what;
	unsigned off, width; /* byte offset in the superblock, 1/2/4/8 */
	uint64_t value;
	int err;
	const char *why;
	bool raw;
};

static void put_width(uint8_t *p, unsigned width, uint64_t v)
{
	if (width == 1)
		*p = (uint8_t)v;
	else if (width == 2)
		put_le16(p, (uint16_t)v);
	else if (width == 4)
		put_le32(p, (uint32_t)v);
	else
		put_le64(p, v);
}

static void expect_refusal(struct bs_bdev *b, const char *what, int err, const char *reason)
{
	uint64_t size = bs_bdev_size(b);
	uint8_t *before = malloc(size);
	struct md_sb sb;
	const char *why = NULL;
	int r;

	memcpy(before, bs_mem_bdev_data(b), size);
	r = md_sb_read(b, &sb, &why);
	if (r != err || !why || !strstr(why, reason))
		fail_msg("%s: got %d '%s', want %d '%s'", what, r, why ? why : "(null)", err,
			 reason);
	/* reading never writes */
	assert_memory_equal(before, bs_mem_bdev_data(b), size);
	free(before);
}

static void test_hostile_1x(void **state)
{
	static const struct mut muts[] = {
	    {"magic", 0, 4, 0x12345678, -ENOENT, "no md superblock", true},
	    {"major_version", 4, 4, 2, -EINVAL, "major_version 2"},
	    {"checksum", 216, 4, 0xdeadbeef, -EINVAL, "checksum mismatch", true},
	    {"a flipped bit", 72, 1, 0x07, -EINVAL, "checksum mismatch", true},
	    {"max_dev too big", 220, 4, 385, -EINVAL, "max_dev 385"},
	    {"max_dev 0", 220, 4, 0, -EINVAL, "max_dev 0"},
	    {"level", 72, 4, 7, -EINVAL, "level 7"},
	    {"level multipath", 72, 4, (uint32_t)-4, -EINVAL, "level -4"},
	    {"raid_disks 0", 92, 4, 0, -EINVAL, "raid_disks 0"},
	    {"raid_disks 385", 92, 4, 385, -EINVAL, "raid_disks 385"},
	    {"raid_disks 1 for raid5", 92, 4, 1, -EINVAL, "too few for raid5"},
	    {"chunk not a power of two", 88, 4, 96, -EINVAL, "chunksize 96"},
	    {"chunk below 4 KiB", 88, 4, 4, -EINVAL, "chunksize 4"},
	    {"chunk 0", 88, 4, 0, -EINVAL, "chunksize 0"},
	    {"layout", 76, 4, 6, -EINVAL, "layout 6"},
	    {"RAID0_LAYOUT on raid5", 8, 4, MD_FEATURE_RAID0_LAYOUT | 1, -EINVAL, "RAID0_LAYOUT"},
	    {"unknown feature", 8, 4, 0x2001, -EINVAL, "unknown feature bits 0x2000"},
	    {"pad0", 12, 4, 1, -EINVAL, "pad0"},
	    {"pad3", 240, 1, 1, -EINVAL, "pad3"},
	    {"super_offset", 144, 8, 16, -EINVAL, "super_offset 16"},
	    {"data_offset beyond the device", 128, 8, 20000, -EINVAL, "ends beyond the device"},
	    {"data_size beyond the device", 136, 8, 14337, -EINVAL, "ends beyond the device"},
	    {"data_size huge", 136, 8, UINT64_MAX - 100, -EINVAL, "ends beyond the device"},
	    {"data_size tiny", 136, 8, 9, -EINVAL, "data_size 9"},
	    {"data on the superblock", 128, 8, 8, -EINVAL, "overlaps the data area"},
	    {"size beyond data_size", 80, 8, 14337, -EINVAL, "size 14337 exceeds data_size"},
	    {"size 0", 80, 8, 0, -EINVAL, "size is 0"},
	    {"dev_number", 160, 4, 128, -EINVAL, "dev_number 128"},
	    {"role beyond raid_disks", 256 + 2, 2, 3, -EINVAL, "dev_roles[1] = 3"},
	    {"role 0xfff0", 256 + 2, 2, 0xfff0, -EINVAL, "dev_roles[1] = 65520"},
	    {"a role claimed thrice", 256 + 8, 2, 0, -EINVAL, "claimed by"},
	    {"bitmap into the data", 96, 4, 2040, -EINVAL, "points into the data area"},
	    {"bitmap before the device", 96, 4, (uint32_t)-9, -EINVAL, "outside the device"},
	    {"bitmap beyond the device", 96, 4, 20000, -EINVAL, "outside the device"},
	    {"bitmap on the superblock", 96, 4, 0, -EINVAL, "overlaps the superblock"},
	    {"bad block log in the data", 188, 4, 2100, -EINVAL, "bad block log"},
	    {"journal role without the feature", 256, 2, MD_ROLE_JOURNAL, -EINVAL, "journal"},
	    {"clustered", 8, 4, MD_FEATURE_BITMAP_OFFSET | MD_FEATURE_CLUSTERED, -EOPNOTSUPP,
	     "clustered"},
	    {"journal", 8, 4, MD_FEATURE_BITMAP_OFFSET | MD_FEATURE_JOURNAL, -EOPNOTSUPP,
	     "journal"},
	    {"bad blocks", 8, 4, MD_FEATURE_BITMAP_OFFSET | MD_FEATURE_BAD_BLOCKS, -EOPNOTSUPP,
	     "bad blocks"},
	    {"reshape", 8, 4, MD_FEATURE_BITMAP_OFFSET | MD_FEATURE_RESHAPE_ACTIVE, -EOPNOTSUPP,
	     "reshape"},
	};
	struct fixture fx;
	struct bs_bdev *orig;

	(void)state;
	load_fixture("r5-ls-bm", &fx); /* 1.2, raid5, 3 devices, bitmap, 8 MiB members */
	orig = load_member(&fx, 0, false);
	for (unsigned k = 0; k < sizeof(muts) / sizeof(muts[0]); k++) {
		const struct mut *m = &muts[k];
		struct bs_bdev *b;
		uint8_t *sb;

		assert_int_equal(bs_mem_bdev_create("m", bs_bdev_size(orig), false, &b), 0);
		memcpy(bs_mem_bdev_data(b), bs_mem_bdev_data(orig), MIB);
		sb = bs_mem_bdev_data(b) + 4096;
		if (!strcmp(m->what, "a role claimed thrice")) {
			put_le16(sb + 256 + 2, 0);
			put_le16(sb + 256 + 6, 0); /* dev 3 holds role 2 in this array */
		}
		put_width(sb + m->off, m->width, m->value);
		if (!m->raw)
			fix_csum1(sb);
		expect_refusal(b, m->what, m->err, m->why);
		/* what md_sb_read refuses as unsupported, examine still reads */
		if (m->err == -EOPNOTSUPP) {
			struct md_sb s;
			const char *why;

			assert_int_equal(md_sb_read_any(b, &s, &why), 0);
		}
		bs_bdev_close(b);
	}

	/* a truncated member: the data area no longer fits */
	{
		struct bs_bdev *b;

		assert_int_equal(bs_mem_bdev_create("short", 6 * MIB, false, &b), 0);
		memcpy(bs_mem_bdev_data(b), bs_mem_bdev_data(orig), MIB);
		expect_refusal(b, "truncated", -EINVAL, "ends beyond the device (12288 sectors)");
		bs_bdev_close(b);
		assert_int_equal(bs_mem_bdev_create("tiny", 4096, false, &b), 0);
		expect_refusal(b, "4 KiB device", -ENOENT, "no md superblock");
		bs_bdev_close(b);
	}
	/* recovery_offset past the used size */
	{
		struct bs_bdev *b;
		uint8_t *sb;

		assert_int_equal(bs_mem_bdev_create("r", bs_bdev_size(orig), false, &b), 0);
		memcpy(bs_mem_bdev_data(b), bs_mem_bdev_data(orig), MIB);
		sb = bs_mem_bdev_data(b) + 4096;
		put_le32(sb + 8, MD_FEATURE_BITMAP_OFFSET | MD_FEATURE_RECOVERY_OFFSET);
		put_le64(sb + 152, 14336);
		fix_csum1(sb);
		{
			struct md_sb s;
			const char *why;

			assert_int_equal(md_sb_read(b, &s, &why), 0); /* at the end: fine */
		}
		put_le64(sb + 152, 14337);
		fix_csum1(sb);
		expect_refusal(b, "recovery_offset", -EINVAL, "recovery_offset 14337");
		bs_bdev_close(b);
	}
	/* raid10 and raid6 geometry, and raid0 chunks */
	{
		static const struct {
			uint32_t level, layout, disks, chunk;
			const char *why;
		} g[] = {
		    {10, 0x105, 3, 128, "do not fit 3 devices"},
		    {10, 0x101, 3, 128, "1 near x 1 far"},
		    {10, 0x80102, 3, 128, "unknown raid10 bits"},
		    {6, 7, 4, 128, "not a raid6 layout"},
		    {6, 2, 3, 128, "too few for raid6"},
		    {0, 0, 3, 12, "not a non-zero multiple of 8"},
		};

		for (unsigned k = 0; k < sizeof(g) / sizeof(g[0]); k++) {
			struct bs_bdev *b;
			uint8_t *sb;

			assert_int_equal(bs_mem_bdev_create("g", bs_bdev_size(orig), false, &b), 0);
			memcpy(bs_mem_bdev_data(b), bs_mem_bdev_data(orig), MIB);
			sb = bs_mem_bdev_data(b) + 4096;
			put_le32(sb + 72, g[k].level);
			put_le32(sb + 76, g[k].layout);
			put_le32(sb + 92, g[k].disks);
			put_le32(sb + 88, g[k].chunk);
			put_le16(sb + 256 + 6, 0xffff);
			fix_csum1(sb);
			expect_refusal(b, g[k].why, -EINVAL, g[k].why);
			bs_bdev_close(b);
		}
	}
	bs_bdev_close(orig);
}

static void test_hostile_0_90(void **state)
{
	static const struct {
		const char *what;
		unsigned word;
		uint32_t value;
		int err;
		const char *why;
		bool raw;
	} muts[] = {
	    {"checksum", 38, 0x1234, -EINVAL, "checksum mismatch", true},
	    {"version", 2, 89, -EINVAL, "neither 0.90 nor 0.91"},
	    {"major", 1, 1, -EINVAL, "neither 0.90 nor 0.91"},
	    {"raid_disks", 10, 28, -EINVAL, "raid_disks 28"},
	    {"nr_disks", 9, 40, -EINVAL, "nr_disks 40"},
	    {"level", 7, 3, -EINVAL, "level 3"},
	    {"size", 8, 1u << 30, -EINVAL, "does not fit the device"},
	    {"chunk_size", 65, 1000, -EINVAL, "chunk_size 1000 bytes"},
	    {"this_disk", 992, 30, -EINVAL, "this_disk number 30"},
	    {"disks[1].raid_disk", 128 + 32 + 3, 9, -EINVAL, "disks[1].raid_disk 9"},
	    {"reshape (0.91)", 2, 91, -EOPNOTSUPP, "0.91"},
	};
	struct fixture fx;
	struct bs_bdev *orig;
	uint64_t at = 8 * 2048 - 128;

	(void)state;
	load_fixture("v090-r5", &fx);
	orig = load_member(&fx, 0, false);
	for (unsigned k = 0; k < sizeof(muts) / sizeof(muts[0]); k++) {
		struct bs_bdev *b;
		uint8_t *sb;

		assert_int_equal(bs_mem_bdev_create("m", bs_bdev_size(orig), false, &b), 0);
		memcpy(bs_mem_bdev_data(b), bs_mem_bdev_data(orig), bs_bdev_size(orig));
		sb = bs_mem_bdev_data(b) + at * 512;
		put_le32(sb + 4 * muts[k].word, muts[k].value);
		if (!muts[k].raw)
			fix_csum0(sb);
		expect_refusal(b, muts[k].what, muts[k].err, muts[k].why);
		bs_bdev_close(b);
	}
	bs_bdev_close(orig);
}

static void test_readonly_features(void **state)
{
	struct fixture fx;
	struct bs_bdev *b;
	struct md_sb sb;
	const char *why;
	uint8_t *raw;

	(void)state;
	load_fixture("r5-la", &fx); /* no bitmap */
	b = load_member(&fx, 1, false);
	raw = bs_mem_bdev_data(b) + 4096;
	assert_int_equal(md_sb_read(b, &sb, &why), 0);
	assert_null(md_sb_readonly_reason(&sb));
	/* a partial parity log: 8 sectors after the superblock, 8 long */
	put_le32(raw + 8, MD_FEATURE_PPL);
	put_le32(raw + 96, 8u << 16 | 8);
	put_le32(raw + 188, 24); /* the bad block log moves out of its way */
	fix_csum1(raw);
	assert_int_equal(md_sb_read(b, &sb, &why), 0);
	assert_non_null(strstr(md_sb_readonly_reason(&sb), "PPL"));
	/* PPL and a bitmap together is not md */
	put_le32(raw + 8, MD_FEATURE_PPL | MD_FEATURE_BITMAP_OFFSET);
	fix_csum1(raw);
	expect_refusal(b, "PPL+bitmap", -EINVAL, "PPL with a bitmap");
	put_le32(raw + 8, MD_FEATURE_PPL | MD_FEATURE_MULTIPLE_PPLS);
	fix_csum1(raw);
	expect_refusal(b, "PPL+MULTIPLE_PPLS", -EINVAL, "both PPL and MULTIPLE_PPLS");
	/* a replacement in progress */
	put_le32(raw + 8, MD_FEATURE_REPLACEMENT | MD_FEATURE_RECOVERY_OFFSET);
	put_le32(raw + 96, 0);
	fix_csum1(raw);
	assert_int_equal(md_sb_read(b, &sb, &why), 0);
	assert_non_null(strstr(md_sb_readonly_reason(&sb), "REPLACEMENT"));
	bs_bdev_close(b);
}

static void test_hostile_bitmap(void **state)
{
	static const struct {
		const char *what;
		unsigned off, width;
		uint64_t value;
		int err;
		const char *why;
	} muts[] = {
	    {"magic", 0, 4, 0x6d746963, -EINVAL, "no bitmap superblock"},
	    {"version 2", 4, 4, 2, -EINVAL, "version 2"},
	    {"version 5", 4, 4, 5, -EOPNOTSUPP, "clustered"},
	    {"nodes", 68, 4, 2, -EOPNOTSUPP, "clustered"},
	    {"chunksize 256", 52, 4, 256, -EINVAL, "chunksize 256"},
	    {"chunksize 1000", 52, 4, 1000, -EINVAL, "chunksize 1000"},
	    {"daemon_sleep", 56, 4, 0, -EINVAL, "daemon_sleep"},
	    {"write_behind", 60, 4, 20000, -EINVAL, "write_behind 20000"},
	    {"sync_size 0", 40, 8, 0, -EINVAL, "sync_size is 0"},
	    {"bits past the device", 40, 8, 1ull << 50, -EINVAL, "past the end"},
	    {"bits past sectors_reserved", 64, 4, 1, -EINVAL, "sectors_reserved"},
	};
	struct fixture fx;
	struct bs_bdev *orig;
	struct md_sb sb;
	struct md_bitmap_sb bsb;
	const char *why;

	(void)state;
	load_fixture("r5-ls-bm", &fx);
	orig = load_member(&fx, 0, false);
	assert_int_equal(md_sb_read(orig, &sb, &why), 0);
	for (unsigned k = 0; k < sizeof(muts) / sizeof(muts[0]); k++) {
		struct bs_bdev *b;
		int r;

		assert_int_equal(bs_mem_bdev_create("m", bs_bdev_size(orig), false, &b), 0);
		memcpy(bs_mem_bdev_data(b), bs_mem_bdev_data(orig), MIB);
		if (!strcmp(muts[k].what, "bits past sectors_reserved"))
			put_le64(bs_mem_bdev_data(b) + 16 * 512 + 40, 1ull << 30); /* 1 KiB bits */
		put_width(bs_mem_bdev_data(b) + 16 * 512 + muts[k].off, muts[k].width,
			  muts[k].value);
		r = md_bitmap_sb_read(b, 16, &bsb, &why);
		if (r != muts[k].err || !strstr(why, muts[k].why))
			fail_msg("%s: got %d '%s'", muts[k].what, r, why ? why : "(null)");
		bs_bdev_close(b);
	}
	assert_int_equal(md_bitmap_sb_read(orig, 100000, &bsb, &why), -EINVAL);

	/* against the superblock: another array's, another size, over the data */
	assert_int_equal(md_bitmap_sb_read(orig, 16, &bsb, &why), 0);
	assert_int_equal(md_bitmap_sb_check(&bsb, &sb, &why), 0);
	bsb.uuid[3] ^= 1;
	assert_int_equal(md_bitmap_sb_check(&bsb, &sb, &why), -EINVAL);
	assert_non_null(strstr(why, "uuid"));
	bsb.uuid[3] ^= 1;
	bsb.sync_size++;
	assert_int_equal(md_bitmap_sb_check(&bsb, &sb, &why), -EINVAL);
	assert_non_null(strstr(why, "sync_size"));
	bsb.sync_size--;
	bsb.chunksize = 512; /* 14336 bits: sectors 16-19, still clear of the data at 2048 */
	assert_int_equal(md_bitmap_sb_check(&bsb, &sb, &why), 0);
	sb.data_offset = 20;
	assert_int_equal(md_bitmap_sb_check(&bsb, &sb, &why), 0);
	sb.data_offset = 19;
	assert_int_equal(md_bitmap_sb_check(&bsb, &sb, &why), -EINVAL);
	assert_non_null(strstr(why, "overlaps"));
	bs_bdev_close(orig);
}

/* ---- writing, erasing, choosing --------------------------------------------------------- */

/* A plausible 1.x superblock of a DISKS-device array on a member of DEV sectors. */
static void synth(struct md_sb *sb, int minor, int level, unsigned disks, uint64_t dev)
{
	memset(sb, 0, sizeof(*sb));
	sb->major = 1;
	sb->minor = minor;
	for (int i = 0; i < 16; i++) {
		sb->set_uuid[i] = (uint8_t)(0x10 + 7 * i);
		sb->device_uuid[i] = (uint8_t)(0xa0 + 3 * i);
	}
	snprintf(sb->set_name, sizeof(sb->set_name), "oracle:test%d", level);
	sb->ctime = 1700000000;
	sb->utime = 1700000100;
	sb->level = level;
	sb->layout = level == 5 || level == 6 ? 2 : level == 10 ? 0x102 : 0;
	sb->chunksize = level == 1 ? 0 : 128;
	sb->raid_disks = disks;
	sb->super_offset = md_sb_offset(minor, dev);
	if (minor) {
		sb->data_offset = 2048;
		sb->data_size = dev - 2048;
		sb->bblog_offset = 16;
	} else {
		sb->data_offset = 0;
		sb->data_size = sb->super_offset - 16;
		sb->bblog_offset = -8;
	}
	sb->bblog_size = 8;
	sb->size = level >= 1 ? sb->data_size & ~(uint64_t)127 : 0;
	sb->events = 42;
	sb->resync_offset = MD_MAX_SECTOR;
	sb->max_dev = 128;
	for (unsigned i = 0; i < 128; i++)
		sb->dev_roles[i] = i < disks ? (uint16_t)i : MD_ROLE_SPARE;
	sb->dev_number = 1;
}

static void test_write_rules(void **state)
{
	struct bs_bdev *b;
	struct md_sb sb, back;
	const char *why;
	uint8_t *d;

	(void)state;
	assert_int_equal(bs_mem_bdev_create("w", 16 * MIB, false, &b), 0);
	d = bs_mem_bdev_data(b);
	synth(&sb, 2, 5, 4, 16 * 2048);
	memset(d + 10 * 512, 0xaa, 512); /* a bitmap right after a 1-sector superblock */
	assert_int_equal(md_sb_write(b, &sb), 0);
	assert_int_equal(le32_at(d + 4096), 0xa92b4efc);
	assert_int_equal(d[10 * 512], 0xaa); /* untouched */
	assert_int_equal(md_sb_read(b, &back, &why), 0);
	back.dev_sectors = 0;
	back.bitmap_sectors = 0;
	assert_memory_equal(&sb, &back, sizeof(sb));

	/* max_dev 0 means 384: 1 KiB written */
	sb.max_dev = 0;
	for (unsigned i = 128; i < MD_MAX_DEVS; i++)
		sb.dev_roles[i] = MD_ROLE_SPARE;
	memset(d + 8 * 512, 0x55, 4096);
	assert_int_equal(md_sb_write(b, &sb), 0);
	assert_int_equal(d[10 * 512], 0x55);
	assert_int_equal(d[9 * 512 + 511], 0xff); /* dev_roles[383]: spare */
	assert_int_equal(md_sb_read(b, &back, &why), 0);
	assert_int_equal(back.max_dev, 384);

	/* refused: not where the minor version puts it, invalid, or 0.90 */
	{
		uint8_t *snap = malloc(16 * MIB);

		memcpy(snap, d, 16 * MIB);
		sb.max_dev = 128;
		sb.minor = 0;
		assert_int_equal(md_sb_write(b, &sb), -EINVAL);
		sb.minor = 2;
		sb.raid_disks = 0;
		assert_int_equal(md_sb_write(b, &sb), -EINVAL);
		sb.raid_disks = 4;
		sb.dev_number = 200;
		assert_int_equal(md_sb_write(b, &sb), -EINVAL);
		sb.dev_number = 1;
		sb.data_offset = 4;
		assert_int_equal(md_sb_write(b, &sb), -EINVAL);
		sb.data_offset = 2048;
		sb.major = 0;
		assert_int_equal(md_sb_write(b, &sb), -EINVAL);
		assert_memory_equal(snap, d, 16 * MIB);
		free(snap);
	}
	bs_bdev_close(b);
}

static void test_erase_and_choice(void **state)
{
	struct fixture fx;
	struct bs_bdev *b;
	struct md_sb sb, old;
	const char *why;
	uint8_t *d, *snap;
	uint64_t size;

	(void)state;
	/* erase zeroes the superblock's first sector and nothing else */
	load_fixture("r5-ls-bm", &fx);
	b = load_member(&fx, 0, false);
	d = bs_mem_bdev_data(b);
	size = bs_bdev_size(b);
	snap = malloc(size);
	memcpy(snap, d, size);
	assert_int_equal(md_sb_erase(b), 0);
	assert_int_equal(md_sb_read(b, &sb, &why), -ENOENT);
	for (uint64_t k = 0; k < size; k++)
		if (k < 4096 || k >= 4096 + 512)
			assert_int_equal(d[k], snap[k]);
	assert_int_equal(le32_at(d + 16 * 512), 0x6d746962); /* the bitmap stays */
	free(snap);
	bs_bdev_close(b);

	load_fixture("v090-r5", &fx);
	b = load_member(&fx, 0, false);
	assert_int_equal(md_sb_erase(b), 0);
	assert_int_equal(md_sb_read(b, &sb, &why), -ENOENT);
	bs_bdev_close(b);

	/* two valid superblocks: the newer wins; a broken one does not hide a good one */
	assert_int_equal(bs_mem_bdev_create("two", 16 * MIB, false, &b), 0);
	d = bs_mem_bdev_data(b);
	synth(&old, 0, 1, 2, 16 * 2048);
	assert_int_equal(md_sb_write(b, &old), 0);
	synth(&sb, 2, 1, 2, 16 * 2048);
	sb.data_offset = 2048;
	sb.data_size = 16 * 2048 - 2048 - 32; /* clear of the 1.0 superblock */
	sb.size = sb.data_size;
	sb.ctime = old.ctime + 1;
	assert_int_equal(md_sb_write(b, &sb), 0);
	assert_int_equal(md_sb_read(b, &old, &why), 0);
	assert_int_equal(old.minor, 2);
	sb.ctime -= 2;
	assert_int_equal(md_sb_write(b, &sb), 0);
	assert_int_equal(md_sb_read(b, &old, &why), 0);
	assert_int_equal(old.minor, 0);
	d[4096 + 72] ^= 1; /* the 1.2 one breaks: the 1.0 one is still found */
	assert_int_equal(md_sb_read(b, &old, &why), 0);
	assert_int_equal(old.minor, 0);
	bs_bdev_close(b);
}

static void test_uuid(void **state)
{
	uint8_t u[16], v[16];
	char s[36];

	(void)state;
	for (int i = 0; i < 16; i++)
		u[i] = (uint8_t)(i * 16 + 1);
	md_uuid_format(u, s);
	assert_string_equal(s, "01112131:41516171:8191a1b1:c1d1e1f1");
	assert_int_equal(md_uuid_parse(s, v), 0);
	assert_memory_equal(u, v, 16);
	assert_int_equal(md_uuid_parse("01112131-4151-6171-8191-a1b1c1d1e1f1", v), 0);
	assert_memory_equal(u, v, 16);
	assert_int_equal(md_uuid_parse("0111213141516171 8191A1B1C1D1E1F1", v), 0);
	assert_memory_equal(u, v, 16);
	assert_int_equal(md_uuid_parse("01112131:41516171:8191a1b1:c1d1e1f", v), -EINVAL);
	assert_int_equal(md_uuid_parse("01112131:41516171:8191a1b1:c1d1e1f1a", v), -EINVAL);
	assert_int_equal(md_uuid_parse("01112131:41516171:8191a1b1:c1d1e1g1", v), -EINVAL);
	assert_int_equal(md_uuid_parse("", v), -EINVAL);
}

/* ---- mdadm as the oracle ------------------------------------------------------------------- */

struct oracle_case {
	const char *what;
	uint64_t dev_sectors;
	int minor, level;
	unsigned disks;
	void (*tweak)(struct md_sb *sb);
	bool bitmap;
};

static void t_flags(struct md_sb *sb)
{
	sb->devflags = 3;
	sb->resync_offset = 0;
	sb->layout = 18;
	sb->cnt_corrected_read = 7;
}

static void t_recovery(struct md_sb *sb)
{
	sb->feature_map |= MD_FEATURE_RECOVERY_OFFSET;
	sb->recovery_offset = 1000;
	sb->size -= 256;
}

static void t_degraded(struct md_sb *sb)
{
	sb->raid_disks = 3;
	sb->dev_roles[1] = MD_ROLE_FAULTY;
	sb->dev_roles[3] = MD_ROLE_SPARE;
	sb->dev_number = 3;
	sb->events = 1ull << 33;
}

static void t_replacing(struct md_sb *sb)
{
	sb->raid_disks = 3;
	sb->dev_roles[3] = 1;
	sb->dev_number = 3;
	sb->feature_map |= MD_FEATURE_REPLACEMENT | MD_FEATURE_RECOVERY_OFFSET;
	sb->recovery_offset = 2048;
}

static void t_reshape(struct md_sb *sb)
{
	sb->feature_map |= MD_FEATURE_RESHAPE_ACTIVE | MD_FEATURE_NEW_OFFSET;
	sb->reshape_position = 123456;
	sb->delta_disks = 1;
	sb->new_level = 5;
	sb->new_layout = 3;
	sb->new_chunk = 256;
	sb->new_offset = -1024;
}

static void t_shrink(struct md_sb *sb)
{
	sb->feature_map |= MD_FEATURE_RESHAPE_ACTIVE;
	sb->reshape_position = 50000;
	sb->raid_disks = 4;
	sb->delta_disks = -1;
	sb->new_level = 6;
	sb->new_layout = sb->layout;
	sb->new_chunk = sb->chunksize;
	sb->dev_roles[4] = 4;
}

static void t_badblocks(struct md_sb *sb)
{
	sb->feature_map |= MD_FEATURE_BAD_BLOCKS;
	sb->bblog_shift = 3;
}

static void t_journal(struct md_sb *sb)
{
	sb->feature_map |= MD_FEATURE_JOURNAL;
	sb->dev_roles[1] = MD_ROLE_JOURNAL;
	sb->dev_roles[3] = 1;
}

static void t_ppl(struct md_sb *sb)
{
	sb->feature_map |= MD_FEATURE_PPL;
	sb->bitmap_offset = (int32_t)(248u << 16 | 8u);
	sb->bblog_offset = 264;
}

static void t_raid0(struct md_sb *sb)
{
	sb->feature_map |= MD_FEATURE_RAID0_LAYOUT;
	sb->layout = 2;
	sb->chunksize = 1024;
}

static void t_linear(struct md_sb *sb)
{
	sb->chunksize = 8;
}

static void t_far(struct md_sb *sb)
{
	sb->layout = 0x10201; /* offset=2 */
}

static void t_nearfar(struct md_sb *sb)
{
	sb->layout = 0x202;
}

static void t_noroom(struct md_sb *sb)
{
	sb->data_offset = 16;
	sb->data_size = sb->dev_sectors - 16;
	sb->size = sb->data_size;
	sb->bblog_offset = 0;
	sb->bblog_size = 0;
}

static void t_ddf(struct md_sb *sb)
{
	sb->layout = 9;
}

static void t_host(struct md_sb *sb)
{
	char h[64] = "";

	if (!gethostname(h, sizeof(h) - 1) && strlen(h) + 3 < 32)
		snprintf(sb->set_name, sizeof(sb->set_name), "%s:x", h);
}

static void t_noname(struct md_sb *sb)
{
	memset(sb->set_name, 0, sizeof(sb->set_name));
	sb->max_dev = 384;
	for (unsigned i = 128; i < 384; i++)
		sb->dev_roles[i] = MD_ROLE_SPARE;
}

static void t_longname(struct md_sb *sb)
{
	memset(sb->set_name, 'n', 32);
	sb->set_name[32] = '\0';
	sb->max_dev = 1;
	sb->raid_disks = 1;
	sb->dev_number = 0;
}

static const struct oracle_case oracle_cases[] = {
    {"raid5 4 devices, 8 MiB", 16384, 2, 5, 4, NULL, false},
    {"raid6 -6 layout, flags, active", 16384, 2, 6, 5, t_flags, false},
    {"raid1 1.1 recovering", 16384, 1, 1, 2, t_recovery, false},
    {"raid1 1.0 with a bitmap", 16384, 0, 1, 2, NULL, true},
    {"raid10 1.2 with a bitmap", 40000, 2, 10, 4, NULL, true},
    {"raid10 offset", 40000, 2, 10, 4, t_far, false},
    {"raid10 near+far", 40000, 2, 10, 4, t_nearfar, false},
    {"raid5 degraded, spare", 16384, 2, 5, 4, t_degraded, false},
    {"raid5 replacing", 16384, 2, 5, 4, t_replacing, false},
    {"raid5 reshape growing", 16384, 2, 5, 4, t_reshape, false},
    {"raid6 reshape shrinking", 16384, 2, 6, 5, t_shrink, false},
    {"raid5 bad blocks", 16384, 2, 5, 4, t_badblocks, false},
    {"raid5 journal device", 16384, 2, 5, 4, t_journal, false},
    {"raid5 PPL", 16384, 2, 5, 4, t_ppl, false},
    {"raid0 alternate", 16384, 2, 0, 3, t_raid0, false},
    {"linear", 16384, 2, -1, 3, t_linear, false},
    {"raid4, no unused space", 16384, 2, 4, 3, t_noroom, false},
    {"raid6 ddf", 16384, 2, 6, 4, t_ddf, false},
    {"name of this host", 16384, 2, 1, 2, t_host, false},
    {"no name, max_dev 384", 16384, 2, 1, 2, t_noname, false},
    {"32-byte name, max_dev 1", 16384, 1, 1, 1, t_longname, false},
    {"raid1 5 GiB", 5ull << 21, 2, 1, 2, NULL, false},
    {"raid5 3 TiB members", 3ull << 31, 2, 5, 4, NULL, false},
    {"raid1 1.0 at the end of 3 TiB", 3ull << 31, 0, 1, 2, NULL, false},
};

static void test_mdadm_oracle(void **state)
{
	(void)state;
	if (!have_mdadm)
		skip();
	setenv("TZ", "UTC", 1);
	tzset();
	for (unsigned k = 0; k < sizeof(oracle_cases) / sizeof(oracle_cases[0]); k++) {
		const struct oracle_case *c = &oracle_cases[k];
		char path[PATH_MAX], cmd[PATH_MAX + 64], *want = malloc(1 << 16);
		struct strbuf got = STRBUF_INIT;
		struct md_sb sb, back;
		struct bs_bdev *b;
		const char *why;
		int fd;

		snprintf(path, sizeof(path), "%s/case%u.img", tmpdir, k);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, (off_t)(c->dev_sectors * 512)), 0);
		close(fd);
		assert_int_equal(bs_bdev_open(path, false, &b, &why), 0);
		synth(&sb, c->minor, c->level, c->disks, c->dev_sectors);
		sb.dev_sectors = c->dev_sectors;
		if (c->bitmap) {
			struct md_bitmap_sb bsb = {.version = 4,
						   .events = 42,
						   .events_cleared = 40,
						   .chunksize = 64 * 1024,
						   .daemon_sleep = 5};
			uint8_t bits[64];

			sb.feature_map |= MD_FEATURE_BITMAP_OFFSET;
			sb.bitmap_offset = c->minor ? 8 : -16;
			if (!c->minor)
				sb.bblog_offset = -8;
			else
				sb.bblog_offset = 32;
			memcpy(bsb.uuid, sb.set_uuid, 16);
			bsb.sync_size = md_bitmap_sync_size(&sb);
			assert_int_equal(
			    md_bitmap_sb_write(
				b, sb.super_offset + (uint64_t)(int64_t)sb.bitmap_offset, &bsb),
			    0);
			memset(bits, 0, sizeof(bits));
			bits[0] = 0x81;
			bits[3] = 0x10;
			assert_int_equal(md_bitmap_bits_write(
					     b,
					     sb.super_offset + (uint64_t)(int64_t)sb.bitmap_offset,
					     bits, 0, sizeof(bits)),
					 0);
		}
		if (c->tweak)
			c->tweak(&sb);
		if (md_sb_write(b, &sb)) {
			md_sb_validate(&sb, c->dev_sectors, &why);
			fail_msg("%s: write refused: %s", c->what, why);
		}
		if (md_sb_read_any(b, &back, &why))
			fail_msg("%s: %s", c->what, why);
		md_sb_examine(&back, path, &got);
		snprintf(cmd, sizeof(cmd), "mdadm --examine '%s' 2>/dev/null", path);
		run(cmd, want, 1 << 16);
		same_text(c->what, want, sb_str(&got));
		sb_reset(&got);
		md_sb_array_line(&back, &got);
		snprintf(cmd, sizeof(cmd), "mdadm --examine --brief '%s' 2>/dev/null", path);
		run(cmd, want, 1 << 16);
		{
			/* mdadm's count of spares among the members it examined */
			char *sp = strstr(want, "\n   spares=1\n");

			if (sp)
				strcpy(sp, "\n");
		}
		same_text(c->what, want, sb_str(&got));
		if (c->bitmap) {
			/*
			 * mdadm counts the bits we wrote.  It needs a block device: on a
			 * regular file mdadm 4.2 -X takes the file for the array itself and
			 * looks for the bitmap elsewhere (even in files the kernel wrote).
			 */
			char loop[64];

			snprintf(cmd, sizeof(cmd),
				 "losetup --find --show --read-only '%s' 2>/dev/null", path);
			if (!run(cmd, loop, sizeof(loop)) && loop[0] == '/') {
				loop[strcspn(loop, "\n")] = '\0';
				snprintf(cmd, sizeof(cmd), "mdadm --examine-bitmap %s 2>/dev/null",
					 loop);
				run(cmd, want, 1 << 16);
				snprintf(cmd, sizeof(cmd), "losetup -d %s", loop);
				assert_int_equal(system(cmd), 0);
				if (!strstr(want, " bits (chunks), 3 dirty"))
					fail_msg("%s: mdadm -X says:\n%s", c->what, want);
			} else {
				fprintf(stderr, "no loop device: mdadm -X not checked\n");
			}
		}
		sb_free(&got);
		free(want);
		bs_bdev_close(b);
		unlink(path);
	}
}

static int setup(void **state)
{
	(void)state;
	if (!find_fixtures()) {
		fprintf(stderr, "cannot find tests/fixtures/md\n");
		return -1;
	}
	if (!mkdtemp(tmpdir))
		return -1;
	have_mdadm = !system("mdadm --version >/dev/null 2>&1");
	if (!have_mdadm)
		fprintf(stderr, "mdadm is not installed: its oracle test is skipped\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rmdir(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uuid),
	    cmocka_unit_test(test_fixtures),
	    cmocka_unit_test(test_fixture_states),
	    cmocka_unit_test(test_fixture_bitmaps),
	    cmocka_unit_test(test_hostile_1x),
	    cmocka_unit_test(test_hostile_0_90),
	    cmocka_unit_test(test_readonly_features),
	    cmocka_unit_test(test_hostile_bitmap),
	    cmocka_unit_test(test_write_rules),
	    cmocka_unit_test(test_erase_and_choice),
	    cmocka_unit_test(test_mdadm_oracle),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
