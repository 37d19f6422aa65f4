/*
 * md.c - Linux md superblocks and the internal bitmap (see md.h).
 *
 * On-disk layouts from Linux include/uapi/linux/raid/md_p.h (struct mdp_superblock_1 and
 * the 0.90 mdp_superblock_s) and drivers/md/md-bitmap.h (bitmap_super_t); all fields are
 * little-endian (0.90 is host-endian on Linux; only little-endian hosts are supported).
 */
#include "formats/md.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MD_SB_MAGIC	     0xa92b4efcu
#define SB1_FIXED	     256u
#define SB1_SIZE	     4096u /* bytes read/written for a 1.x superblock (max_dev <= 1920) */
#define SB0_BYTES	     4096u
#define SB0_RESERVED_SECTORS 128u /* 64 KiB */
#define MD_DISK_FAULTY	     0
#define MD_DISK_ACTIVE	     1
#define MD_DISK_SYNC	     2

/* mdp_superblock_1 field offsets */
enum {
	O_MAGIC = 0,
	O_MAJOR = 4,
	O_FEATURE = 8,
	O_UUID = 16,
	O_NAME = 32,
	O_CTIME = 64,
	O_LEVEL = 72,
	O_LAYOUT = 76,
	O_SIZE = 80,
	O_CHUNK = 88,
	O_DISKS = 92,
	O_BITMAP = 96,
	O_NEW_LEVEL = 100,
	O_RESHAPE = 104,
	O_DELTA = 112,
	O_NEW_LAYOUT = 116,
	O_NEW_CHUNK = 120,
	O_NEW_OFFSET = 124,
	O_DATA_OFFSET = 128,
	O_DATA_SIZE = 136,
	O_SUPER_OFFSET = 144,
	O_RECOVERY = 152,
	O_DEV_NUMBER = 160,
	O_CORRECTED = 164,
	O_DEV_UUID = 168,
	O_DEVFLAGS = 184,
	O_BBLOG_SHIFT = 185,
	O_BBLOG_SIZE = 186,
	O_BBLOG_OFFSET = 188,
	O_UTIME = 192,
	O_EVENTS = 200,
	O_RESYNC = 208,
	O_CSUM = 216,
	O_MAX_DEV = 220,
	O_ROLES = 256,
};

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

static uint16_t g16(const uint8_t *p, unsigned o)
{
	uint16_t v;

	memcpy(&v, p + o, 2);
	return le16toh(v);
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

static void p16(uint8_t *p, unsigned o, uint16_t v)
{
	v = htole16(v);
	memcpy(p + o, &v, 2);
}

/* md's calc_sb_1_csum: 32-bit little-endian words (and a trailing half word), folded. */
static uint32_t sb1_csum(const uint8_t *sb, uint32_t max_dev)
{
	uint64_t sum = 0;
	unsigned size = SB1_FIXED + 2 * max_dev, o;

	for (o = 0; o + 4 <= size; o += 4)
		sum += o == O_CSUM ? 0 : g32(sb, o);
	if (size - o == 2)
		sum += g16(sb, o);
	return (uint32_t)((sum & 0xffffffffu) + (sum >> 32));
}

uint64_t md_sb_offset(int minor, uint64_t dev_sectors)
{
	switch (minor) {
	case 0:
		return dev_sectors >= 16 ? (dev_sectors - 16) & ~(uint64_t)7 : 0;
	case 1:
		return 0;
	default:
		return 8;
	}
}

static bool level_known(int level)
{
	return level == -1 || level == 0 || level == 1 || level == 4 || level == 5 || level == 6 ||
	       level == 10;
}

/* Checks what a single superblock can be checked for; 0 or -EINVAL with *why. */
static int sb_validate(const struct md_sb *sb, uint64_t dev_sectors, const char **why)
{
	if (!level_known(sb->level)) {
		*why = "unsupported RAID level";
		return -EINVAL;
	}
	if (sb->raid_disks == 0 || sb->raid_disks > MD_MAX_DEVS) {
		*why = "raid_disks out of range";
		return -EINVAL;
	}
	if (sb->level == 4 || sb->level == 5 || sb->level == 6 || sb->level == 10) {
		if (sb->chunksize < 8 || (sb->chunksize & (sb->chunksize - 1))) {
			*why = "chunk size is not a power of two of at least 4 KiB";
			return -EINVAL;
		}
	} else if (sb->level == 0 && (sb->chunksize == 0 || sb->chunksize % 8)) {
		*why = "RAID0 chunk size invalid";
		return -EINVAL;
	}
	if (sb->level == 5 && sb->layout > 5) {
		*why = "unknown RAID5 layout";
		return -EINVAL;
	}
	if (sb->level == 6 && !(sb->layout <= 5 || (sb->layout >= 8 && sb->layout <= 10) ||
				(sb->layout >= 16 && sb->layout <= 20))) {
		*why = "unknown RAID6 layout";
		return -EINVAL;
	}
	if (sb->level == 10 &&
	    ((sb->layout & 255) == 0 || ((sb->layout >> 8) & 255) == 0 || (sb->layout >> 18))) {
		*why = "invalid RAID10 layout";
		return -EINVAL;
	}
	if (sb->major == 0)
		return 0;
	if (sb->max_dev > MD_MAX_DEVS) {
		*why = "max_dev out of range";
		return -EINVAL;
	}
	if (sb->dev_number >= sb->max_dev) {
		*why = "dev_number beyond max_dev";
		return -EINVAL;
	}
	if (sb->data_offset > dev_sectors || sb->data_size > dev_sectors - sb->data_offset) {
		*why = "data area beyond the end of the device";
		return -EINVAL;
	}
	if (sb->level != 0 && sb->level != -1 && sb->size > sb->data_size) {
		*why = "used size larger than the data area";
		return -EINVAL;
	}
	if (sb->super_offset + 8 > sb->data_offset &&
	    sb->super_offset < sb->data_offset + sb->data_size) {
		*why = "superblock overlaps the data area";
		return -EINVAL;
	}
	for (uint32_t i = 0; i < sb->max_dev; i++) {
		uint16_t r = sb->dev_roles[i];

		if (r >= sb->raid_disks && r != MD_ROLE_SPARE && r != MD_ROLE_FAULTY &&
		    r != MD_ROLE_JOURNAL) {
			*why = "a device role is beyond raid_disks";
			return -EINVAL;
		}
	}
	if (sb->feature_map & MD_FEATURE_BITMAP_OFFSET) {
		int64_t b = (int64_t)sb->super_offset + sb->bitmap_offset;

		if (b < 0 || (uint64_t)b + 1 > dev_sectors ||
		    ((uint64_t)b >= sb->data_offset &&
		     (uint64_t)b < sb->data_offset + sb->data_size)) {
			*why = "bitmap offset points outside the device or into the data";
			return -EINVAL;
		}
	}
	if ((sb->feature_map & MD_FEATURE_RECOVERY_OFFSET) && sb->level != 0 &&
	    sb->recovery_offset > sb->size && sb->recovery_offset != MD_MAX_SECTOR) {
		*why = "recovery offset beyond the used size";
		return -EINVAL;
	}
	if (sb->feature_map & ~(uint32_t)(2 * MD_FEATURE_RAID0_LAYOUT - 1)) {
		*why = "unknown feature bits";
		return -EINVAL;
	}
	return 0;
}

static int sb1_parse(const uint8_t *b, int minor, uint64_t at, uint64_t dev_sectors,
		     struct md_sb *sb, const char **why)
{
	uint64_t ct;

	memset(sb, 0, sizeof(*sb));
	if (g32(b, O_MAGIC) != MD_SB_MAGIC) {
		*why = "no md superblock";
		return -ENOENT;
	}
	if (g32(b, O_MAJOR) != 1) {
		*why = "unsupported superblock major version";
		return -EINVAL;
	}
	sb->max_dev = g32(b, O_MAX_DEV);
	if (sb->max_dev > MD_MAX_DEVS || SB1_FIXED + 2 * sb->max_dev > SB1_SIZE) {
		*why = "max_dev out of range";
		return -EINVAL;
	}
	if (g32(b, O_CSUM) != sb1_csum(b, sb->max_dev)) {
		*why = "superblock checksum mismatch";
		return -EINVAL;
	}
	sb->major = 1;
	sb->minor = minor;
	sb->feature_map = g32(b, O_FEATURE);
	memcpy(sb->set_uuid, b + O_UUID, 16);
	memcpy(sb->set_name, b + O_NAME, 32);
	sb->set_name[32] = '\0';
	ct = g64(b, O_CTIME);
	sb->ctime = ct & 0xffffffffffull;
	sb->level = (int32_t)g32(b, O_LEVEL);
	sb->layout = g32(b, O_LAYOUT);
	sb->size = g64(b, O_SIZE);
	sb->chunksize = g32(b, O_CHUNK);
	sb->raid_disks = g32(b, O_DISKS);
	sb->bitmap_offset = (int32_t)g32(b, O_BITMAP);
	sb->new_level = (int32_t)g32(b, O_NEW_LEVEL);
	sb->reshape_position = g64(b, O_RESHAPE);
	sb->delta_disks = (int32_t)g32(b, O_DELTA);
	sb->new_layout = g32(b, O_NEW_LAYOUT);
	sb->new_chunk = g32(b, O_NEW_CHUNK);
	sb->new_offset = (int32_t)g32(b, O_NEW_OFFSET);
	sb->data_offset = g64(b, O_DATA_OFFSET);
	sb->data_size = g64(b, O_DATA_SIZE);
	sb->super_offset = g64(b, O_SUPER_OFFSET);
	sb->recovery_offset = g64(b, O_RECOVERY);
	sb->dev_number = g32(b, O_DEV_NUMBER);
	sb->cnt_corrected_read = g32(b, O_CORRECTED);
	memcpy(sb->device_uuid, b + O_DEV_UUID, 16);
	sb->devflags = b[O_DEVFLAGS];
	sb->utime = g64(b, O_UTIME) & 0xffffffffffull;
	sb->events = g64(b, O_EVENTS);
	sb->resync_offset = g64(b, O_RESYNC);
	for (uint32_t i = 0; i < sb->max_dev; i++)
		sb->dev_roles[i] = g16(b, O_ROLES + 2 * i);
	if (sb->super_offset != at) {
		*why = "superblock says it lives elsewhere (super_offset mismatch)";
		return -EINVAL;
	}
	return sb_validate(sb, dev_sectors, why);
}

/* 0.90: words of the 4 KiB superblock at the last 64 KiB-aligned 64 KiB of the device. */
static int sb0_parse(const uint8_t *b, uint64_t dev_sectors, struct md_sb *sb, const char **why)
{
	uint64_t sum = 0;
	uint32_t csum;
	const uint8_t *this_disk = b + 992 * 4;
	uint32_t this_raid_disk;

	memset(sb, 0, sizeof(*sb));
	if (g32(b, 0) != MD_SB_MAGIC) {
		*why = "no md superblock";
		return -ENOENT;
	}
	if (g32(b, 4) != 0 || g32(b, 8) != 90) {
		*why = "unsupported 0.9x superblock version";
		return -EINVAL;
	}
	for (unsigned w = 0; w < SB0_BYTES / 4; w++)
		sum += w == 38 ? 0 : g32(b, 4 * w);
	csum = (uint32_t)((sum & 0xffffffffu) + (sum >> 32));
	if (csum != g32(b, 38 * 4)) {
		*why = "superblock checksum mismatch";
		return -EINVAL;
	}
	sb->major = 0;
	sb->minor = 90;
	{
		/* The four 32-bit words, each most significant byte first, as mdadm shows them. */
		static const unsigned words[4] = {5, 13, 14, 15};

		for (unsigned i = 0; i < 4; i++) {
			uint32_t w = htobe32(g32(b, 4 * words[i]));

			memcpy(sb->set_uuid + 4 * i, &w, 4);
		}
	}

	sb->ctime = g32(b, 6 * 4);
	sb->level = (int32_t)g32(b, 7 * 4);
	sb->size = (uint64_t)g32(b, 8 * 4) * 2; /* KiB */
	sb->raid_disks = g32(b, 10 * 4);
	sb->utime = g32(b, 32 * 4);
	sb->events = ((uint64_t)g32(b, 40 * 4) << 32) | g32(b, 39 * 4);
	sb->resync_offset = (g32(b, 33 * 4) & 1) ? MD_MAX_SECTOR : g32(b, 43 * 4);
	sb->layout = g32(b, 64 * 4);
	sb->chunksize = g32(b, 65 * 4) / 512;
	sb->super_offset =
	    (dev_sectors & ~(uint64_t)(SB0_RESERVED_SECTORS - 1)) - SB0_RESERVED_SECTORS;
	sb->data_offset = 0;
	sb->data_size = sb->super_offset;
	this_raid_disk = g32(this_disk, 12);
	sb->dev_number = g32(this_disk, 0);
	sb->max_dev = 27;
	for (unsigned i = 0; i < 27; i++) {
		const uint8_t *d = b + (128 + 32 * i) * 4;
		uint32_t state = g32(d, 16), rd = g32(d, 12);

		if (state & (1u << MD_DISK_FAULTY))
			sb->dev_roles[i] = MD_ROLE_FAULTY;
		else if ((state & (1u << MD_DISK_ACTIVE)) && (state & (1u << MD_DISK_SYNC)))
			sb->dev_roles[i] = (uint16_t)rd;
		else
			sb->dev_roles[i] = MD_ROLE_SPARE;
	}
	(void)this_raid_disk;
	if (sb->dev_number >= 27) {
		*why = "this_disk number out of range";
		return -EINVAL;
	}
	snprintf(sb->set_name, sizeof(sb->set_name), "%u", g32(b, 11 * 4));
	return sb_validate(sb, dev_sectors, why);
}

int md_sb_read(struct bs_bdev *b, struct md_sb *sb, const char **why)
{
	uint64_t sectors = bs_bdev_size(b) >> 9;
	uint8_t *buf = malloc(SB1_SIZE);
	static const int minors[] = {2, 1, 0};
	int r = -ENOENT;

	*why = "no md superblock";
	if (!buf)
		return -ENOMEM;
	for (unsigned i = 0; i < 3; i++) {
		uint64_t at = md_sb_offset(minors[i], sectors);

		if (at + SB1_SIZE / 512 > sectors)
			continue;
		if (bs_bdev_read(b, buf, SB1_SIZE, at << 9)) {
			*why = "cannot read the device";
			r = -EIO;
			goto out;
		}
		r = sb1_parse(buf, minors[i], at, sectors, sb, why);
		if (r != -ENOENT)
			goto out;
	}
	if (sectors >= 2 * SB0_RESERVED_SECTORS) {
		uint64_t at =
		    (sectors & ~(uint64_t)(SB0_RESERVED_SECTORS - 1)) - SB0_RESERVED_SECTORS;

		if (bs_bdev_read(b, buf, SB0_BYTES, at << 9)) {
			*why = "cannot read the device";
			r = -EIO;
			goto out;
		}
		r = sb0_parse(buf, sectors, sb, why);
	}
out:
	free(buf);
	if (r == -ENOENT)
		*why = "no md superblock";
	return r;
}

int md_sb_write(struct bs_bdev *b, const struct md_sb *sb)
{
	uint8_t *buf;
	uint32_t max_dev = sb->max_dev ? sb->max_dev : 384;
	int r;

	if (sb->major != 1 || max_dev > MD_MAX_DEVS || SB1_FIXED + 2 * max_dev > SB1_SIZE)
		return -EINVAL;
	buf = calloc(1, SB1_SIZE);
	if (!buf)
		return -ENOMEM;
	p32(buf, O_MAGIC, MD_SB_MAGIC);
	p32(buf, O_MAJOR, 1);
	p32(buf, O_FEATURE, sb->feature_map);
	memcpy(buf + O_UUID, sb->set_uuid, 16);
	memcpy(buf + O_NAME, sb->set_name, strnlen(sb->set_name, 32));
	p64(buf, O_CTIME, sb->ctime & 0xffffffffffull);
	p32(buf, O_LEVEL, (uint32_t)sb->level);
	p32(buf, O_LAYOUT, sb->layout);
	p64(buf, O_SIZE, sb->size);
	p32(buf, O_CHUNK, sb->chunksize);
	p32(buf, O_DISKS, sb->raid_disks);
	p32(buf, O_BITMAP, (uint32_t)sb->bitmap_offset);
	p32(buf, O_NEW_LEVEL, (uint32_t)sb->new_level);
	p64(buf, O_RESHAPE, sb->reshape_position);
	p32(buf, O_DELTA, (uint32_t)sb->delta_disks);
	p32(buf, O_NEW_LAYOUT, sb->new_layout);
	p32(buf, O_NEW_CHUNK, sb->new_chunk);
	p32(buf, O_NEW_OFFSET, (uint32_t)(int32_t)sb->new_offset);
	p64(buf, O_DATA_OFFSET, sb->data_offset);
	p64(buf, O_DATA_SIZE, sb->data_size);
	p64(buf, O_SUPER_OFFSET, sb->super_offset);
	p64(buf, O_RECOVERY, sb->recovery_offset);
	p32(buf, O_DEV_NUMBER, sb->dev_number);
	p32(buf, O_CORRECTED, sb->cnt_corrected_read);
	memcpy(buf + O_DEV_UUID, sb->device_uuid, 16);
	buf[O_DEVFLAGS] = sb->devflags;
	p64(buf, O_UTIME, sb->utime & 0xffffffffffull);
	p64(buf, O_EVENTS, sb->events);
	p64(buf, O_RESYNC, sb->resync_offset);
	p32(buf, O_MAX_DEV, max_dev);
	for (uint32_t i = 0; i < max_dev; i++)
		p16(buf, O_ROLES + 2 * i, sb->dev_roles[i]);
	p32(buf, O_CSUM, sb1_csum(buf, max_dev));
	/* Only the superblock's own 4 KiB are written: what follows may be the bitmap. */
	r = bs_bdev_write(b, buf, SB1_SIZE, sb->super_offset << 9, BS_IO_FUA);
	free(buf);
	return r;
}

int md_sb_erase(struct bs_bdev *b)
{
	uint64_t sectors = bs_bdev_size(b) >> 9;
	uint8_t zero[SB1_SIZE] = {0};
	int r = 0;

	for (int minor = 0; minor <= 2; minor++) {
		uint64_t at = md_sb_offset(minor, sectors);
		uint8_t cur[4];

		if (at + SB1_SIZE / 512 > sectors)
			continue;
		/* Only where a superblock is: never zero the first 4 KiB of a device blindly. */
		if (!bs_bdev_read(b, cur, 4, at << 9) && g32(cur, 0) == MD_SB_MAGIC)
			r = bs_bdev_write(b, zero, SB1_SIZE, at << 9, 0);
	}
	if (sectors >= 2 * SB0_RESERVED_SECTORS) {
		uint64_t at =
		    (sectors & ~(uint64_t)(SB0_RESERVED_SECTORS - 1)) - SB0_RESERVED_SECTORS;
		uint8_t cur[4];

		if (!bs_bdev_read(b, cur, 4, at << 9) && g32(cur, 0) == MD_SB_MAGIC)
			r = bs_bdev_write(b, zero, SB0_BYTES, at << 9, 0);
	}
	return r;
}

/* ---- text ----------------------------------------------------------------------------- */

void md_uuid_format(const uint8_t uuid[16], char out[36])
{
	/* mdadm prints the 16 bytes in order, in four groups (0.90 UUIDs are stored so too). */
	snprintf(out, 36, "%02x%02x%02x%02x:%02x%02x%02x%02x:%02x%02x%02x%02x:%02x%02x%02x%02x",
		 uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7], uuid[8],
		 uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15]);
}

int md_uuid_parse(const char *s, uint8_t uuid[16])
{
	unsigned v[16], n = 0;
	char hex[33];

	/* Accept mdadm's 8:8:8:8 form, or 32 hex digits in the same order. */
	for (const char *p = s; *p; p++) {
		if (*p == ':' || *p == '-' || *p == '.' || *p == ' ')
			continue;
		if (n == 32)
			return -EINVAL;
		hex[n++] = *p;
	}
	if (n != 32)
		return -EINVAL;
	hex[32] = '\0';
	for (unsigned i = 0; i < 16; i++)
		if (sscanf(hex + 2 * i, "%2x", &v[i]) != 1)
			return -EINVAL;
	for (unsigned i = 0; i < 16; i++) {
		char c1 = hex[2 * i], c2 = hex[2 * i + 1];
		bool ok = ((c1 >= '0' && c1 <= '9') || (c1 >= 'a' && c1 <= 'f') ||
			   (c1 >= 'A' && c1 <= 'F')) &&
			  ((c2 >= '0' && c2 <= '9') || (c2 >= 'a' && c2 <= 'f') ||
			   (c2 >= 'A' && c2 <= 'F'));

		if (!ok)
			return -EINVAL;
	}
	for (unsigned i = 0; i < 16; i++)
		uuid[i] = (uint8_t)v[i];
	return 0;
}

static const char *level_name(int level, char *buf, size_t n)
{
	if (level == -1)
		return "linear";
	snprintf(buf, n, "raid%d", level);
	return buf;
}

static void human(struct strbuf *out, uint64_t sectors)
{
	double mib = sectors / 2048.0, mb = sectors * 512.0 / 1e6;

	if (mib >= 1024)
		sb_printf(out, "(%.2f GiB %.2f GB)", mib / 1024, mb / 1000);
	else
		sb_printf(out, "(%.2f MiB %.2f MB)", mib, mb);
}

static const char *layout_text(const struct md_sb *sb, char *buf, size_t n)
{
	static const char *const r5[] = {"left-asymmetric", "right-asymmetric", "left-symmetric",
					 "right-symmetric", "parity-first",	"parity-last"};

	if ((sb->level == 5 || sb->level == 6) && sb->layout <= 5)
		return r5[sb->layout];
	if (sb->level == 6 && sb->layout >= 16 && sb->layout <= 20) {
		snprintf(buf, n, "%s-6", r5[sb->layout - 16]);
		return buf;
	}
	if (sb->level == 6 && sb->layout >= 8 && sb->layout <= 10)
		return sb->layout == 8	 ? "ddf-zero-restart"
		       : sb->layout == 9 ? "ddf-N-restart"
					 : "ddf-N-continue";
	if (sb->level == 10) {
		unsigned nc = sb->layout & 255, fc = (sb->layout >> 8) & 255;

		if (fc <= 1)
			snprintf(buf, n, "near=%u", nc);
		else if (nc <= 1)
			snprintf(buf, n, "%s=%u", (sb->layout & (1u << 16)) ? "offset" : "far", fc);
		else
			snprintf(buf, n, "near=%u, %s=%u", nc,
				 (sb->layout & (1u << 16)) ? "offset" : "far", fc);
		return buf;
	}
	if (sb->level == 0)
		return sb->layout == 2 ? "alternate" : sb->layout == 1 ? "original" : "-unknown-";
	return NULL;
}

static uint64_t array_sectors(const struct md_sb *sb)
{
	uint64_t size = sb->size;

	switch (sb->level) {
	case 1:
		return size;
	case 4:
	case 5:
		return size * (sb->raid_disks - 1);
	case 6:
		return size * (sb->raid_disks - 2);
	case 10: {
		unsigned copies = (sb->layout & 255) * ((sb->layout >> 8) & 255);

		return copies ? size * sb->raid_disks / copies : 0;
	}
	default:
		return 0;
	}
}

void md_sb_examine(const struct md_sb *sb, const char *name, struct strbuf *out)
{
	char u[36], lvl[16], lay[48];
	const char *ltxt = layout_text(sb, lay, sizeof(lay));
	time_t ct = (time_t)sb->ctime, ut = (time_t)sb->utime;
	char cts[64], uts[64];
	struct tm tm;
	unsigned role;

	strftime(cts, sizeof(cts), "%a %b %e %H:%M:%S %Y", localtime_r(&ct, &tm));
	strftime(uts, sizeof(uts), "%a %b %e %H:%M:%S %Y", localtime_r(&ut, &tm));
	md_uuid_format(sb->set_uuid, u);
	sb_printf(out, "%s:\n", name);
	sb_printf(out, "          Magic : a92b4efc\n");
	if (sb->major == 0) {
		sb_printf(out, "        Version : 0.90.00\n           UUID : %s\n", u);
		sb_printf(out, "  Creation Time : %s\n     Raid Level : %s\n", cts,
			  level_name(sb->level, lvl, sizeof(lvl)));
		sb_printf(out, "   Raid Devices : %u\n         Events : %llu\n", sb->raid_disks,
			  (unsigned long long)sb->events);
		return;
	}
	sb_printf(out, "        Version : 1.%d\n", sb->minor);
	sb_printf(out, "    Feature Map : 0x%x\n", sb->feature_map);
	sb_printf(out, "     Array UUID : %s\n", u);
	sb_printf(out, "           Name : %s\n", sb->set_name);
	sb_printf(out, "  Creation Time : %s\n", cts);
	sb_printf(out, "     Raid Level : %s\n", level_name(sb->level, lvl, sizeof(lvl)));
	sb_printf(out, "   Raid Devices : %u\n\n", sb->raid_disks);
	sb_printf(out, " Avail Dev Size : %llu sectors ", (unsigned long long)sb->data_size);
	human(out, sb->data_size);
	sb_putc(out, '\n');
	if (sb->level >= 1) {
		sb_printf(out, "     Array Size : %llu KiB ",
			  (unsigned long long)array_sectors(sb) / 2);
		human(out, array_sectors(sb));
		sb_putc(out, '\n');
		sb_printf(out, "  Used Dev Size : %llu sectors ", (unsigned long long)sb->size);
		human(out, sb->size);
		sb_putc(out, '\n');
	}
	sb_printf(out, "    Data Offset : %llu sectors\n", (unsigned long long)sb->data_offset);
	sb_printf(out, "   Super Offset : %llu sectors\n", (unsigned long long)sb->super_offset);
	sb_printf(out, "          State : %s\n",
		  sb->resync_offset == MD_MAX_SECTOR ? "clean" : "active");
	md_uuid_format(sb->device_uuid, u);
	sb_printf(out, "    Device UUID : %s\n\n", u);
	if (sb->feature_map & MD_FEATURE_BITMAP_OFFSET)
		sb_printf(out, "Internal Bitmap : %d sectors from superblock\n", sb->bitmap_offset);
	if (sb->feature_map & MD_FEATURE_RESHAPE_ACTIVE)
		sb_printf(out, "  Reshape pos'n : %llu\n  Delta Devices : %d\n",
			  (unsigned long long)sb->reshape_position / 2, sb->delta_disks);
	if (sb->feature_map & MD_FEATURE_RECOVERY_OFFSET)
		sb_printf(out, "Recovery Offset : %llu sectors\n",
			  (unsigned long long)sb->recovery_offset);
	sb_printf(out, "    Update Time : %s\n", uts);
	{
		/* Re-derive the checksum from a re-encoding, as the reader already checked it. */
		sb_printf(out, "       Checksum : correct\n");
	}
	sb_printf(out, "         Events : %llu\n\n", (unsigned long long)sb->events);
	if (ltxt)
		sb_printf(out, "         Layout : %s\n", ltxt);
	if (sb->level != 1 && sb->chunksize)
		sb_printf(out, "     Chunk Size : %uK\n", sb->chunksize / 2);
	sb_putc(out, '\n');
	role = sb->dev_number < sb->max_dev ? sb->dev_roles[sb->dev_number] : MD_ROLE_FAULTY;
	if (role == MD_ROLE_SPARE)
		sb_printf(out, "   Device Role : spare\n");
	else if (role == MD_ROLE_FAULTY)
		sb_printf(out, "   Device Role : faulty\n");
	else if (role == MD_ROLE_JOURNAL)
		sb_printf(out, "   Device Role : Journal\n");
	else
		sb_printf(out, "   Device Role : Active device %u\n", role);
	sb_printf(out, "   Array State : ");
	for (unsigned i = 0; i < sb->raid_disks; i++) {
		bool present = false;

		for (unsigned k = 0; k < sb->max_dev && !present; k++)
			present = sb->dev_roles[k] == i;
		sb_putc(out, present ? 'A' : '.');
	}
	sb_printf(out, " ('A' == active, '.' == missing, 'R' == replacing)\n");
}

void md_sb_array_line(const struct md_sb *sb, struct strbuf *out)
{
	char u[36];
	const char *colon = strchr(sb->set_name, ':');

	md_uuid_format(sb->set_uuid, u);
	if (sb->major == 0)
		sb_printf(out, "ARRAY /dev/md%s UUID=%s\n", sb->set_name, u);
	else
		sb_printf(out, "ARRAY /dev/md/%s  metadata=1.%d UUID=%s name=%s\n",
			  colon ? colon + 1 : sb->set_name, sb->minor, u, sb->set_name);
}

/* ---- bitmap ------------------------------------------------------------------------------- */

enum {
	B_MAGIC = 0,
	B_VERSION = 4,
	B_UUID = 8,
	B_EVENTS = 24,
	B_CLEARED = 32,
	B_SYNC = 40,
	B_STATE = 48,
	B_CHUNK = 52,
	B_SLEEP = 56,
	B_BEHIND = 60,
	B_RESERVED = 64,
	B_NODES = 68,
	B_SIZE = 256,
};

uint64_t md_bitmap_bits(uint64_t sync_size, uint32_t chunksize)
{
	uint64_t c = chunksize / 512;

	return c ? (sync_size + c - 1) / c : 0;
}

int md_bitmap_sb_read(struct bs_bdev *b, uint64_t offset, struct md_bitmap_sb *bsb,
		      const char **why)
{
	uint8_t buf[512];

	if (bs_bdev_read(b, buf, 512, offset << 9)) {
		*why = "cannot read the bitmap";
		return -EIO;
	}
	if (g32(buf, B_MAGIC) != MD_BITMAP_MAGIC) {
		*why = "no bitmap superblock where the superblock says";
		return -EINVAL;
	}
	memset(bsb, 0, sizeof(*bsb));
	bsb->version = g32(buf, B_VERSION);
	memcpy(bsb->uuid, buf + B_UUID, 16);
	bsb->events = g64(buf, B_EVENTS);
	bsb->events_cleared = g64(buf, B_CLEARED);
	bsb->sync_size = g64(buf, B_SYNC);
	bsb->state = g32(buf, B_STATE);
	bsb->chunksize = g32(buf, B_CHUNK);
	bsb->daemon_sleep = g32(buf, B_SLEEP);
	bsb->write_behind = g32(buf, B_BEHIND);
	bsb->sectors_reserved = g32(buf, B_RESERVED);
	bsb->nodes = g32(buf, B_NODES);
	if (bsb->version < 3 || bsb->version > 4) {
		*why = "unsupported bitmap version";
		return -EINVAL;
	}
	if (bsb->chunksize < 512 || (bsb->chunksize & (bsb->chunksize - 1))) {
		*why = "bitmap chunk size is not a power of two of at least 512";
		return -EINVAL;
	}
	if (bsb->nodes > 1) {
		*why = "clustered bitmaps are not supported";
		return -EINVAL;
	}
	if (bsb->sync_size == 0 ||
	    (offset << 9) + B_SIZE + (md_bitmap_bits(bsb->sync_size, bsb->chunksize) + 7) / 8 >
		bs_bdev_size(b)) {
		*why = "bitmap larger than the device";
		return -EINVAL;
	}
	if (bsb->daemon_sleep == 0 || bsb->daemon_sleep > 3600)
		bsb->daemon_sleep = 5;
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
	memset(buf, 0, B_SIZE);
	p32(buf, B_MAGIC, MD_BITMAP_MAGIC);
	p32(buf, B_VERSION, bsb->version ? bsb->version : 4);
	memcpy(buf + B_UUID, bsb->uuid, 16);
	p64(buf, B_EVENTS, bsb->events);
	p64(buf, B_CLEARED, bsb->events_cleared);
	p64(buf, B_SYNC, bsb->sync_size);
	p32(buf, B_STATE, bsb->state);
	p32(buf, B_CHUNK, bsb->chunksize);
	p32(buf, B_SLEEP, bsb->daemon_sleep);
	p32(buf, B_BEHIND, bsb->write_behind);
	p32(buf, B_RESERVED, bsb->sectors_reserved);
	p32(buf, B_NODES, bsb->nodes);
	return bs_bdev_write(b, buf, 512, offset << 9, BS_IO_FUA);
}

int md_bitmap_bits_read(struct bs_bdev *b, uint64_t offset, uint8_t *bits, uint64_t nbits)
{
	uint64_t bytes = (nbits + 7) / 8, span = (B_SIZE + bytes + 511) / 512 * 512;
	uint8_t *buf = malloc(span);
	int r;

	if (!buf)
		return -ENOMEM;
	r = bs_bdev_read(b, buf, span, offset << 9);
	if (!r)
		memcpy(bits, buf + B_SIZE, bytes);
	free(buf);
	return r;
}

int md_bitmap_bits_write(struct bs_bdev *b, uint64_t offset, const uint8_t *bits,
			 uint64_t first_byte, uint64_t nbytes)
{
	/* Whole sectors around the bytes: read, patch from BITS (the full array), write. */
	uint64_t start = (B_SIZE + first_byte) / 512 * 512;
	uint64_t end = (B_SIZE + first_byte + nbytes + 511) / 512 * 512;
	uint8_t *buf = malloc(end - start);
	int r;

	if (!buf)
		return -ENOMEM;
	r = bs_bdev_read(b, buf, end - start, (offset << 9) + start);
	if (!r) {
		memcpy(buf + (B_SIZE + first_byte - start), bits + first_byte, nbytes);
		r = bs_bdev_write(b, buf, end - start, (offset << 9) + start, BS_IO_FUA);
	}
	free(buf);
	return r;
}
