/*
 * md.c - Linux md superblocks (1.0/1.1/1.2 read and write, 0.90 read) and the internal
 * write-intent bitmap: parsing with every field checked, writing, and mdadm's text.
 *
 * The layouts are in md_ondisk.h (from Linux md_p.h and md-bitmap.h).  Checks follow what
 * Linux's super_1_load/super_90_load and the RAID personalities refuse, plus the ranges
 * blkstack relies on (see docs/md-format.md); text follows mdadm 4.2's examine output.
 */
#include "formats/md.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "formats/md_ondisk.h"

#define WHY_LEN 256

/* Reasons with numbers in them; valid until the next md_* call on this thread. */
static _Thread_local char why_buf[WHY_LEN];

static int refuse(const char **why, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(const char **why, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why_buf, sizeof(why_buf), fmt, ap);
	va_end(ap);
	*why = why_buf;
	return err;
}

static uint16_t g16(const uint8_t *p, unsigned o)
{
	uint16_t v;

	memcpy(&v, p + o, 2);
	return le16toh(v);
}

static uint32_t g32(const uint8_t *p, unsigned o)
{
	uint32_t v;

	memcpy(&v, p + o, 4);
	return le32toh(v);
}

static uint64_t g64(const uint8_t *p, unsigned o)
{
	uint64_t v;

	memcpy(&v, p + o, 8);
	return le64toh(v);
}

static void p16(uint8_t *p, unsigned o, uint16_t v)
{
	v = htole16(v);
	memcpy(p + o, &v, 2);
}

static void p32(uint8_t *p, unsigned o, uint32_t v)
{
	v = htole32(v);
	memcpy(p + o, &v, 4);
}

static void p64(uint8_t *p, unsigned o, uint64_t v)
{
	v = htole64(v);
	memcpy(p + o, &v, 8);
}

/* 0.90 word I of a superblock buffer (host-endian = little-endian here). */
static uint32_t w0(const uint8_t *b, unsigned i)
{
	return g32(b, 4 * i);
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Do [A, A+ALEN) and [B, B+BLEN) share a sector? */
static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < sat_add(b, blen) && b < sat_add(a, alen);
}

static unsigned sb1_bytes(uint32_t max_dev)
{
	return SB1_FIXED_BYTES + 2 * max_dev;
}

static uint64_t sb1_sectors(uint32_t max_dev)
{
	return (sb1_bytes(max_dev) + 511) / 512;
}

/* md's calc_sb_1_csum: the 32-bit little-endian words up to dev_roles[max_dev] (a trailing
 * half word included), with sb_csum counted as 0, the carries folded back once. */
static uint32_t sb1_csum(const uint8_t *sb, uint32_t max_dev)
{
	unsigned size = sb1_bytes(max_dev), o;
	uint64_t sum = 0;

	for (o = 0; o + 4 <= size; o += 4)
		sum += o == SB1_sb_csum ? 0 : g32(sb, o);
	if (size - o == 2)
		sum += g16(sb, o);
	return (uint32_t)((sum & 0xffffffffu) + (sum >> 32));
}

/* The 0.90 checksum: all 1024 words with sb_csum as 0, folded once. */
static uint32_t sb0_csum(const uint8_t *sb)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < MD_SB_WORDS; i++)
		sum += i == SB0_sb_csum ? 0 : w0(sb, i);
	return (uint32_t)((sum & 0xffffffffu) + (sum >> 32));
}

/* Linux compares 0.90 checksums folded to 16 bits (some architectures computed them so). */
static uint32_t csum_fold(uint32_t c)
{
	c = (c & 0xffff) + (c >> 16);
	return (c & 0xffff) + (c >> 16);
}

uint64_t md_sb_offset(int minor, uint64_t dev_sectors)
{
	switch (minor) {
	case 0:
		/* At least 8 KiB, less than 12 KiB from the end, 4 KiB aligned. */
		return dev_sectors >= 16 ? (dev_sectors - 16) & ~(uint64_t)7 : 0;
	case 1:
		return 0;
	default:
		return 8;
	}
}

/* ---- names ---------------------------------------------------------------------------- */

static const char *level_name(int level)
{
	switch (level) {
	case -1:
		return "linear";
	case 0:
		return "raid0";
	case 1:
		return "raid1";
	case 4:
		return "raid4";
	case 5:
		return "raid5";
	case 6:
		return "raid6";
	case 10:
		return "raid10";
	case -4:
		return "multipath";
	case -5:
		return "faulty";
	default:
		return NULL;
	}
}

static bool level_known(int level)
{
	return level == -1 || level == 0 || level == 1 || level == 4 || level == 5 || level == 6 ||
	       level == 10;
}

static const char *const r5_names[] = {"left-asymmetric", "right-asymmetric", "left-symmetric",
				       "right-symmetric", "parity-first",     "parity-last"};

static const char *r5_layout_name(uint32_t layout)
{
	return layout <= 5 ? r5_names[layout] : NULL;
}

static const char *r6_layout_name(uint32_t layout)
{
	static const char *const ddf[] = {"ddf-zero-restart", "ddf-N-restart", "ddf-N-continue"};
	static const char *const six[] = {"left-asymmetric-6", "right-asymmetric-6",
					  "left-symmetric-6", "right-symmetric-6",
					  "parity-first-6"};

	if (layout <= 5)
		return r5_names[layout];
	if (layout >= 8 && layout <= 10)
		return ddf[layout - 8];
	if (layout >= 16 && layout <= 20)
		return six[layout - 16];
	return NULL;
}

static const char *r0_layout_name(uint32_t layout)
{
	return layout == 1   ? "original"
	       : layout == 2 ? "alternate"
	       : layout == 0 ? "dangerous"
			     : NULL;
}

/* ---- checks --------------------------------------------------------------------------- */

static int check_geometry(const struct md_sb *sb, uint32_t max_disks, const char **why)
{
	uint32_t c = sb->chunksize, l = sb->layout;

	if (!level_known(sb->level))
		return refuse(why, -EINVAL,
			      "level %d is not supported (linear, 0, 1, 4, 5, 6 or 10)", sb->level);
	if (sb->raid_disks == 0 || sb->raid_disks > max_disks)
		return refuse(why, -EINVAL, "raid_disks %u out of range (1-%u)", sb->raid_disks,
			      max_disks);
	if ((sb->level == 4 || sb->level == 5) && sb->raid_disks < 2)
		return refuse(why, -EINVAL, "raid_disks %u is too few for raid%d", sb->raid_disks,
			      sb->level);
	if (sb->level == 6 && sb->raid_disks < 4)
		return refuse(why, -EINVAL, "raid_disks %u is too few for raid6 (at least 4)",
			      sb->raid_disks);
	switch (sb->level) {
	case 4:
	case 5:
	case 6:
	case 10:
		if (c < 8 || (c & (c - 1)))
			return refuse(why, -EINVAL,
				      "chunksize %u sectors is not a power of two of at least 8 "
				      "(raid%d)",
				      c, sb->level);
		break;
	case 0:
		if (c == 0 || c % 8)
			return refuse(
			    why, -EINVAL,
			    "chunksize %u sectors is not a non-zero multiple of 8 (raid0)", c);
		break;
	}
	if (sb->level == 5 && !r5_layout_name(l))
		return refuse(why, -EINVAL, "layout %u is not a raid5 layout (0-5)", l);
	if (sb->level == 4 && l > 5)
		return refuse(why, -EINVAL, "layout %u is not a raid4 layout", l);
	if (sb->level == 6 && !r6_layout_name(l))
		return refuse(why, -EINVAL, "layout %u is not a raid6 layout", l);
	if (sb->level == 10) {
		unsigned nc = l & 255, fc = (l >> 8) & 255;

		if ((l >> 17) > 2)
			return refuse(why, -EINVAL, "layout 0x%x has unknown raid10 bits", l);
		if (nc == 0 || fc == 0 || nc * fc < 2 || nc * fc > sb->raid_disks)
			return refuse(why, -EINVAL,
				      "layout 0x%x: %u near x %u far copies do not fit %u devices "
				      "(raid10)",
				      l, nc, fc, sb->raid_disks);
	}
	if ((sb->feature_map & MD_FEATURE_RAID0_LAYOUT) && sb->level != 0)
		return refuse(why, -EINVAL, "feature RAID0_LAYOUT on a raid%d array", sb->level);
	if (sb->level == 0 && (sb->feature_map & MD_FEATURE_RAID0_LAYOUT) && l != 1 && l != 2)
		return refuse(why, -EINVAL,
			      "layout %u is neither original (1) nor alternate (2) (raid0)", l);
	return 0;
}

/* Devices a shrinking reshape is removing, which keep their roles until it ends. */
static uint32_t delta_extra(const struct md_sb *sb)
{
	int64_t d = sb->delta_disks;

	if (!(sb->feature_map & MD_FEATURE_RESHAPE_ACTIVE) || d >= 0)
		return 0;
	return -d > MD_MAX_DEVS ? MD_MAX_DEVS : (uint32_t)-d;
}

/* Roles: each in range, none claimed by more devices than md allows. */
static int check_roles(const struct md_sb *sb, const char **why)
{
	uint32_t limit = sb->raid_disks + delta_extra(sb), nroles = sb->max_dev;
	uint16_t count[2 * MD_MAX_DEVS] = {0};

	if (nroles > MD_MAX_DEVS)
		nroles = MD_MAX_DEVS;
	for (uint32_t i = 0; i < nroles; i++) {
		uint16_t r = sb->dev_roles[i];

		if (r == MD_ROLE_SPARE || r == MD_ROLE_FAULTY || r == MD_ROLE_JOURNAL)
			continue;
		if (r >= limit)
			return refuse(why, -EINVAL,
				      "dev_roles[%u] = %u is neither below raid_disks %u nor "
				      "spare/faulty/journal",
				      i, r, sb->raid_disks);
		count[r]++;
		if (count[r] > 2 || (count[r] == 2 && sb->level <= 0))
			return refuse(why, -EINVAL, "role %u is claimed by %u devices", r,
				      count[r]);
	}
	return 0;
}

/* A metadata area at sector START (signed offset OFF from the superblock) of LEN sectors. */
static int check_area(const struct md_sb *sb, uint64_t dev, const char *what, int64_t off,
		      uint64_t len, const char **why)
{
	int64_t start = (int64_t)sb->super_offset + off;

	if (start < 0 || (uint64_t)start >= dev || len > dev - (uint64_t)start)
		return refuse(why, -EINVAL,
			      "%s at %lld sectors from the superblock lies outside the device",
			      what, (long long)off);
	if (overlaps((uint64_t)start, len, sb->data_offset, sb->data_size))
		return refuse(why, -EINVAL,
			      "%s at %lld sectors from the superblock points into the data area",
			      what, (long long)off);
	if (overlaps((uint64_t)start, len, sb->super_offset, sb1_sectors(sb->max_dev)))
		return refuse(why, -EINVAL,
			      "%s at %lld sectors from the superblock overlaps the superblock",
			      what, (long long)off);
	return 0;
}

static int check_reshape(const struct md_sb *sb, uint32_t max_disks, const char **why)
{
	int64_t old = (int64_t)sb->raid_disks - sb->delta_disks;

	if (!(sb->feature_map & MD_FEATURE_RESHAPE_ACTIVE))
		return 0;
	if (!level_known(sb->new_level))
		return refuse(why, -EINVAL, "reshape new_level %d is not supported", sb->new_level);
	if (old < 1 || old > max_disks)
		return refuse(why, -EINVAL,
			      "reshape delta_disks %d from raid_disks %u is out of range",
			      sb->delta_disks, sb->raid_disks);
	return 0;
}

static int validate1(const struct md_sb *sb, uint64_t dev, const char **why)
{
	uint64_t sbsec = sb1_sectors(sb->max_dev), data_end;
	uint32_t fm = sb->feature_map;
	int r;

	if (sb->minor < 0 || sb->minor > 2)
		return refuse(why, -EINVAL, "minor version 1.%d unknown", sb->minor);
	if (sb->max_dev == 0 || sb->max_dev > MD_MAX_DEVS)
		return refuse(why, -EINVAL, "max_dev %u out of range (1-%u)", sb->max_dev,
			      MD_MAX_DEVS);
	if (fm & ~MD_FEATURE_ALL)
		return refuse(why, -EINVAL, "unknown feature bits 0x%x in feature_map",
			      fm & ~MD_FEATURE_ALL);
	if (dev < 16 || sb->super_offset != md_sb_offset(sb->minor, dev))
		return refuse(why, -EINVAL,
			      "super_offset %llu is not where a 1.%d superblock lives on %llu "
			      "sectors",
			      (unsigned long long)sb->super_offset, sb->minor,
			      (unsigned long long)dev);
	if (sb->dev_number >= sb->max_dev)
		return refuse(why, -EINVAL, "dev_number %u is not below max_dev %u", sb->dev_number,
			      sb->max_dev);
	if (sb->data_size < 10)
		return refuse(why, -EINVAL, "data_size %llu is too small",
			      (unsigned long long)sb->data_size);
	data_end = sat_add(sb->data_offset, sb->data_size);
	if (data_end > dev)
		return refuse(
		    why, -EINVAL,
		    "data area (data_offset %llu + data_size %llu) ends beyond the device "
		    "(%llu sectors)",
		    (unsigned long long)sb->data_offset, (unsigned long long)sb->data_size,
		    (unsigned long long)dev);
	if (sb->minor == 0 ? data_end > sb->super_offset
			   : sb->data_offset < sb->super_offset + sbsec)
		return refuse(why, -EINVAL,
			      "superblock (sectors %llu-%llu) overlaps the data area (data_offset "
			      "%llu, data_size %llu)",
			      (unsigned long long)sb->super_offset,
			      (unsigned long long)(sb->super_offset + sbsec - 1),
			      (unsigned long long)sb->data_offset,
			      (unsigned long long)sb->data_size);
	if (sb->level >= 1 && sb->size > sb->data_size)
		return refuse(why, -EINVAL, "size %llu exceeds data_size %llu",
			      (unsigned long long)sb->size, (unsigned long long)sb->data_size);
	if (sb->level >= 1 && sb->size == 0)
		return refuse(why, -EINVAL, "size is 0");
	r = check_reshape(sb, MD_MAX_DEVS, why);
	if (r)
		return r;
	r = check_roles(sb, why);
	if (r)
		return r;
	{
		uint16_t own = sb->dev_roles[sb->dev_number];

		if (own == MD_ROLE_JOURNAL && !(fm & MD_FEATURE_JOURNAL))
			return refuse(why, -EINVAL,
				      "device is a journal but feature_map has no JOURNAL");
		if ((fm & MD_FEATURE_RECOVERY_OFFSET) && own < sb->raid_disks &&
		    sb->recovery_offset != MD_MAX_SECTOR &&
		    sb->recovery_offset > (sb->level >= 1 ? sb->size : sb->data_size))
			return refuse(why, -EINVAL, "recovery_offset %llu is beyond size %llu",
				      (unsigned long long)sb->recovery_offset,
				      (unsigned long long)sb->size);
	}
	if ((fm & (MD_FEATURE_PPL | MD_FEATURE_MULTIPLE_PPLS)) &&
	    (fm & (MD_FEATURE_BITMAP_OFFSET | MD_FEATURE_JOURNAL)))
		return refuse(why, -EINVAL, "feature_map 0x%x: PPL with a bitmap or a journal", fm);
	if ((fm & MD_FEATURE_PPL) && (fm & MD_FEATURE_MULTIPLE_PPLS))
		return refuse(why, -EINVAL, "feature_map 0x%x: both PPL and MULTIPLE_PPLS", fm);
	if (fm & MD_FEATURE_BITMAP_OFFSET) {
		r = check_area(sb, dev, "bitmap_offset", sb->bitmap_offset, 1, why);
		if (r)
			return r;
	} else if (fm & (MD_FEATURE_PPL | MD_FEATURE_MULTIPLE_PPLS)) {
		int16_t off = (int16_t)(uint16_t)((uint32_t)sb->bitmap_offset & 0xffff);
		uint16_t size = (uint16_t)((uint32_t)sb->bitmap_offset >> 16);

		r = check_area(sb, dev, "PPL", off, size ? size : 1, why);
		if (r)
			return r;
	}
	if ((fm & MD_FEATURE_BAD_BLOCKS) && (sb->bblog_offset == 0 || sb->bblog_size == 0))
		return refuse(why, -EINVAL, "BAD_BLOCKS set but no bad block log area");
	if ((fm & MD_FEATURE_BAD_BLOCKS) && sb->bblog_size > 8)
		return refuse(why, -EINVAL, "bblog_size %u exceeds 8 sectors", sb->bblog_size);
	if (sb->bblog_offset && sb->bblog_size) {
		r = check_area(sb, dev, "bad block log", sb->bblog_offset, sb->bblog_size, why);
		if (r)
			return r;
	}
	if ((fm & MD_FEATURE_RESHAPE_ACTIVE) && (fm & MD_FEATURE_NEW_OFFSET)) {
		{
			int64_t n = (int64_t)sb->data_offset + sb->new_offset;

			if (n < 0 || (uint64_t)n >= dev ||
			    (sb->minor && (uint64_t)n < sb->super_offset + sbsec))
				return refuse(why, -EINVAL,
					      "new_offset %lld moves the data outside the device "
					      "or onto the superblock",
					      (long long)sb->new_offset);
		}
	}
	return 0;
}

static int validate0(const struct md_sb *sb, uint64_t dev, const char **why)
{
	if (sb->super_offset != MD_NEW_SIZE_SECTORS(dev) || sb->data_offset != 0 ||
	    sb->data_size != sb->super_offset)
		return refuse(why, -EINVAL, "0.90 superblock is not at the end of the device");
	if (sb->dev_number >= MD_SB_DISKS)
		return refuse(why, -EINVAL, "this_disk number %u out of range (0-%u)",
			      sb->dev_number, MD_SB_DISKS - 1);
	if (sb->v0.nr_disks > MD_SB_DISKS)
		return refuse(why, -EINVAL, "nr_disks %u exceeds %u", sb->v0.nr_disks, MD_SB_DISKS);
	if (sb->level >= 1 && (sb->size == 0 || sb->size > sb->data_size))
		return refuse(why, -EINVAL, "size %llu KiB does not fit the device",
			      (unsigned long long)sb->size / 2);
	if (check_reshape(sb, MD_SB_DISKS, why))
		return -EINVAL;
	for (unsigned i = 0; i < MD_SB_DISKS; i++) {
		const struct md_sb0_disk *d = &sb->v0.disks[i];

		if (!(d->state & (1u << MD_DISK_FAULTY)) &&
		    (d->state & ((1u << MD_DISK_ACTIVE) | (1u << MD_DISK_SYNC))) &&
		    d->raid_disk >= sb->raid_disks + delta_extra(sb))
			return refuse(why, -EINVAL,
				      "disks[%u].raid_disk %u is not below raid_disks %u", i,
				      d->raid_disk, sb->raid_disks);
	}
	return check_roles(sb, why);
}

int md_sb_validate(const struct md_sb *sb, uint64_t dev_sectors, const char **why)
{
	int r;

	*why = NULL;
	if (sb->major != 0 && sb->major != 1)
		return refuse(why, -EINVAL, "major version %d unknown", sb->major);
	r = check_geometry(sb, sb->major == 0 ? MD_SB_DISKS : MD_MAX_DEVS, why);
	if (r)
		return r;
	return sb->major == 1 ? validate1(sb, dev_sectors, why) : validate0(sb, dev_sectors, why);
}

/* ---- reading -------------------------------------------------------------------------- */

static int sb1_parse(const uint8_t *b, int minor, uint64_t at, uint64_t dev, struct md_sb *sb,
		     const char **why)
{
	uint32_t major, max_dev, csum, want;

	memset(sb, 0, sizeof(*sb));
	if (g32(b, SB1_magic) != MD_SB_MAGIC) {
		*why = "no md superblock";
		return -ENOENT;
	}
	major = g32(b, SB1_major_version);
	if (major != 1)
		return refuse(why, -EINVAL, "major_version %u is not 1", major);
	max_dev = g32(b, SB1_max_dev);
	if (max_dev > MD_MAX_DEVS)
		return refuse(why, -EINVAL, "max_dev %u out of range (1-%u)", max_dev, MD_MAX_DEVS);
	csum = g32(b, SB1_sb_csum);
	want = sb1_csum(b, max_dev);
	if (csum != want)
		return refuse(why, -EINVAL,
			      "superblock checksum mismatch (sb_csum %08x, computed %08x)", csum,
			      want);
	if (g64(b, SB1_super_offset) != at)
		return refuse(why, -EINVAL,
			      "super_offset %llu does not match where the 1.%d superblock was "
			      "found (sector %llu)",
			      (unsigned long long)g64(b, SB1_super_offset), minor,
			      (unsigned long long)at);
	if (g32(b, SB1_pad0))
		return refuse(why, -EINVAL, "reserved field pad0 is not zero (a newer md format?)");
	for (unsigned i = 0; i < 32; i++)
		if (b[SB1_pad3 + i])
			return refuse(why, -EINVAL,
				      "reserved field pad3 is not zero (a newer md format?)");

	sb->major = 1;
	sb->minor = minor;
	sb->feature_map = g32(b, SB1_feature_map);
	memcpy(sb->set_uuid, b + SB1_set_uuid, 16);
	memcpy(sb->set_name, b + SB1_set_name, 32);
	sb->set_name[32] = '\0';
	/* a string: whatever follows its end is not kept (and is not written back) */
	memset(sb->set_name + strlen(sb->set_name), 0, 33 - strlen(sb->set_name));

	sb->ctime = g64(b, SB1_ctime) & SB1_TIME_SECONDS_MASK;
	sb->level = (int32_t)g32(b, SB1_level);
	sb->layout = g32(b, SB1_layout);
	sb->size = g64(b, SB1_size);
	sb->chunksize = g32(b, SB1_chunksize);
	sb->raid_disks = g32(b, SB1_raid_disks);
	sb->bitmap_offset = (int32_t)g32(b, SB1_bitmap_offset);
	sb->new_level = (int32_t)g32(b, SB1_new_level);
	sb->reshape_position = g64(b, SB1_reshape_position);
	sb->delta_disks = (int32_t)g32(b, SB1_delta_disks);
	sb->new_layout = g32(b, SB1_new_layout);
	sb->new_chunk = g32(b, SB1_new_chunk);
	sb->new_offset = (int32_t)g32(b, SB1_new_offset);
	sb->data_offset = g64(b, SB1_data_offset);
	sb->data_size = g64(b, SB1_data_size);
	sb->super_offset = at;
	sb->recovery_offset = g64(b, SB1_recovery_offset);
	sb->dev_number = g32(b, SB1_dev_number);
	sb->cnt_corrected_read = g32(b, SB1_cnt_corrected_read);
	memcpy(sb->device_uuid, b + SB1_device_uuid, 16);
	sb->devflags = b[SB1_devflags];
	sb->bblog_shift = b[SB1_bblog_shift];
	sb->bblog_size = g16(b, SB1_bblog_size);
	sb->bblog_offset = (int32_t)g32(b, SB1_bblog_offset);
	sb->utime = g64(b, SB1_utime) & SB1_TIME_SECONDS_MASK;
	sb->events = g64(b, SB1_events);
	sb->resync_offset = g64(b, SB1_resync_offset);
	sb->max_dev = max_dev;
	for (uint32_t i = 0; i < max_dev; i++)
		sb->dev_roles[i] = g16(b, SB1_dev_roles + 2 * i);
	sb->dev_sectors = dev;
	return md_sb_validate(sb, dev, why);
}

static void sb0_disk(const uint8_t *b, unsigned word, struct md_sb0_disk *d)
{
	d->number = w0(b, word + MD_DISK_number);
	d->major = w0(b, word + MD_DISK_major);
	d->minor = w0(b, word + MD_DISK_minor);
	d->raid_disk = w0(b, word + MD_DISK_raid_disk);
	d->state = w0(b, word + MD_DISK_state);
}

static int sb0_parse(const uint8_t *b, uint64_t at, uint64_t dev, struct md_sb *sb,
		     const char **why)
{
	static const unsigned uuid_words[4] = {SB0_set_uuid0, SB0_set_uuid1, SB0_set_uuid2,
					       SB0_set_uuid3};
	uint32_t major, minor, csum, want, state;
	uint64_t events, cp_events;
	const struct md_sb0_disk *me;

	memset(sb, 0, sizeof(*sb));
	if (w0(b, SB0_md_magic) != MD_SB_MAGIC) {
		*why = "no md superblock";
		return -ENOENT;
	}
	major = w0(b, SB0_major_version);
	minor = w0(b, SB0_minor_version);
	if (major != 0 || (minor != 90 && minor != 91))
		return refuse(why, -EINVAL, "version %u.%u is neither 0.90 nor 0.91", major, minor);
	csum = w0(b, SB0_sb_csum);
	want = sb0_csum(b);
	if (csum_fold(csum) != csum_fold(want))
		return refuse(why, -EINVAL,
			      "superblock checksum mismatch (sb_csum %08x, computed %08x)", csum,
			      want);
	sb->major = 0;
	sb->minor = (int)minor;
	for (unsigned i = 0; i < 4; i++) {
		/* mdadm shows each host-endian word with %08x: store them so. */
		uint32_t w = htobe32(w0(b, uuid_words[i]));

		memcpy(sb->set_uuid + 4 * i, &w, 4);
	}
	sb->v0.patch_version = w0(b, SB0_patch_version);
	sb->v0.md_minor = w0(b, SB0_md_minor);
	sb->v0.nr_disks = w0(b, SB0_nr_disks);
	sb->v0.state = state = w0(b, SB0_state);
	sb->v0.active_disks = w0(b, SB0_active_disks);
	sb->v0.working_disks = w0(b, SB0_working_disks);
	sb->v0.failed_disks = w0(b, SB0_failed_disks);
	sb->v0.spare_disks = w0(b, SB0_spare_disks);
	sb->v0.sb_csum = csum;
	for (unsigned i = 0; i < MD_SB_DISKS; i++)
		sb0_disk(b, MD_SB_DISKS_OFFSET + i * MD_SB_DESCRIPTOR_WORDS, &sb->v0.disks[i]);
	sb0_disk(b, MD_SB_DESCRIPTOR_OFFSET, &sb->v0.this_disk);
	snprintf(sb->set_name, sizeof(sb->set_name), "%u", sb->v0.md_minor);

	sb->ctime = w0(b, SB0_ctime);
	sb->utime = w0(b, SB0_utime);
	sb->level = (int32_t)w0(b, SB0_level);
	sb->size = (uint64_t)w0(b, SB0_size) * 2;
	sb->raid_disks = w0(b, SB0_raid_disks);
	sb->layout = w0(b, SB0_layout);
	if (w0(b, SB0_chunk_size) % 512)
		return refuse(why, -EINVAL, "chunk_size %u bytes is not a multiple of 512",
			      w0(b, SB0_chunk_size));
	sb->chunksize = w0(b, SB0_chunk_size) / 512;
	events = ((uint64_t)w0(b, SB0_events_hi) << 32) | w0(b, SB0_events_lo);
	cp_events = ((uint64_t)w0(b, SB0_cp_events_hi) << 32) | w0(b, SB0_cp_events_lo);
	sb->events = events;
	/* As Linux: clean means in sync; else the checkpoint counts only if it is current. */
	if (state & (1u << MD_SB_CLEAN))
		sb->resync_offset = MD_MAX_SECTOR;
	else
		sb->resync_offset = events == cp_events ? w0(b, SB0_recovery_cp) : 0;
	if (minor == 91) {
		sb->reshape_position = g64(b, 4 * SB0_reshape_position);
		sb->new_level = (int32_t)w0(b, SB0_new_level);
		sb->delta_disks = (int32_t)w0(b, SB0_delta_disks);
		sb->new_layout = w0(b, SB0_new_layout);
		sb->new_chunk = w0(b, SB0_new_chunk) / 512;
		if (sb->reshape_position != MD_MAX_SECTOR)
			sb->feature_map |= MD_FEATURE_RESHAPE_ACTIVE;
	}
	if (state & (1u << MD_SB_BITMAP_PRESENT)) {
		/* The bitmap follows the 4 KiB superblock. */
		sb->feature_map |= MD_FEATURE_BITMAP_OFFSET;
		sb->bitmap_offset = MD_SB_BYTES / 512;
	}
	sb->super_offset = at;
	sb->data_offset = 0;
	sb->data_size = at;
	sb->dev_number = sb->v0.this_disk.number;
	sb->max_dev = MD_SB_DISKS;
	sb->dev_sectors = dev;
	if (sb->dev_number >= MD_SB_DISKS)
		return refuse(why, -EINVAL, "this_disk number %u out of range (0-%u)",
			      sb->dev_number, MD_SB_DISKS - 1);
	for (unsigned i = 0; i < MD_SB_DISKS; i++) {
		const struct md_sb0_disk *d = &sb->v0.disks[i];

		if (d->state & (1u << MD_DISK_FAULTY))
			sb->dev_roles[i] = MD_ROLE_FAULTY;
		else if (d->state & ((1u << MD_DISK_ACTIVE) | (1u << MD_DISK_SYNC)))
			sb->dev_roles[i] = d->raid_disk > 0xfffc ? 0xfffc : (uint16_t)d->raid_disk;
		else
			sb->dev_roles[i] = MD_ROLE_SPARE;
	}
	me = &sb->v0.disks[sb->dev_number];
	if ((me->state & (1u << MD_DISK_ACTIVE)) && !(me->state & (1u << MD_DISK_SYNC)) &&
	    !(me->state & (1u << MD_DISK_FAULTY))) {
		/* Active but not in sync: being rebuilt, from the start (0.90 keeps no offset). */
		sb->feature_map |= MD_FEATURE_RECOVERY_OFFSET;
		sb->recovery_offset = 0;
	}
	if (state & (1u << MD_SB_CLUSTERED))
		return refuse(why, -EOPNOTSUPP, "0.90 state says clustered");
	return md_sb_validate(sb, dev, why);
}

/* Fills bitmap_sectors the way mdadm sizes the bitmap: header and bits, whole 4 KiB. */
static void note_bitmap(struct bs_bdev *b, struct md_sb *sb)
{
	int64_t start = (int64_t)sb->super_offset + sb->bitmap_offset;
	uint8_t buf[512];
	uint64_t bits, bytes;
	uint32_t chunk;

	sb->bitmap_sectors = 0;
	if (!(sb->feature_map & MD_FEATURE_BITMAP_OFFSET) || start < 0 ||
	    (uint64_t)start >= sb->dev_sectors || bs_bdev_read(b, buf, 512, (uint64_t)start << 9) ||
	    g32(buf, BMS_magic) != MD_BITMAP_MAGIC)
		return;
	chunk = g32(buf, BMS_chunksize);
	if (chunk < 512)
		return;
	bits = md_bitmap_bits(g64(buf, BMS_sync_size), chunk);
	bytes = bits / 8 + (bits % 8 != 0) + BITMAP_SUPER_BYTES;
	bytes = (bytes + 4095) / 4096 * 4096;
	sb->bitmap_sectors = bytes / 512 > UINT32_MAX ? UINT32_MAX : (uint32_t)(bytes / 512);
}

/* What blkstack cannot run at all, even read-only. */
static int sb_unsupported(const struct md_sb *sb, const char **why)
{
	uint32_t fm = sb->feature_map;

	if (sb->major == 0 && sb->minor == 91)
		return refuse(why, -EOPNOTSUPP,
			      "0.91 superblock: a reshape is in progress, which is not supported");
	if (fm & MD_FEATURE_CLUSTERED)
		return refuse(why, -EOPNOTSUPP,
			      "feature CLUSTERED (0x100): clustered md is not supported");
	if (fm & MD_FEATURE_JOURNAL)
		return refuse(why, -EOPNOTSUPP,
			      "feature JOURNAL (0x200): the raid5 write journal is not supported");
	if (fm & (MD_FEATURE_RESHAPE_ACTIVE | MD_FEATURE_RESHAPE_BACKWARDS | MD_FEATURE_NEW_OFFSET))
		return refuse(why, -EOPNOTSUPP,
			      "feature_map 0x%x: a reshape is in progress, which is not supported",
			      fm);
	if (fm & MD_FEATURE_BAD_BLOCKS)
		return refuse(why, -EOPNOTSUPP,
			      "feature BAD_BLOCKS (0x8): bad blocks are recorded on this member "
			      "and blkstack does not read the bad block log");
	return 0;
}

const char *md_sb_readonly_reason(const struct md_sb *sb)
{
	if (sb->major == 0)
		return "0.90 metadata is read-only in blkstack";
	if (sb->feature_map & (MD_FEATURE_PPL | MD_FEATURE_MULTIPLE_PPLS))
		return "the array keeps a partial parity log (PPL), which blkstack does not write";
	if (sb->feature_map & MD_FEATURE_REPLACEMENT)
		return "the member is a replacement in progress (REPLACEMENT)";
	return NULL;
}

static int probe(struct bs_bdev *b, struct md_sb *out, const char **why, bool strict)
{
	/* mdadm's order, which also breaks ctime ties: 0.90, then 1.0, 1.1, 1.2. */
	static const int minors[] = {90, 0, 1, 2};
	uint64_t dev = bs_bdev_size(b) >> 9;
	uint8_t *buf = malloc(SB1_READ_BYTES);
	struct md_sb *cand = malloc(sizeof(*cand));
	char first[WHY_LEN] = "";
	int err = -ENOENT, r;
	bool have = false;

	*why = "no md superblock";
	if (!buf || !cand) {
		free(buf);
		free(cand);
		*why = "out of memory";
		return -ENOMEM;
	}
	for (unsigned i = 0; i < 4; i++) {
		int minor = minors[i];
		uint64_t at;
		const char *w;

		if (minor == 90) {
			if (dev < 2 * MD_RESERVED_SECTORS)
				continue;
			at = MD_NEW_SIZE_SECTORS(dev);
		} else {
			if (dev < 16)
				continue;
			at = md_sb_offset(minor, dev);
		}
		if (bs_bdev_read(b, buf, SB1_READ_BYTES, at << 9)) {
			err = refuse(why, -EIO, "cannot read the superblock area at sector %llu",
				     (unsigned long long)at);
			goto out;
		}
		r = minor == 90 ? sb0_parse(buf, at, dev, cand, &w)
				: sb1_parse(buf, minor, at, dev, cand, &w);
		if (r == 0) {
			if (!have || cand->ctime > out->ctime)
				memcpy(out, cand, sizeof(*out));
			have = true;
		} else if (r != -ENOENT) {
			/* Later places win: 1.2 is the likeliest to be meant. */
			err = r;
			snprintf(first, sizeof(first), "%s", w);
		}
	}
	if (have) {
		note_bitmap(b, out);
		err = strict ? sb_unsupported(out, why) : 0;
	} else if (err != -ENOENT) {
		snprintf(why_buf, sizeof(why_buf), "%s", first);
		*why = why_buf;
	} else {
		*why = "no md superblock";
	}
out:
	free(buf);
	free(cand);
	return err;
}

int md_sb_read(struct bs_bdev *b, struct md_sb *sb, const char **why)
{
	return probe(b, sb, why, true);
}

int md_sb_read_any(struct bs_bdev *b, struct md_sb *sb, const char **why)
{
	return probe(b, sb, why, false);
}

/* ---- writing -------------------------------------------------------------------------- */

/* The 1.x superblock bytes of SB (max_dev already defaulted). */
static void sb1_encode(const struct md_sb *sb, uint8_t *buf)
{
	memset(buf, 0, sb1_bytes(sb->max_dev));
	p32(buf, SB1_magic, MD_SB_MAGIC);
	p32(buf, SB1_major_version, 1);
	p32(buf, SB1_feature_map, sb->feature_map);
	memcpy(buf + SB1_set_uuid, sb->set_uuid, 16);
	memcpy(buf + SB1_set_name, sb->set_name, strnlen(sb->set_name, 32));
	p64(buf, SB1_ctime, sb->ctime & SB1_TIME_SECONDS_MASK);
	p32(buf, SB1_level, (uint32_t)sb->level);
	p32(buf, SB1_layout, sb->layout);
	p64(buf, SB1_size, sb->size);
	p32(buf, SB1_chunksize, sb->chunksize);
	p32(buf, SB1_raid_disks, sb->raid_disks);
	p32(buf, SB1_bitmap_offset, (uint32_t)sb->bitmap_offset);
	p32(buf, SB1_new_level, (uint32_t)sb->new_level);
	p64(buf, SB1_reshape_position, sb->reshape_position);
	p32(buf, SB1_delta_disks, (uint32_t)sb->delta_disks);
	p32(buf, SB1_new_layout, sb->new_layout);
	p32(buf, SB1_new_chunk, sb->new_chunk);
	p32(buf, SB1_new_offset, (uint32_t)(int32_t)sb->new_offset);
	p64(buf, SB1_data_offset, sb->data_offset);
	p64(buf, SB1_data_size, sb->data_size);
	p64(buf, SB1_super_offset, sb->super_offset);
	p64(buf, SB1_recovery_offset, sb->recovery_offset);
	p32(buf, SB1_dev_number, sb->dev_number);
	p32(buf, SB1_cnt_corrected_read, sb->cnt_corrected_read);
	memcpy(buf + SB1_device_uuid, sb->device_uuid, 16);
	buf[SB1_devflags] = sb->devflags;
	buf[SB1_bblog_shift] = sb->bblog_shift;
	p16(buf, SB1_bblog_size, sb->bblog_size);
	p32(buf, SB1_bblog_offset, (uint32_t)sb->bblog_offset);
	p64(buf, SB1_utime, sb->utime & SB1_TIME_SECONDS_MASK);
	p64(buf, SB1_events, sb->events);
	p64(buf, SB1_resync_offset, sb->resync_offset);
	p32(buf, SB1_max_dev, sb->max_dev);
	for (uint32_t i = 0; i < sb->max_dev; i++)
		p16(buf, SB1_dev_roles + 2 * i, sb->dev_roles[i]);
	p32(buf, SB1_sb_csum, sb1_csum(buf, sb->max_dev));
}

int md_sb_write(struct bs_bdev *b, const struct md_sb *sb)
{
	unsigned bs = b->block_size > 512 ? b->block_size : 512, len;
	uint64_t dev = bs_bdev_size(b) >> 9;
	struct md_sb *s;
	const char *why;
	uint8_t *buf;
	int r;

	if (sb->major != 1)
		return -EINVAL;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	memcpy(s, sb, sizeof(*s));
	if (!s->max_dev)
		s->max_dev = MD_MAX_DEVS;
	r = md_sb_validate(s, dev, &why);
	if (r) {
		free(s);
		return r;
	}
	len = (sb1_bytes(s->max_dev) + bs - 1) / bs * bs;
	buf = malloc(len);
	if (!buf) {
		free(s);
		return -ENOMEM;
	}
	/* Whatever shares the last block (a bitmap, on 4 KiB devices) stays as it is. */
	r = len > (sb1_bytes(s->max_dev) + 511) / 512 * 512
		? bs_bdev_read(b, buf, len, s->super_offset << 9)
		: 0;
	if (!r) {
		memset(buf, 0, (sb1_bytes(s->max_dev) + 511) / 512 * 512);
		sb1_encode(s, buf);
		r = bs_bdev_write(b, buf, len, s->super_offset << 9, BS_IO_FUA);
	}
	free(buf);
	free(s);
	return r;
}

int md_sb_erase(struct bs_bdev *b)
{
	unsigned bs = b->block_size > 512 ? b->block_size : 512;
	uint64_t dev = bs_bdev_size(b) >> 9;
	uint8_t *zero = calloc(1, MD_SB_BYTES > bs ? MD_SB_BYTES : bs);
	int r = 0, e;

	if (!zero)
		return -ENOMEM;
	for (int minor = 0; minor <= 2; minor++) {
		uint64_t at = md_sb_offset(minor, dev);
		uint8_t cur[512];

		if (dev < 16 || at + bs / 512 > dev)
			continue;
		e = bs_bdev_read(b, cur, 512, at << 9);
		if (!e && g32(cur, 0) == MD_SB_MAGIC)
			e = bs_bdev_write(b, zero, bs, at << 9, BS_IO_FUA);
		if (e && !r)
			r = e;
	}
	if (dev >= 2 * MD_RESERVED_SECTORS) {
		uint64_t at = MD_NEW_SIZE_SECTORS(dev);
		uint8_t cur[512];

		e = bs_bdev_read(b, cur, 512, at << 9);
		if (!e && g32(cur, 0) == MD_SB_MAGIC)
			e = bs_bdev_write(b, zero, MD_SB_BYTES, at << 9, BS_IO_FUA);
		if (e && !r)
			r = e;
	}
	free(zero);
	return r;
}

/* ---- text ----------------------------------------------------------------------------- */

void md_uuid_format(const uint8_t uuid[16], char out[36])
{
	snprintf(out, 36, "%02x%02x%02x%02x:%02x%02x%02x%02x:%02x%02x%02x%02x:%02x%02x%02x%02x",
		 uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7], uuid[8],
		 uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int md_uuid_parse(const char *s, uint8_t uuid[16])
{
	uint8_t v[16] = {0};
	unsigned n = 0;

	for (const char *p = s; *p; p++) {
		int h = hexval(*p);

		if (h < 0) {
			if (*p == ':' || *p == '-' || *p == '.' || *p == ' ')
				continue;
			return -EINVAL;
		}
		if (n == 32)
			return -EINVAL;
		v[n / 2] = (uint8_t)(v[n / 2] << 4 | h);
		n++;
	}
	if (n != 32)
		return -EINVAL;
	memcpy(uuid, v, 16);
	return 0;
}

/* mdadm's human_size: " (x.yy MiB x.yy MB)" style, empty below 5000 KiB. */
static void human(struct strbuf *out, uint64_t bytes)
{
	long long b = (long long)bytes;

	if (bytes < 5000 * 1024)
		return;
	if (b < 2LL * 1024 * 1024 * 1024) {
		long long cmib = (b * 200 / (1LL << 20) + 1) / 2;
		long long cmb = (b / (1000000LL / 200) + 1) / 2;

		sb_printf(out, " (%lld.%02lld MiB %lld.%02lld MB)", cmib / 100, cmib % 100,
			  cmb / 100, cmb % 100);
	} else if (b < 2LL * 1024 * 1024 * 1024 * 1024) {
		long long cgib = (b / ((1LL << 30) / 200) + 1) / 2;
		long long cgb = (b / (1000000000LL / 200) + 1) / 2;

		sb_printf(out, " (%lld.%02lld GiB %lld.%02lld GB)", cgib / 100, cgib % 100,
			  cgb / 100, cgb % 100);
	} else {
		long long ctib = (b / ((1LL << 40) / 200) + 1) / 2;
		long long ctb = (b / (1000000000LL / 200) / 1000 + 1) / 2;

		sb_printf(out, " (%lld.%02lld TiB %lld.%02lld TB)", ctib / 100, ctib % 100,
			  ctb / 100, ctb % 100);
	}
}

static void put_time(struct strbuf *out, const char *label, uint64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char s[64];

	if (!localtime_r(&tt, &tm) || !strftime(s, sizeof(s), "%a %b %e %H:%M:%S %Y", &tm))
		snprintf(s, sizeof(s), "%llu", (unsigned long long)t);
	sb_printf(out, "%s : %s\n", label, s);
}

static void put_text(struct strbuf *out, const char *s, size_t max)
{
	for (size_t i = 0; i < max && s[i]; i++)
		sb_putc(out, s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?');
}

/* mdadm's print_r10_layout */
static void put_r10_layout(struct strbuf *out, uint32_t l)
{
	unsigned nc = l & 255, fc = (l >> 8) & 255;
	const char *sep = "";

	if (nc != 1) {
		sb_printf(out, "%s near=%u", sep, nc);
		sep = ",";
	}
	if (fc != 1)
		sb_printf(out, "%s %s=%u", sep, (l & 0x10000) ? "offset" : "far", fc);
	if (nc * fc == 1)
		sb_puts(out, "NO REDUNDANCY");
}

uint64_t md_sb_array_sectors(const struct md_sb *sb)
{
	uint64_t size = sb->size;
	unsigned copies;

	switch (sb->level) {
	case 1:
		return size;
	case 4:
	case 5:
		return size * (sb->raid_disks - 1);
	case 6:
		return size * (sb->raid_disks - 2);
	case 10:
		copies = (sb->layout & 255) * ((sb->layout >> 8) & 255);
		return copies ? size * sb->raid_disks / copies : 0;
	default:
		return 0;
	}
}

static void examine0(const struct md_sb *sb, struct strbuf *out)
{
	const struct md_sb0_info *v = &sb->v0;
	const char *ln = level_name(sb->level);
	char u[36];

	sb_printf(out, "        Version : %d.%02d.%02u\n", sb->major, sb->minor, v->patch_version);
	md_uuid_format(sb->set_uuid, u);
	sb_printf(out, "           UUID : %s\n", u);
	put_time(out, "  Creation Time", sb->ctime);
	sb_printf(out, "     Raid Level : %s\n", ln ? ln : "-unknown-");
	if (sb->level > 0) {
		uint64_t kib = sb->size / 2;

		sb_printf(out, "  Used Dev Size : %llu", (unsigned long long)kib);
		human(out, kib << 10);
		sb_putc(out, '\n');
		if (md_sb_array_sectors(sb)) {
			sb_printf(out, "     Array Size : %llu",
				  (unsigned long long)md_sb_array_sectors(sb) / 2);
			human(out, md_sb_array_sectors(sb) << 9);
			sb_putc(out, '\n');
		}
	}
	sb_printf(out, "   Raid Devices : %u\n", sb->raid_disks);
	sb_printf(out, "  Total Devices : %u\n", v->nr_disks);
	sb_printf(out, "Preferred Minor : %u\n\n", v->md_minor);
	put_time(out, "    Update Time", sb->utime);
	sb_printf(out, "          State : %s\n",
		  (v->state & (1u << MD_SB_CLEAN)) ? "clean" : "active");
	if (v->state & (1u << MD_SB_BITMAP_PRESENT))
		sb_puts(out, "Internal Bitmap : present\n");
	sb_printf(out, " Active Devices : %u\n", v->active_disks);
	sb_printf(out, "Working Devices : %u\n", v->working_disks);
	sb_printf(out, " Failed Devices : %u\n", v->failed_disks);
	sb_printf(out, "  Spare Devices : %u\n", v->spare_disks);
	sb_printf(out, "       Checksum : %x - correct\n", v->sb_csum);
	sb_printf(out, "         Events : %llu\n\n", (unsigned long long)sb->events);
	if (sb->level == 5 || sb->level == 6) {
		const char *n =
		    sb->level == 5 ? r5_layout_name(sb->layout) : r6_layout_name(sb->layout);

		sb_printf(out, "         Layout : %s\n", n ? n : "-unknown-");
	} else if (sb->level == 10) {
		sb_puts(out, "         Layout :");
		put_r10_layout(out, sb->layout);
		sb_putc(out, '\n');
	}
	if (sb->level == 0 || sb->level == 4 || sb->level == 5 || sb->level == 6 || sb->level == 10)
		sb_printf(out, "     Chunk Size : %uK\n", sb->chunksize / 2);
	else if (sb->level == -1)
		sb_printf(out, "       Rounding : %uK\n", sb->chunksize / 2);
	sb_puts(out, "\n      Number   Major   Minor   RaidDevice State\n");
	/* Device names (mdadm looks the numbers up in /dev) are left out. */
	for (int d = -1; d < (int)(sb->raid_disks + v->spare_disks) && d < MD_SB_DISKS; d++) {
		const struct md_sb0_disk *dp = d < 0 ? &v->this_disk : &v->disks[d];
		uint32_t st = dp->state & ~((1u << MD_DISK_WRITEMOSTLY) | (1u << MD_DISK_FAILFAST));
		char nb[12];

		snprintf(nb, sizeof(nb), "%4d", d);
		sb_printf(out, "%4s %5u   %5u    %5u    %5u     ", d < 0 ? "this" : nb, dp->number,
			  dp->major, dp->minor, dp->raid_disk);
		if (st & (1u << MD_DISK_FAULTY))
			sb_puts(out, " faulty");
		if (st & (1u << MD_DISK_ACTIVE))
			sb_puts(out, " active");
		if (st & (1u << MD_DISK_SYNC))
			sb_puts(out, " sync");
		if (st & (1u << MD_DISK_REMOVED))
			sb_puts(out, " removed");
		if (dp->state & (1u << MD_DISK_WRITEMOSTLY))
			sb_puts(out, " write-mostly");
		if (dp->state & (1u << MD_DISK_FAILFAST))
			sb_puts(out, " failfast");
		if (st == 0)
			sb_puts(out, " spare");
		sb_putc(out, '\n');
		if (d == -1)
			sb_putc(out, '\n');
	}
}

/*
 * mdadm's "Unused Space": room before and after the data (after < 0: the device is too
 * small).  False when mdadm prints no such line.
 */
static bool unused_space(const struct md_sb *sb, uint64_t *before, int64_t *after)
{
	uint64_t used = sb->level <= 0 ? sb->data_size : sb->size;
	int64_t boff = 0; /* mdadm's bitmap_offset, or the PPL offset, from the superblock */

	*before = 0;
	*after = 0;
	if (!sb->dev_sectors)
		return false;
	if (sb->feature_map & MD_FEATURE_BITMAP_OFFSET)
		boff = sb->bitmap_offset;
	else if (sb->feature_map & (MD_FEATURE_PPL | MD_FEATURE_MULTIPLE_PPLS))
		boff = (int16_t)(uint16_t)((uint32_t)sb->bitmap_offset & 0xffff);
	if (sb->data_offset < sb->super_offset) {
		int64_t end = (int64_t)sb->super_offset;

		*before = sb->data_offset;
		if (sb->bblog_offset && sb->bblog_size &&
		    (int64_t)sb->super_offset + sb->bblog_offset < end)
			end = (int64_t)sb->super_offset + sb->bblog_offset;
		if ((int64_t)sb->super_offset + boff < end)
			end = (int64_t)sb->super_offset + boff;
		*after = (int64_t)(sb->data_offset + used) < end
			     ? end - (int64_t)used - (int64_t)sb->data_offset
			     : 0;
	} else {
		/* As mdadm computes it, the bitmap's end is not counted from the superblock. */
		uint64_t earliest = sb->super_offset + (32 + 4) * 2;

		if (boff > 0 && (sb->feature_map & MD_FEATURE_BITMAP_OFFSET)) {
			if ((uint64_t)boff + sb->bitmap_sectors > earliest)
				earliest = (uint64_t)boff + sb->bitmap_sectors;
		} else if (boff > 0) {
			uint64_t pend = (uint64_t)boff + ((uint32_t)sb->bitmap_offset >> 16);

			if (pend > earliest)
				earliest = pend;
		}
		if (sb->bblog_offset && sb->bblog_size) {
			int64_t bbend =
			    (int64_t)sb->super_offset + sb->bblog_offset + sb->bblog_size;

			if (bbend > (int64_t)earliest)
				earliest = (uint64_t)bbend;
		}
		*before = earliest < sb->data_offset ? sb->data_offset - earliest : 0;
		*after = (int64_t)(sb->dev_sectors - used - sb->data_offset);
	}
	if (sb->dev_number < sb->max_dev && sb->dev_roles[sb->dev_number] == MD_ROLE_JOURNAL)
		*after = (int64_t)((sb->dev_sectors - sb->data_offset) % 8);
	if (*before == 0 && *after == 0)
		*after = 1; /* mdadm's marker for "no room, but not unsupported" */
	return *after != 1 && !(sb->feature_map & MD_FEATURE_NEW_OFFSET);
}

static void examine1(const struct md_sb *sb, struct strbuf *out)
{
	uint32_t fm = sb->feature_map;
	const char *ln = level_name(sb->level);
	uint32_t extra = 0;
	bool inconsistent = false;
	unsigned role;
	uint64_t before = 0;
	int64_t after = 0;
	bool space;
	uint8_t *enc;
	char u[36], host[65] = "";
	size_t hl;

	sb_printf(out, "        Version : 1.%d\n",
		  sb->super_offset <= 4	  ? 1
		  : sb->super_offset <= 8 ? 2
					  : 0);
	sb_printf(out, "    Feature Map : 0x%x\n", fm);
	md_uuid_format(sb->set_uuid, u);
	sb_printf(out, "     Array UUID : %s\n", u);
	sb_puts(out, "           Name : ");
	put_text(out, sb->set_name, 32);
	if (!gethostname(host, sizeof(host) - 1) && (hl = strlen(host)) > 0 && hl < 32 &&
	    sb->set_name[hl] == ':' && !strncmp(sb->set_name, host, hl))
		sb_printf(out, "  (local to host %s)", host);
	sb_putc(out, '\n');
	put_time(out, "  Creation Time", sb->ctime);
	sb_printf(out, "     Raid Level : %s\n", ln ? ln : "-unknown-");
	sb_printf(out, "   Raid Devices : %u\n\n", sb->raid_disks);
	sb_printf(out, " Avail Dev Size : %llu sectors", (unsigned long long)sb->data_size);
	human(out, sb->data_size << 9);
	sb_putc(out, '\n');
	/* mdadm compares the level unsigned here: linear (-1) counts as "above 0". */
	if (sb->level != 0) {
		uint64_t as = md_sb_array_sectors(sb);

		if (as) {
			sb_printf(out, "     Array Size : %llu KiB", (unsigned long long)as / 2);
			human(out, as << 9);
			sb_putc(out, '\n');
		}
		if (sb->size != sb->data_size) {
			sb_printf(out, "  Used Dev Size : %llu sectors",
				  (unsigned long long)sb->size);
			human(out, sb->size << 9);
			sb_putc(out, '\n');
		}
	}
	if (sb->data_offset)
		sb_printf(out, "    Data Offset : %llu sectors\n",
			  (unsigned long long)sb->data_offset);
	if (sb->new_offset && (fm & MD_FEATURE_NEW_OFFSET))
		sb_printf(out, "     New Offset : %llu sectors\n",
			  (unsigned long long)(sb->data_offset + (uint64_t)sb->new_offset));
	sb_printf(out, "   Super Offset : %llu sectors\n", (unsigned long long)sb->super_offset);
	if (fm & MD_FEATURE_RECOVERY_OFFSET)
		sb_printf(out, "Recovery Offset : %llu sectors\n",
			  (unsigned long long)sb->recovery_offset);
	space = unused_space(sb, &before, &after);
	if (space) {
		sb_printf(out, "   Unused Space : before=%llu sectors, ",
			  (unsigned long long)before);
		if (after >= 0)
			sb_printf(out, "after=%llu sectors\n", (unsigned long long)after);
		else
			sb_printf(out, "after=-%llu sectors DEVICE TOO SMALL\n",
				  (unsigned long long)-after);
	}
	sb_printf(out, "          State : %s%s\n",
		  sb->resync_offset == MD_MAX_SECTOR ? "clean" : "active",
		  sb->dev_sectors && after < 0 ? " TRUNCATED DEVICE" : "");
	md_uuid_format(sb->device_uuid, u);
	sb_printf(out, "    Device UUID : %s\n\n", u);
	if (fm & MD_FEATURE_BITMAP_OFFSET)
		sb_printf(out, "Internal Bitmap : %d sectors from superblock\n", sb->bitmap_offset);
	else if (fm & (MD_FEATURE_PPL | MD_FEATURE_MULTIPLE_PPLS))
		sb_printf(out,
			  "            PPL : %u sectors at offset %d sectors from superblock\n",
			  (uint32_t)sb->bitmap_offset >> 16,
			  (int16_t)(uint16_t)((uint32_t)sb->bitmap_offset & 0xffff));
	if (fm & MD_FEATURE_RESHAPE_ACTIVE) {
		sb_printf(out, "  Reshape pos'n : %llu",
			  (unsigned long long)sb->reshape_position / 2);
		human(out, sb->reshape_position << 9);
		sb_putc(out, '\n');
		if (sb->delta_disks) {
			sb_printf(out, "  Delta Devices : %d (%d->%u)\n", sb->delta_disks,
				  (int)sb->raid_disks - sb->delta_disks, sb->raid_disks);
			extra = delta_extra(sb);
		}
		if (sb->new_level != sb->level) {
			const char *n = level_name(sb->new_level);

			sb_printf(out, "      New Level : %s\n", n ? n : "-unknown-");
		}
		if (sb->new_layout != sb->layout) {
			if (sb->level == 5 || sb->level == 6) {
				const char *n = sb->level == 5 ? r5_layout_name(sb->new_layout)
							       : r6_layout_name(sb->new_layout);

				sb_printf(out, "     New Layout : %s\n", n ? n : "-unknown-");
			} else if (sb->level == 10) {
				sb_puts(out, "     New Layout :");
				put_r10_layout(out, sb->new_layout);
				sb_putc(out, '\n');
			}
		}
		if (sb->new_chunk != sb->chunksize)
			sb_printf(out, "  New Chunksize : %uK\n", sb->new_chunk / 2);
		sb_putc(out, '\n');
	}
	if (sb->devflags) {
		sb_puts(out, "          Flags :");
		if (sb->devflags & WriteMostly1)
			sb_puts(out, " write-mostly");
		if (sb->devflags & FailFast1)
			sb_puts(out, " failfast");
		sb_putc(out, '\n');
	}
	put_time(out, "    Update Time", sb->utime);
	if (sb->bblog_size && sb->bblog_offset) {
		sb_printf(out, "  Bad Block Log : %d entries available at offset %d sectors",
			  sb->bblog_size * 512 / 8, sb->bblog_offset);
		if (fm & MD_FEATURE_BAD_BLOCKS)
			sb_puts(out, " - bad blocks present.");
		sb_putc(out, '\n');
	}
	/* The checksum md_sb_write would write: for superblocks md_sb_read accepted, the one
	 * on disk (the encoding is lossless for what md and mdadm write). */
	enc = malloc(SB1_READ_BYTES);
	if (enc) {
		struct md_sb s = *sb;

		if (!s.max_dev || s.max_dev > MD_MAX_DEVS)
			s.max_dev = MD_MAX_DEVS;
		sb1_encode(&s, enc);
		sb_printf(out, "       Checksum : %x - correct\n", g32(enc, SB1_sb_csum));
		free(enc);
	}
	sb_printf(out, "         Events : %llu\n\n", (unsigned long long)sb->events);
	if (sb->level == 0 && (fm & MD_FEATURE_RAID0_LAYOUT)) {
		const char *n = r0_layout_name(sb->layout);

		sb_printf(out, "         Layout : %s\n", n ? n : "-unknown-");
	}
	if (sb->level == 5 || sb->level == 6) {
		const char *n =
		    sb->level == 5 ? r5_layout_name(sb->layout) : r6_layout_name(sb->layout);

		sb_printf(out, "         Layout : %s\n", n ? n : "-unknown-");
	}
	if (sb->level == 10) {
		sb_puts(out, "         Layout :");
		put_r10_layout(out, sb->layout);
		sb_putc(out, '\n');
	}
	if (sb->level == 0 || sb->level == 4 || sb->level == 5 || sb->level == 6 || sb->level == 10)
		sb_printf(out, "     Chunk Size : %uK\n", sb->chunksize / 2);
	else if (sb->level == -1)
		sb_printf(out, "       Rounding : %uK\n", sb->chunksize / 2);
	sb_putc(out, '\n');
	role = sb->dev_number < sb->max_dev ? sb->dev_roles[sb->dev_number] : MD_ROLE_SPARE;
	if (role >= MD_ROLE_FAULTY)
		sb_puts(out, "   Device Role : spare\n");
	else if (role == MD_ROLE_JOURNAL)
		sb_puts(out, "   Device Role : Journal\n");
	else if (fm & MD_FEATURE_REPLACEMENT)
		sb_printf(out, "   Device Role : Replacement device %u\n", role);
	else
		sb_printf(out, "   Device Role : Active device %u\n", role);
	sb_puts(out, "   Array State : ");
	for (uint32_t d = 0; d < sb->raid_disks + extra; d++) {
		unsigned cnt = 0;

		for (uint32_t i = 0; i < sb->max_dev && i < MD_MAX_DEVS; i++)
			cnt += sb->dev_roles[i] == d;
		if (cnt == 2 && sb->level != 0) /* unsigned in mdadm, as above */
			sb_putc(out, 'R');
		else if (cnt == 1)
			sb_putc(out, 'A');
		else if (cnt == 0)
			sb_putc(out, '.');
		else {
			sb_putc(out, '?');
			inconsistent = true;
		}
	}
	sb_puts(out, " ('A' == active, '.' == missing, 'R' == replacing)\n");
	for (uint32_t d = 0; d < sb->max_dev && d < MD_MAX_DEVS; d++)
		if (sb->dev_roles[d] <= MD_DISK_ROLE_MAX &&
		    sb->dev_roles[d] > sb->raid_disks + extra)
			inconsistent = true;
	if (inconsistent) {
		sb_puts(out, "WARNING Array state is inconsistent - each number should appear "
			     "only once\n");
		for (uint32_t d = 0; d < sb->max_dev && d < MD_MAX_DEVS; d++)
			if (sb->dev_roles[d] >= MD_ROLE_FAULTY)
				sb_printf(out, " %u:-", d);
			else
				sb_printf(out, " %u:%u", d, sb->dev_roles[d]);
		sb_putc(out, '\n');
	}
}

void md_sb_examine(const struct md_sb *sb, const char *name, struct strbuf *out)
{
	sb_printf(out, "%s:\n", name);
	sb_printf(out, "          Magic : %08x\n", MD_SB_MAGIC);
	if (sb->major == 0)
		examine0(sb, out);
	else
		examine1(sb, out);
}

void md_sb_array_line(const struct md_sb *sb, struct strbuf *out)
{
	const char *nm = strchr(sb->set_name, ':');
	char u[36];

	md_uuid_format(sb->set_uuid, u);
	if (sb->major == 0) {
		sb_printf(out, "ARRAY /dev/md%u UUID=%s\n", sb->v0.md_minor, u);
		return;
	}
	nm = nm ? nm + 1 : sb->set_name[0] ? sb->set_name : NULL;
	sb_puts(out, "ARRAY ");
	if (nm) {
		sb_puts(out, "/dev/md/");
		put_text(out, nm, 32);
		sb_putc(out, ' ');
	}
	sb_printf(out, " metadata=1.%d UUID=%s",
		  sb->super_offset <= 4	  ? 1
		  : sb->super_offset <= 8 ? 2
					  : 0,
		  u);
	if (sb->set_name[0]) {
		sb_puts(out, " name=");
		put_text(out, sb->set_name, 32);
	}
	sb_putc(out, '\n');
}

/* ---- bitmap --------------------------------------------------------------------------- */

uint64_t md_bitmap_bits(uint64_t sync_size, uint32_t chunksize)
{
	uint64_t c = chunksize / 512;

	return c ? sync_size / c + (sync_size % c != 0) : 0;
}

/* Bytes from the bitmap superblock's start to the end of its bits. */
static uint64_t bitmap_bytes(const struct md_bitmap_sb *bsb)
{
	uint64_t bits = md_bitmap_bits(bsb->sync_size, bsb->chunksize);

	return BITMAP_SUPER_BYTES + bits / 8 + (bits % 8 != 0);
}

int md_bitmap_sb_read(struct bs_bdev *b, uint64_t offset, struct md_bitmap_sb *bsb,
		      const char **why)
{
	uint64_t dev = bs_bdev_size(b);
	uint8_t buf[512];

	*why = NULL;
	if (offset >= dev >> 9)
		return refuse(why, -EINVAL, "bitmap at sector %llu is beyond the device",
			      (unsigned long long)offset);
	if (bs_bdev_read(b, buf, 512, offset << 9))
		return refuse(why, -EIO, "cannot read the bitmap at sector %llu",
			      (unsigned long long)offset);
	if (g32(buf, BMS_magic) != MD_BITMAP_MAGIC)
		return refuse(why, -EINVAL, "no bitmap superblock at sector %llu (magic %08x)",
			      (unsigned long long)offset, g32(buf, BMS_magic));
	memset(bsb, 0, sizeof(*bsb));
	bsb->version = g32(buf, BMS_version);
	memcpy(bsb->uuid, buf + BMS_uuid, 16);
	bsb->events = g64(buf, BMS_events);
	bsb->events_cleared = g64(buf, BMS_events_cleared);
	bsb->sync_size = g64(buf, BMS_sync_size);
	bsb->state = g32(buf, BMS_state);
	bsb->chunksize = g32(buf, BMS_chunksize);
	bsb->daemon_sleep = g32(buf, BMS_daemon_sleep);
	bsb->write_behind = g32(buf, BMS_write_behind);
	bsb->sectors_reserved = g32(buf, BMS_sectors_reserved);
	bsb->nodes = g32(buf, BMS_nodes);
	if (bsb->version == BITMAP_MAJOR_CLUSTERED || bsb->nodes > 1)
		return refuse(why, -EOPNOTSUPP,
			      "clustered bitmaps (version %u, %u nodes) are "
			      "not supported",
			      bsb->version, bsb->nodes);
	if (bsb->version < BITMAP_MAJOR_LO || bsb->version > BITMAP_MAJOR_HI)
		return refuse(why, -EINVAL, "bitmap version %u is not 3 or 4", bsb->version);
	if (bsb->chunksize < 512 || (bsb->chunksize & (bsb->chunksize - 1)))
		return refuse(why, -EINVAL,
			      "bitmap chunksize %u is not a power of two of at least 512",
			      bsb->chunksize);
	if (bsb->daemon_sleep == 0)
		return refuse(why, -EINVAL, "bitmap daemon_sleep is 0");
	if (bsb->write_behind > BITMAP_COUNTER_MAX)
		return refuse(why, -EINVAL, "bitmap write_behind %u exceeds %u", bsb->write_behind,
			      BITMAP_COUNTER_MAX);
	if (bsb->sync_size == 0)
		return refuse(why, -EINVAL, "bitmap sync_size is 0");
	if (bitmap_bytes(bsb) > dev - (offset << 9))
		return refuse(why, -EINVAL,
			      "bitmap of %llu bits (sync_size %llu, chunksize %u) runs past the "
			      "end of the device",
			      (unsigned long long)md_bitmap_bits(bsb->sync_size, bsb->chunksize),
			      (unsigned long long)bsb->sync_size, bsb->chunksize);
	if (bsb->sectors_reserved && bitmap_bytes(bsb) > (uint64_t)bsb->sectors_reserved * 512)
		return refuse(why, -EINVAL,
			      "bitmap of %llu bytes is larger than its sectors_reserved %u",
			      (unsigned long long)bitmap_bytes(bsb), bsb->sectors_reserved);
	return 0;
}

uint64_t md_bitmap_sync_size(const struct md_sb *sb)
{
	return sb->level == 10 ? md_sb_array_sectors(sb) : sb->size;
}

int md_bitmap_sb_check(const struct md_bitmap_sb *bsb, const struct md_sb *sb, const char **why)
{
	int64_t start = (int64_t)sb->super_offset + sb->bitmap_offset;
	uint64_t len = (bitmap_bytes(bsb) + 511) / 512;
	uint64_t sbsec = sb->major == 0 ? MD_SB_BYTES / 512 : sb1_sectors(sb->max_dev);

	*why = NULL;
	if (!(sb->feature_map & MD_FEATURE_BITMAP_OFFSET))
		return refuse(why, -EINVAL, "the superblock has no internal bitmap");
	if (sb->major == 0) {
		/* 0.90 bitmaps carry the four UUID words as stored: little-endian. */
		for (unsigned i = 0; i < 16; i++)
			if (bsb->uuid[i] != sb->set_uuid[(i & ~3u) + 3 - (i & 3)])
				return refuse(why, -EINVAL, "bitmap uuid is not the array's");
	} else if (memcmp(bsb->uuid, sb->set_uuid, 16)) {
		return refuse(why, -EINVAL, "bitmap uuid is not the array's");
	}
	if (bsb->sync_size != md_bitmap_sync_size(sb))
		return refuse(why, -EINVAL, "bitmap sync_size %llu is not the array's %llu",
			      (unsigned long long)bsb->sync_size,
			      (unsigned long long)md_bitmap_sync_size(sb));
	if (start < 0 || overlaps((uint64_t)start, len, sb->super_offset, sbsec) ||
	    overlaps((uint64_t)start, len, sb->data_offset, sb->data_size))
		return refuse(why, -EINVAL,
			      "bitmap (%llu sectors at sector %lld) overlaps the superblock or the "
			      "data",
			      (unsigned long long)len, (long long)start);
	return 0;
}

int md_bitmap_sb_write(struct bs_bdev *b, uint64_t offset, const struct md_bitmap_sb *bsb)
{
	uint8_t buf[512];
	int r;

	/* The bits may share this sector: read it and replace only the header. */
	r = bs_bdev_read(b, buf, 512, offset << 9);
	if (r)
		return r;
	memset(buf, 0, BITMAP_SUPER_BYTES);
	p32(buf, BMS_magic, MD_BITMAP_MAGIC);
	p32(buf, BMS_version, bsb->version ? bsb->version : BITMAP_MAJOR_HI);
	memcpy(buf + BMS_uuid, bsb->uuid, 16);
	p64(buf, BMS_events, bsb->events);
	p64(buf, BMS_events_cleared, bsb->events_cleared);
	p64(buf, BMS_sync_size, bsb->sync_size);
	p32(buf, BMS_state, bsb->state);
	p32(buf, BMS_chunksize, bsb->chunksize);
	p32(buf, BMS_daemon_sleep, bsb->daemon_sleep);
	p32(buf, BMS_write_behind, bsb->write_behind);
	p32(buf, BMS_sectors_reserved, bsb->sectors_reserved);
	p32(buf, BMS_nodes, bsb->nodes);
	return bs_bdev_write(b, buf, 512, offset << 9, BS_IO_FUA);
}

int md_bitmap_bits_read(struct bs_bdev *b, uint64_t offset, uint8_t *bits, uint64_t nbits)
{
	uint64_t bytes = nbits / 8 + (nbits % 8 != 0);
	uint64_t span = (BITMAP_SUPER_BYTES + bytes + 511) / 512 * 512;
	uint8_t *buf = malloc(span);
	int r;

	if (!buf)
		return -ENOMEM;
	r = bs_bdev_read(b, buf, span, offset << 9);
	if (!r)
		memcpy(bits, buf + BITMAP_SUPER_BYTES, bytes);
	free(buf);
	return r;
}

int md_bitmap_bits_write(struct bs_bdev *b, uint64_t offset, const uint8_t *bits,
			 uint64_t first_byte, uint64_t nbytes)
{
	/* Whole sectors around the bytes: read, patch from BITS (the full array), write. */
	uint64_t start = (BITMAP_SUPER_BYTES + first_byte) / 512 * 512;
	uint64_t end = (BITMAP_SUPER_BYTES + first_byte + nbytes + 511) / 512 * 512;
	uint8_t *buf;
	int r;

	if (!nbytes)
		return 0;
	buf = malloc(end - start);
	if (!buf)
		return -ENOMEM;
	r = bs_bdev_read(b, buf, end - start, (offset << 9) + start);
	if (!r) {
		memcpy(buf + (BITMAP_SUPER_BYTES + first_byte - start), bits + first_byte, nbytes);
		r = bs_bdev_write(b, buf, end - start, (offset << 9) + start, BS_IO_FUA);
	}
	free(buf);
	return r;
}
