/*
 * md_array.c - see md_array.h.
 *
 * Member layout of arrays created here (v1.2, all offsets in 512-byte sectors):
 *   0..7        unused (as md)
 *   8           superblock
 *   16          internal bitmap (superblock then bits), when enabled
 *   2048        blkstack area header ("BSXH"), when either area below exists
 *   2056..      checksum log, with --checksum-log
 *   then        journal ring, with the journal policy
 *   then        free headroom of 16 chunks (RAID4/5/6): room for `grow` to move the data
 *               forward (each grow takes 4 chunks of it)
 *   data_offset the first 1 MiB boundary past all that (2048 when there is nothing)
 * Linux md ignores these areas (no feature bit is set for them), so such arrays also
 * assemble in Linux, which then simply resyncs after an unclean stop (and does not keep
 * the checksum log current: blkstack forgets checksums it cannot trust on its next start,
 * see array_csum.c, only when its own bitmap says so, so do not mix writers).
 */
#include "raid/md_array.h"

#include <endian.h>
#include <errno.h>
#include <isa-l.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define SB_SECTOR	 8
#define BITMAP_SECTOR	 16
#define DEFAULT_DATA_OFF 2048
#define JOURNAL_DEFAULT	 16384 /* 8 MiB ring per member */
#define MAX_DEVS	 (RAID_MAX_DISKS + 16)

struct md_dev {
	struct bs_bdev *bdev;
	uint32_t dev_number;
	uint8_t device_uuid[16];
	uint64_t data_offset, data_size, super_offset;
	uint64_t journal_offset;
	uint64_t csum_offset;
};

struct md_array {
	struct raid_array *a;
	pthread_mutex_t lock; /* sb, dev table, bits */
	struct md_sb sb;      /* array-wide fields; per-device fields are filled per write */
	struct md_dev dev[MAX_DEVS];
	unsigned ndev;
	bool bitmap;
	struct md_bitmap_sb bsb;
	uint8_t *bits;
	uint64_t nbits;
	uint64_t journal_sectors;
	bool csum;
	bool reshaping;	   /* a grow runs: the superblocks carry RESHAPE_ACTIVE */
	uint64_t headroom; /* its data offset change (sectors down) */
};

struct ext_hdr {
	uint32_t magic;
	uint32_t version;
	uint8_t uuid[16];
	uint64_t journal_start;
	uint64_t journal_sectors;
	uint64_t csum_offset;
	uint64_t csum_sectors;
	uint32_t crc;
	uint32_t pad;
};

struct ext_areas {
	uint64_t journal_start, journal_sectors;
	uint64_t csum_offset, csum_sectors;
};

/*
 * md_sb_read, also accepting a superblock in the middle of a reshape (which md_sb_read
 * refuses): whether blkstack can continue that reshape is decided at assembly.
 */
static int read_sb(struct bs_bdev *b, struct md_sb *sb, const char **why)
{
	int r = md_sb_read(b, sb, why);
	const uint32_t other = MD_FEATURE_BAD_BLOCKS | MD_FEATURE_CLUSTERED | MD_FEATURE_JOURNAL;

	if (r != -EOPNOTSUPP)
		return r;
	if (md_sb_read_any(b, sb, why) || sb->major != 1 ||
	    !(sb->feature_map & MD_FEATURE_RESHAPE_ACTIVE) || (sb->feature_map & other))
		return md_sb_read(b, sb, why);
	return 0;
}

/* Member count of the geometry the data is in where a reshape has not reached yet. */
static unsigned old_disks(const struct md_sb *sb)
{
	if (sb->feature_map & MD_FEATURE_RESHAPE_ACTIVE)
		return (unsigned)((int64_t)sb->raid_disks - sb->delta_disks);
	return sb->raid_disks;
}

static uint64_t now_s(void)
{
	return (uint64_t)time(NULL);
}

/* ---- the area header ------------------------------------------------------------------ */

static int ext_hdr_write(struct bs_bdev *b, const uint8_t uuid[16], const struct ext_areas *x)
{
	uint8_t sec[512] = {0};
	struct ext_hdr h = {
	    .magic = htole32(MD_EXT_MAGIC),
	    .version = htole32(1),
	    .journal_start = htole64(x->journal_start),
	    .journal_sectors = htole64(x->journal_sectors),
	    .csum_offset = htole64(x->csum_offset),
	    .csum_sectors = htole64(x->csum_sectors),
	};

	memcpy(h.uuid, uuid, 16);
	h.crc = htole32(crc32_iscsi((unsigned char *)&h, offsetof(struct ext_hdr, crc), 0));
	memcpy(sec, &h, sizeof(h));
	return bs_bdev_write(b, sec, 512, (uint64_t)MD_EXT_HDR_SECTOR << 9, BS_IO_FUA);
}

/* True with the areas when B carries a valid header of array UUID. */
static bool ext_hdr_read(struct bs_bdev *b, const uint8_t uuid[16], uint64_t data_offset,
			 struct ext_areas *x)
{
	uint8_t sec[512];
	struct ext_hdr h;

	if (data_offset < MD_EXT_HDR_SECTOR + 16 ||
	    bs_bdev_read(b, sec, 512, (uint64_t)MD_EXT_HDR_SECTOR << 9))
		return false;
	memcpy(&h, sec, sizeof(h));
	if (le32toh(h.magic) != MD_EXT_MAGIC || le32toh(h.version) != 1 ||
	    memcmp(h.uuid, uuid, 16) ||
	    le32toh(h.crc) != crc32_iscsi((unsigned char *)&h, offsetof(struct ext_hdr, crc), 0))
		return false;
	x->journal_start = le64toh(h.journal_start);
	x->journal_sectors = le64toh(h.journal_sectors);
	x->csum_offset = le64toh(h.csum_offset);
	x->csum_sectors = le64toh(h.csum_sectors);
	/* Both areas must sit between the header and the data. */
	if (x->journal_sectors &&
	    (x->journal_start <= MD_EXT_HDR_SECTOR || x->journal_sectors < 64 ||
	     x->journal_start + x->journal_sectors > data_offset))
		return false;
	if (x->csum_sectors &&
	    (x->csum_offset <= MD_EXT_HDR_SECTOR || x->csum_offset + x->csum_sectors > data_offset))
		return false;
	return true;
}

/* ---- creating ---------------------------------------------------------------------------- */

/* At most this many bits: the bitmap stays inside one page, far below the data. */
#define BITMAP_MAX_BITS 8192
/*
 * A bit covers 64 MiB by default, as mdadm chooses for internal bitmaps: every write to a
 * clean region waits for a bitmap write on every member, so small regions cost throughput
 * (and buy a shorter resync after a crash).  More when the array needs it.
 */
#define BITMAP_DEFAULT_CHUNK (64ull << 20)

static uint64_t bitmap_chunk_bytes(uint64_t span_sectors)
{
	uint64_t c = BITMAP_DEFAULT_CHUNK;

	while (c <= (1ull << 31) && md_bitmap_bits(span_sectors, (uint32_t)c) > BITMAP_MAX_BITS)
		c *= 2;
	return c;
}

int md_array_format(const struct md_create_params *p, struct bs_bdev *const *members,
		    unsigned nmembers, struct bs_bdev *const *spares, unsigned nspares,
		    uint8_t uuid_out[16], uint64_t *array_sectors, struct strbuf *err)
{
	uint64_t sizes[RAID_MAX_DISKS] = {0}, data_offset = DEFAULT_DATA_OFF, min = UINT64_MAX;
	uint64_t journal = 0, span, biggest = 0;
	struct ext_areas ext = {0};
	struct raid_geom g;
	struct md_sb sb;
	const char *why;
	char host[64] = "blkstack";
	uint8_t *bits = NULL;
	uint64_t bchunk = 0;
	uint64_t nbits = 0;
	unsigned present = 0;
	int r;

	if (nmembers != p->raid_disks || nmembers == 0 || nmembers > RAID_MAX_DISKS ||
	    nspares > 16) {
		sb_printf(err, "expected %u member devices, got %u", p->raid_disks, nmembers);
		return -EINVAL;
	}
	if (p->policy == RAID_POLICY_JOURNAL) {
		if (p->level < 4 || p->level > 6) {
			sb_puts(err, "the journal consistency policy is for RAID4/5/6");
			return -EINVAL;
		}
		journal = p->journal_sectors;
		if (!journal) {
			/* 8 MiB, or a sixteenth of the smallest member, but room for 4 stripes. */
			uint64_t small = UINT64_MAX;

			for (unsigned i = 0; i < nmembers; i++)
				if (members[i] && bs_bdev_size(members[i]) >> 9 < small)
					small = bs_bdev_size(members[i]) >> 9;
			journal = small / 16 < JOURNAL_DEFAULT ? small / 16 : JOURNAL_DEFAULT;
			if (journal < 4 * (p->raid_disks * p->chunk + 8))
				journal = 4 * (p->raid_disks * p->chunk + 8);
		}

		if (journal < 2 * (p->raid_disks * p->chunk + 8)) {
			sb_printf(
			    err, "journal of %llu sectors is too small for stripes of %llu sectors",
			    (unsigned long long)journal,
			    (unsigned long long)(p->raid_disks * p->chunk));
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < nmembers + nspares; i++) {
		struct bs_bdev *b = i < nmembers ? members[i] : spares[i - nmembers];

		if (b && bs_bdev_size(b) >> 9 > biggest)
			biggest = bs_bdev_size(b) >> 9;
	}
	if (p->checksum_log && p->level == 0) {
		sb_puts(err, "a checksum log needs redundancy to repair from (not RAID0)");
		return -EINVAL;
	}
	{
		uint64_t next = MD_EXT_HDR_SECTOR + 8;

		if (p->checksum_log) {
			/* Sized for the biggest member: the data area is never larger. */
			ext.csum_offset = next;
			ext.csum_sectors = raid_csum_area_sectors(biggest);
			next += ext.csum_sectors;
		}
		if (journal) {
			ext.journal_start = next;
			ext.journal_sectors = journal;
			next += journal;
		}
		if (p->level >= 4 && p->level <= 6)
			next += MD_GROW_HEADROOM_CHUNKS * p->chunk;
		data_offset = (next + 2047) / 2048 * 2048;
	}
	for (unsigned i = 0; i < nmembers + nspares; i++) {
		struct bs_bdev *b = i < nmembers ? members[i] : spares[i - nmembers];
		uint64_t s;

		if (!b)
			continue;
		s = bs_bdev_size(b) >> 9;
		if (s <= data_offset + 8) {
			sb_printf(err, "%s is too small (%llu sectors) for a member", b->name,
				  (unsigned long long)s);
			return -EINVAL;
		}
		s -= data_offset;
		if (i < nmembers) {
			sizes[i] = s;
			present++;
		}
		if (s < min)
			min = s;
	}
	if (!present) {
		sb_puts(err, "no member device given");
		return -EINVAL;
	}
	if (p->size) {
		if (p->size > min) {
			sb_printf(err, "--size of %llu sectors exceeds the smallest member (%llu)",
				  (unsigned long long)p->size, (unsigned long long)min);
			return -EINVAL;
		}
		for (unsigned i = 0; i < nmembers; i++)
			if (sizes[i])
				sizes[i] = p->size;
	}
	if (p->level == 0 && present != nmembers) {
		sb_puts(err, "RAID0 cannot be created with missing members");
		return -EINVAL;
	}
	r = raid_geom_init(&g, p->level, p->raid_disks, p->layout, p->chunk, sizes, &why);
	if (r) {
		sb_printf(err, "%s", why);
		return r;
	}
	if (p->level != 0 && present < p->raid_disks - (p->level == 6	? 2
							: p->level == 1 ? p->raid_disks - 1
									: 1)) {
		raid_geom_free(&g);
		sb_puts(err, "too many missing members for this level");
		return -EINVAL;
	}

	memset(&sb, 0, sizeof(sb));
	sb.major = 1;
	sb.minor = 2;
	if (p->uuid)
		memcpy(sb.set_uuid, p->uuid, 16);
	else if (RAND_bytes(sb.set_uuid, 16) != 1) {
		raid_geom_free(&g);
		sb_puts(err, "no randomness for the UUID");
		return -EIO;
	}
	if (p->homehost)
		snprintf(host, sizeof(host), "%s", p->homehost);
	else if (gethostname(host, sizeof(host) - 1))
		strcpy(host, "blkstack");
	host[sizeof(host) - 1] = '\0';
	snprintf(sb.set_name, sizeof(sb.set_name), "%s:%s", host, p->name ? p->name : "0");
	if (strlen(host) + 1 + strlen(p->name ? p->name : "0") > 32)
		snprintf(sb.set_name, sizeof(sb.set_name), "%s", p->name ? p->name : "0");
	sb.ctime = sb.utime = now_s();
	sb.level = p->level;
	sb.layout = g.layout;
	sb.size = p->level == 0 ? 0 : g.dev_sectors;
	sb.chunksize = p->level == 1 ? 0 : (uint32_t)p->chunk;
	sb.raid_disks = p->raid_disks;
	sb.events = 1;
	sb.resync_offset = p->assume_clean || p->level == 0 ? MD_MAX_SECTOR : 0;
	sb.max_dev = MD_MAX_DEVS;
	for (unsigned i = 0; i < sb.max_dev; i++)
		sb.dev_roles[i] = MD_ROLE_SPARE; /* as mdadm: "missing" roles are unused slots */
	for (unsigned i = 0; i < nmembers; i++)
		if (members[i])
			sb.dev_roles[i] = (uint16_t)i;
	for (unsigned i = 0; i < nspares; i++)
		sb.dev_roles[nmembers + i] = MD_ROLE_SPARE;
	if (p->level == 0 && g.nr_zones > 1)
		sb.feature_map |= MD_FEATURE_RAID0_LAYOUT;
	memcpy(uuid_out, sb.set_uuid, 16);
	*array_sectors = g.array_sectors;

	span = p->level == 10 ? g.array_sectors : g.dev_sectors;
	if (p->bitmap && p->level != 0) {
		bchunk = bitmap_chunk_bytes(span);
		if (p->bitmap_chunk) {
			uint64_t want = p->bitmap_chunk * 512;

			if (want < 4096 || want > (1ull << 31) || (want & (want - 1))) {
				raid_geom_free(&g);
				sb_puts(err, "bitmap chunk must be a power of two from 4K to 2G");
				return -EINVAL;
			}
			if (md_bitmap_bits(span, (uint32_t)want) > BITMAP_MAX_BITS) {
				raid_geom_free(&g);
				sb_printf(
				    err,
				    "bitmap chunk too small for this array: %llu bits (at most %u)",
				    (unsigned long long)md_bitmap_bits(span, want),
				    BITMAP_MAX_BITS);
				return -EINVAL;
			}
			bchunk = want;
		}
		if (bchunk > (1ull << 31)) {
			raid_geom_free(&g);
			sb_puts(err, "members too large for an internal bitmap; use --bitmap none");
			return -EINVAL;
		}
		nbits = md_bitmap_bits(span, (uint32_t)bchunk);
		bits = malloc((nbits + 7) / 8 + 1);
		if (!bits) {
			raid_geom_free(&g);
			sb_puts(err, "out of memory");
			return -ENOMEM;
		}
		memset(bits, sb.resync_offset == MD_MAX_SECTOR ? 0 : 0xff, (nbits + 7) / 8 + 1);
		sb.feature_map |= MD_FEATURE_BITMAP_OFFSET;
		sb.bitmap_offset = BITMAP_SECTOR - SB_SECTOR;
	}
	for (unsigned i = 0; i < nmembers + nspares && !r; i++) {
		struct bs_bdev *b = i < nmembers ? members[i] : spares[i - nmembers];
		struct md_sb d = sb;

		if (!b)
			continue;
		d.dev_number = i;
		d.data_offset = data_offset;
		d.data_size = (bs_bdev_size(b) >> 9) - data_offset;
		d.super_offset = SB_SECTOR;
		if (RAND_bytes(d.device_uuid, 16) != 1) {
			r = -EIO;
			break;
		}
		/* Stale metadata of another kind must not confuse later scans. */
		md_sb_erase(b);
		if (bits) {
			struct md_bitmap_sb bsb = {
			    .version = 4,
			    .events = sb.events,
			    .events_cleared = sb.events,
			    .sync_size = span,
			    .chunksize = (uint32_t)bchunk,
			    .daemon_sleep = 5,
			    .sectors_reserved = DEFAULT_DATA_OFF - BITMAP_SECTOR,
			};

			memcpy(bsb.uuid, sb.set_uuid, 16);
			r = md_bitmap_sb_write(b, BITMAP_SECTOR, &bsb);
			if (!r)
				r = md_bitmap_bits_write(b, BITMAP_SECTOR, bits, 0,
							 (nbits + 7) / 8);
		}
		if (!r && (journal || p->checksum_log))
			r = ext_hdr_write(b, sb.set_uuid, &ext);
		if (!r && p->checksum_log)
			r = raid_csum_format(b, ext.csum_offset, g.dev_sectors, sb.set_uuid);
		if (!r)
			r = md_sb_write(b, &d);
		if (!r)
			r = bs_bdev_flush(b);
		if (r)
			sb_printf(err, "cannot write the superblock of %s: %s", b->name,
				  strerror(-r));
	}
	raid_geom_free(&g);
	free(bits);
	return r;
}

int md_array_probe(struct bs_bdev *const *devs, unsigned ndevs, const uint8_t *uuid,
		   uint8_t uuid_out[16], uint64_t *array_sectors, char *name, size_t namelen,
		   struct strbuf *err)
{
	struct md_sb sb, best;
	uint64_t sizes[RAID_MAX_DISKS] = {0};
	bool have = false;
	struct raid_geom g;
	const char *why, *colon;
	int r;

	for (unsigned i = 0; i < ndevs; i++) {
		r = read_sb(devs[i], &sb, &why);
		if (r) {
			sb_printf(err, "%s: %s", devs[i]->name, why);
			return r;
		}
		if (uuid && memcmp(sb.set_uuid, uuid, 16))
			continue;
		if (!have || sb.events > best.events)
			best = sb;
		if (!uuid)
			uuid = best.set_uuid;
		have = true;
	}
	if (!have) {
		sb_puts(err, "no member of that array among the devices given");
		return -ENOENT;
	}
	if (best.raid_disks == 0 || best.raid_disks > RAID_MAX_DISKS) {
		sb_printf(err, "arrays of %u devices are not supported", best.raid_disks);
		return -EINVAL;
	}
	/* RAID0 sizes come from each member; the others use "size". */
	for (unsigned i = 0; i < ndevs; i++)
		if (!read_sb(devs[i], &sb, &why) && !memcmp(sb.set_uuid, best.set_uuid, 16) &&
		    sb.dev_number < best.max_dev &&
		    best.dev_roles[sb.dev_number] < old_disks(&best))
			sizes[best.dev_roles[sb.dev_number]] =
			    best.level == 0 ? sb.data_size : best.size;
	/* During a grow the array keeps its old size until the grow ends. */
	r = raid_geom_init(&g, best.level, old_disks(&best), best.layout, best.chunksize, sizes,
			   &why);
	if (r) {
		sb_printf(err, "%s", why);
		return r;
	}
	*array_sectors = g.array_sectors;
	raid_geom_free(&g);
	memcpy(uuid_out, best.set_uuid, 16);
	colon = strchr(best.set_name, ':');
	snprintf(name, namelen, "%s", colon ? colon + 1 : best.set_name);
	return 0;
}

/* ---- keeping the superblocks current ------------------------------------------------------- */

static struct md_dev *dev_of(struct md_array *m, const struct bs_bdev *b)
{
	for (unsigned i = 0; i < m->ndev; i++)
		if (m->dev[i].bdev == b)
			return &m->dev[i];
	return NULL;
}

static int md_update(struct raid_array *a, void *priv)
{
	struct md_array *m = priv;
	struct raid_member_info info[MAX_DEVS];
	struct raid_status st;
	unsigned n;
	int r = 0, written = 0;

	pthread_mutex_lock(&m->lock);
	raid_array_status(a, &st);
	n = raid_array_members(a, info, MAX_DEVS);
	m->sb.events++;
	m->sb.utime = now_s();
	m->sb.resync_offset = st.resync_offset == UINT64_MAX ? MD_MAX_SECTOR : st.resync_offset;
	if (st.reshaping) {
		/* md's grow: raid_disks is the new count, delta_disks the change. */
		m->reshaping = true;
		m->headroom = st.reshape_headroom;
		m->sb.feature_map |= MD_FEATURE_RESHAPE_ACTIVE | MD_FEATURE_NEW_OFFSET;
		m->sb.reshape_position = st.reshape_pos;
		m->sb.delta_disks = (int32_t)(st.disks - st.reshape_old_disks);
		m->sb.new_level = st.level;
		m->sb.new_layout = st.layout;
		m->sb.new_chunk = (uint32_t)st.chunk;
		m->sb.new_offset = -(int64_t)st.reshape_headroom;
	} else {
		if (m->reshaping) {
			/* The grow ended: the data now starts lower on every device. */
			for (unsigned i = 0; i < m->ndev; i++)
				if (m->dev[i].data_offset >= m->headroom) {
					m->dev[i].data_offset -= m->headroom;
					m->dev[i].data_size += m->headroom;
				}
			m->reshaping = false;
		}
		m->sb.feature_map &= ~(MD_FEATURE_RESHAPE_ACTIVE | MD_FEATURE_NEW_OFFSET |
				       MD_FEATURE_RESHAPE_BACKWARDS);
		m->sb.reshape_position = 0;
		m->sb.delta_disks = 0;
		m->sb.new_level = 0;
		m->sb.new_layout = 0;
		m->sb.new_chunk = 0;
		m->sb.new_offset = 0;
	}
	m->sb.raid_disks = st.disks;
	/* As md writes it: unused slots read "spare", failed members still attached "faulty". */
	for (unsigned i = 0; i < m->sb.max_dev; i++)
		m->sb.dev_roles[i] = MD_ROLE_SPARE;
	for (unsigned i = 0; i < n; i++) {
		struct md_dev *d = info[i].bdev ? dev_of(m, info[i].bdev) : NULL;

		if (!d)
			continue;
		if (info[i].role >= 0 &&
		    (info[i].state == RM_IN_SYNC || info[i].state == RM_REBUILDING))
			m->sb.dev_roles[d->dev_number] = (uint16_t)info[i].role;
		else if (info[i].state == RM_FAULTY)
			m->sb.dev_roles[d->dev_number] = MD_ROLE_FAULTY;
	}
	for (unsigned i = 0; i < n; i++) {
		struct md_dev *d = info[i].bdev ? dev_of(m, info[i].bdev) : NULL;
		struct md_sb s;
		int e;

		if (!d || info[i].state == RM_FAULTY)
			continue;
		s = m->sb;
		s.dev_number = d->dev_number;
		memcpy(s.device_uuid, d->device_uuid, 16);
		s.data_offset = d->data_offset;
		s.data_size = d->data_size;
		s.super_offset = d->super_offset;
		s.feature_map &= ~MD_FEATURE_RECOVERY_OFFSET;
		s.recovery_offset = 0;
		if (info[i].state == RM_REBUILDING) {
			s.feature_map |= MD_FEATURE_RECOVERY_OFFSET;
			s.recovery_offset = info[i].recovery_offset;
		}
		e = md_sb_write(info[i].bdev, &s);
		if (!e)
			e = bs_bdev_flush(info[i].bdev);
		if (e) {
			bs_err("%s: cannot write the superblock: %s", info[i].bdev->name,
			       strerror(-e));
			if (!r)
				r = e;
		} else {
			written++;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return written ? 0 : r;
}

static int md_bitmap_write(struct raid_array *a, void *priv, const uint8_t *bytes, uint64_t first,
			   uint64_t n)
{
	struct md_array *m = priv;
	struct raid_member_info info[MAX_DEVS];
	unsigned cnt;
	int written = 0, r = 0;

	pthread_mutex_lock(&m->lock);
	memcpy(m->bits + first, bytes, n);
	cnt = raid_array_members(a, info, MAX_DEVS);
	for (unsigned i = 0; i < cnt; i++) {
		struct md_dev *d = info[i].bdev ? dev_of(m, info[i].bdev) : NULL;
		int e;

		if (!d || info[i].state == RM_FAULTY)
			continue;
		e = md_bitmap_bits_write(info[i].bdev,
					 d->super_offset + (uint64_t)m->sb.bitmap_offset, m->bits,
					 first, n);
		if (!e)
			e = bs_bdev_flush(info[i].bdev);
		if (e)
			r = e;
		else
			written++;
	}
	pthread_mutex_unlock(&m->lock);
	return written ? 0 : r;
}

static const struct raid_meta_ops md_ops = {
    .update = md_update,
    .bitmap_write = md_bitmap_write,
};

/* ---- assembling ---------------------------------------------------------------------------- */

static bool geometry_differs(const struct md_sb *x, const struct md_sb *y, char *what, size_t len)
{
	if (x->level != y->level)
		snprintf(what, len, "level %d vs %d", x->level, y->level);
	else if (x->raid_disks != y->raid_disks)
		snprintf(what, len, "%u vs %u devices", x->raid_disks, y->raid_disks);
	else if (x->layout != y->layout)
		snprintf(what, len, "layout %u vs %u", x->layout, y->layout);
	else if (x->chunksize != y->chunksize)
		snprintf(what, len, "chunk %u vs %u sectors", x->chunksize, y->chunksize);
	else if (x->size != y->size)
		snprintf(what, len, "size %llu vs %llu sectors", (unsigned long long)x->size,
			 (unsigned long long)y->size);
	else
		return false;
	return true;
}

int md_array_assemble(struct bs_bdev *const *devs, unsigned ndevs, const struct md_assemble_opts *o,
		      struct md_array **out, struct strbuf *err)
{
	struct md_sb *sbs = calloc(ndevs ? ndevs : 1, sizeof(*sbs));
	struct raid_member_spec specs[MAX_DEVS];
	struct raid_config cfg = {0};
	struct md_array *m = NULL;
	const struct md_sb *fresh = NULL;
	uint8_t uuid[16];
	int role_of[MAX_DEVS];
	unsigned nspec = 0, missing = 0;
	bool role_taken[RAID_MAX_DISKS] = {0}, journal = false;
	struct strbuf excluded = STRBUF_INIT; /* why members were left out, for the error */
	uint64_t jsectors = 0;
	bool csum = false;
	char uuidtxt[40];
	int r = -EINVAL;

	if (!sbs)
		return -ENOMEM;
	if (ndevs == 0 || ndevs > MAX_DEVS) {
		sb_puts(err, "no member devices given");
		goto fail;
	}
	for (unsigned i = 0; i < ndevs; i++) {
		const char *why;

		r = read_sb(devs[i], &sbs[i], &why);
		if (r) {
			sb_printf(err, "%s: %s", devs[i]->name, why);
			goto fail;
		}
		if (sbs[i].major != 1) {
			r = -EINVAL;
			sb_printf(err,
				  "%s: metadata 0.90 arrays are read-only (examine works; assembly "
				  "needs 1.x)",
				  devs[i]->name);
			goto fail;
		}
	}
	memcpy(uuid, o->uuid ? o->uuid : sbs[0].set_uuid, 16);
	md_uuid_format(uuid, uuidtxt);
	for (unsigned i = 0; i < ndevs; i++) {
		char other[40];

		if (memcmp(sbs[i].set_uuid, uuid, 16)) {
			md_uuid_format(sbs[i].set_uuid, other);
			r = -EINVAL;
			sb_printf(err, "%s belongs to array %s, not %s", devs[i]->name, other,
				  uuidtxt);
			goto fail;
		}
		if (!fresh || sbs[i].events > fresh->events)
			fresh = &sbs[i];
	}
	for (unsigned i = 0; i < ndevs; i++) {
		char what[96];

		struct md_sb x = sbs[i];

		/* A crash between the superblock writes that start a grow leaves both kinds. */
		if (x.raid_disks == old_disks(fresh) &&
		    !(x.feature_map & MD_FEATURE_RESHAPE_ACTIVE))
			x.raid_disks = fresh->raid_disks;
		if (geometry_differs(&x, fresh, what, sizeof(what))) {
			r = -EINVAL;
			sb_printf(err, "members disagree: %s and the newest member differ (%s)",
				  devs[i]->name, what);
			goto fail;
		}
	}
	if (fresh->feature_map & (MD_FEATURE_RESHAPE_ACTIVE | MD_FEATURE_NEW_OFFSET)) {
		/* Only a grow as blkstack runs it: more members, data moving down, same shape. */
		if (!(fresh->feature_map & MD_FEATURE_RESHAPE_ACTIVE) ||
		    !(fresh->feature_map & MD_FEATURE_NEW_OFFSET) ||
		    (fresh->feature_map & MD_FEATURE_RESHAPE_BACKWARDS) ||
		    fresh->delta_disks <= 0 || fresh->new_level != fresh->level ||
		    fresh->new_layout != fresh->layout || fresh->new_chunk != fresh->chunksize ||
		    fresh->level < 4 || fresh->level > 6 || fresh->new_offset >= 0 ||
		    fresh->chunksize == 0 || (uint64_t)-fresh->new_offset % fresh->chunksize) {
			r = -EINVAL;
			sb_puts(
			    err,
			    "a reshape is in progress on this array; blkstack can continue only "
			    "its own grows (more RAID4/5/6 members, data offset moving down)");
			goto fail;
		}
	}
	if (fresh->feature_map & (MD_FEATURE_JOURNAL | MD_FEATURE_PPL | MD_FEATURE_CLUSTERED)) {
		r = -EINVAL;
		sb_puts(err, "the array uses an md journal device, PPL or clustering, which "
			     "blkstack does not support");
		goto fail;
	}
	if (fresh->raid_disks == 0 || fresh->raid_disks > RAID_MAX_DISKS) {
		r = -EINVAL;
		sb_printf(err, "arrays of %u devices are not supported", fresh->raid_disks);
		goto fail;
	}

	for (unsigned i = 0; i < ndevs; i++) {
		uint16_t role;

		role_of[i] = -2; /* excluded */
		if (sbs[i].dev_number >= fresh->max_dev) {
			r = -EINVAL;
			sb_printf(err, "%s has device number %u beyond the array's table",
				  devs[i]->name, sbs[i].dev_number);
			goto fail;
		}
		role = fresh->dev_roles[sbs[i].dev_number];
		/*
		 * One event behind is a superblock update that a crash cut short on this member
		 * (they are written one after the other); as for mdadm, it still belongs, unless
		 * that very update marked it faulty, which the newest superblock shows.
		 */
		if (sbs[i].events < fresh->events && !o->force &&
		    !(sbs[i].events + 1 == fresh->events && role < fresh->raid_disks)) {
			bs_warn("%s: %s is out of date (events %llu, array at %llu): not included",
				o->name ? o->name : uuidtxt, devs[i]->name,
				(unsigned long long)sbs[i].events,
				(unsigned long long)fresh->events);
			sb_printf(&excluded, "; %s is out of date (events %llu < %llu)",
				  devs[i]->name, (unsigned long long)sbs[i].events,
				  (unsigned long long)fresh->events);
			continue;
		}
		if (role == MD_ROLE_FAULTY) {
			bs_warn("%s: %s was marked faulty: not included",
				o->name ? o->name : uuidtxt, devs[i]->name);
			sb_printf(&excluded, "; %s was marked faulty", devs[i]->name);
			continue;
		}
		if (role == MD_ROLE_JOURNAL) {
			r = -EINVAL;
			sb_printf(err,
				  "%s is an md journal device, which blkstack does not support",
				  devs[i]->name);
			goto fail;
		}
		if (role == MD_ROLE_SPARE) {
			role_of[i] = -1;
			continue;
		}
		if (role >= fresh->raid_disks) {
			r = -EINVAL;
			sb_printf(err, "%s has role %u beyond %u devices", devs[i]->name, role,
				  fresh->raid_disks);
			goto fail;
		}
		if (role_taken[role]) {
			r = -EINVAL;
			sb_printf(err, "two members claim role %u (%s is one of them)", role,
				  devs[i]->name);
			goto fail;
		}
		role_taken[role] = true;
		role_of[i] = role;
	}
	for (unsigned i = 0; i < fresh->raid_disks; i++)
		missing += !role_taken[i];
	if (missing && !o->run) {
		r = -EBUSY;
		sb_printf(err,
			  "%u of %u members present: not starting a degraded array without --run%s",
			  fresh->raid_disks - missing, fresh->raid_disks, sb_str(&excluded));

		goto fail;
	}

	m = calloc(1, sizeof(*m));
	if (!m) {
		r = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&m->lock, NULL);
	m->sb = *fresh;
	for (unsigned i = 0; i < ndevs; i++) {
		struct ext_areas x;
		struct md_dev *d;

		if (role_of[i] == -2)
			continue;
		d = &m->dev[m->ndev++];
		d->bdev = devs[i];
		d->dev_number = sbs[i].dev_number;
		memcpy(d->device_uuid, sbs[i].device_uuid, 16);
		d->data_offset = sbs[i].data_offset;
		d->data_size = sbs[i].data_size;
		if (!(fresh->feature_map & MD_FEATURE_RESHAPE_ACTIVE) &&
		    (sbs[i].feature_map & MD_FEATURE_RESHAPE_ACTIVE) &&
		    (sbs[i].feature_map & MD_FEATURE_NEW_OFFSET) && sbs[i].new_offset < 0) {
			/* A grow finished while this superblock's update was cut short. */
			d->data_offset -= (uint64_t)-sbs[i].new_offset;
			d->data_size += (uint64_t)-sbs[i].new_offset;
		}
		d->super_offset = sbs[i].super_offset;
		if (ext_hdr_read(devs[i], uuid, d->data_offset, &x)) {
			if (x.journal_sectors && (!jsectors || x.journal_sectors == jsectors)) {
				d->journal_offset = x.journal_start;
				jsectors = x.journal_sectors;
				journal = true;
			}
			if (x.csum_sectors) {
				d->csum_offset = x.csum_offset;
				csum = true;
			}
		}
		specs[nspec++] = (struct raid_member_spec){
		    .bdev = devs[i],
		    .role = role_of[i],
		    .data_offset = d->data_offset,
		    .data_sectors = d->data_size,
		    .state = (sbs[i].feature_map & MD_FEATURE_RECOVERY_OFFSET) ? RM_REBUILDING
									       : RM_IN_SYNC,
		    .recovery_offset = (sbs[i].feature_map & MD_FEATURE_RECOVERY_OFFSET)
					   ? sbs[i].recovery_offset
					   : 0,
		    .journal_offset = d->journal_offset,
		    .csum_offset = d->csum_offset,
		};
	}
	m->journal_sectors = jsectors;
	m->csum = csum;

	cfg.level = fresh->level;
	cfg.disks = fresh->raid_disks;
	if (fresh->feature_map & MD_FEATURE_RESHAPE_ACTIVE) {
		cfg.disks = old_disks(fresh);
		cfg.reshape_disks = fresh->raid_disks;
		cfg.reshape_pos = fresh->reshape_position;
		cfg.reshape_headroom = (uint64_t)-fresh->new_offset;
		m->reshaping = true;
		m->headroom = cfg.reshape_headroom;
	}
	cfg.layout = fresh->layout;
	cfg.chunk = fresh->chunksize;
	cfg.dev_sectors = fresh->level == 0 ? 0 : fresh->size;
	cfg.policy = journal ? RAID_POLICY_JOURNAL : RAID_POLICY_RESYNC;
	cfg.journal_sectors = jsectors;
	cfg.csum = csum;
	memcpy(cfg.uuid, uuid, 16);
	cfg.resync_offset =
	    fresh->resync_offset == MD_MAX_SECTOR ? UINT64_MAX : fresh->resync_offset;
	cfg.start_degraded = o->run;
	cfg.meta = &md_ops;
	cfg.meta_priv = m;
	cfg.event = o->event;
	cfg.event_arg = o->event_arg;
	cfg.name = o->name;

	if ((fresh->feature_map & MD_FEATURE_BITMAP_OFFSET) && fresh->level != 0) {
		const char *why;
		struct bs_bdev *src = NULL;
		uint64_t boff = 0;

		for (unsigned i = 0; i < ndevs && !src; i++)
			if (&sbs[i] == fresh) {
				src = devs[i];
				boff =
				    sbs[i].super_offset + (uint64_t)(int64_t)fresh->bitmap_offset;
			}
		r = md_bitmap_sb_read(src, boff, &m->bsb, &why);
		if (r) {
			sb_printf(err, "%s: bitmap: %s", src->name, why);
			goto fail;
		}
		m->nbits = md_bitmap_bits(m->bsb.sync_size, m->bsb.chunksize);
		m->bits = calloc((m->nbits + 7) / 8 + 1, 1);
		if (!m->bits) {
			r = -ENOMEM;
			goto fail;
		}
		r = md_bitmap_bits_read(src, boff, m->bits, m->nbits);
		if (r) {
			sb_printf(err, "%s: cannot read the bitmap", src->name);
			goto fail;
		}
		if (m->bsb.events + 1 < fresh->events && fresh->resync_offset != MD_MAX_SECTOR) {
			/* A bitmap older than the array cannot be trusted to name every dirty
			 * region. */
			memset(m->bits, 0xff, (m->nbits + 7) / 8);
		}
		m->bitmap = true;
		cfg.bitmap_chunk = m->bsb.chunksize / 512;
		cfg.bitmap = m->bits;
		cfg.daemon_sleep = m->bsb.daemon_sleep;
	}
	r = raid_array_create(&cfg, specs, nspec, &m->a, err);
	if (r)
		goto fail;
	/* md bumps the events count whenever it starts an array. */
	md_update(m->a, m);
	free(sbs);
	sb_free(&excluded);
	*out = m;
	return 0;
fail:
	if (m) {
		free(m->bits);
		pthread_mutex_destroy(&m->lock);
		free(m);
	}
	free(sbs);
	sb_free(&excluded);
	return r;
}

void md_array_stop(struct md_array *m)
{
	if (!m)
		return;
	raid_array_destroy(m->a); /* leaves the superblocks clean through md_update */
	free(m->bits);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

struct raid_array *md_array_engine(struct md_array *m)
{
	return m->a;
}

void md_array_uuid(struct md_array *m, uint8_t uuid[16])
{
	memcpy(uuid, m->sb.set_uuid, 16);
}

const struct md_sb *md_array_sb(struct md_array *m)
{
	return &m->sb;
}

int md_array_rebind(struct md_array *m, struct bs_bdev *const *devs, unsigned ndevs,
		    struct strbuf *err)
{
	struct bs_bdev *map[MAX_DEVS] = {0};

	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < m->ndev; i++) {
		for (unsigned k = 0; k < ndevs && !map[i]; k++)
			if (!strcmp(devs[k]->name, m->dev[i].bdev->name))
				map[i] = devs[k];
		if (!map[i]) {
			pthread_mutex_unlock(&m->lock);
			sb_printf(err, "the new table does not name member %s of the running array",
				  m->dev[i].bdev->name);
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < m->ndev; i++) {
		raid_array_rebind(m->a, m->dev[i].bdev, map[i]);
		m->dev[i].bdev = map[i];
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- membership ------------------------------------------------------------------------------ */

int md_array_add(struct md_array *m, struct bs_bdev *b, struct strbuf *err)
{
	struct md_dev *d;
	uint64_t data_offset, size, super_offset, room;
	uint32_t num = 0;
	bool used;
	int r;

	pthread_mutex_lock(&m->lock);
	if (dev_of(m, b)) {
		pthread_mutex_unlock(&m->lock);
		sb_printf(err, "%s is already part of the array", b->name);
		return -EEXIST;
	}
	if (m->ndev == MAX_DEVS) {
		pthread_mutex_unlock(&m->lock);
		sb_puts(err, "too many devices");
		return -ENOSPC;
	}
	/*
	 * The new member's superblock goes where the array's minor version puts it: 1.2 at
	 * 4 KiB, 1.1 at the start, 1.0 near the end (data from sector 0, ending where the
	 * bitmap, which sits before the superblock, begins).
	 */
	size = bs_bdev_size(b) >> 9;
	super_offset = md_sb_offset(m->sb.minor, size);
	if (m->sb.minor == 0) {
		int64_t end = (int64_t)super_offset;

		if (m->bitmap && m->sb.bitmap_offset < 0)
			end += m->sb.bitmap_offset;
		data_offset = 0;
		room = end > 0 ? (uint64_t)end : 0;
	} else {
		data_offset = m->ndev ? m->dev[0].data_offset : DEFAULT_DATA_OFF;
		room = size > data_offset ? size - data_offset : 0;
	}
	if (room < m->sb.size) {
		pthread_mutex_unlock(&m->lock);
		sb_printf(err, "%s is too small: it needs %llu sectors", b->name,
			  (unsigned long long)(size - room + m->sb.size));
		return -ENOSPC;
	}
	do {
		used = false;
		for (unsigned i = 0; i < m->ndev && !used; i++)
			used = m->dev[i].dev_number == num;
		if (used)
			num++;
	} while (used);
	if (num >= m->sb.max_dev) {
		/* Linux writes room for 128 devices; the table can grow to md's 384. */
		if (num >= MD_MAX_DEVS) {
			pthread_mutex_unlock(&m->lock);
			sb_puts(err, "no free device number in the superblock");
			return -ENOSPC;
		}
		for (unsigned i = m->sb.max_dev; i <= num; i++)
			m->sb.dev_roles[i] = MD_ROLE_SPARE;
		m->sb.max_dev = num + 1;
	}
	d = &m->dev[m->ndev];
	memset(d, 0, sizeof(*d));
	d->bdev = b;
	d->dev_number = num;
	d->data_offset = data_offset;
	d->data_size = room;
	d->super_offset = super_offset;
	if (RAND_bytes(d->device_uuid, 16) != 1) {
		pthread_mutex_unlock(&m->lock);
		sb_puts(err, "no randomness");
		return -EIO;
	}
	md_sb_erase(b);
	r = 0;
	if (m->bitmap) {
		uint64_t boff = super_offset + (uint64_t)(int64_t)m->sb.bitmap_offset;

		r = md_bitmap_sb_write(b, boff, &m->bsb);
		if (!r)
			r = md_bitmap_bits_write(b, boff, m->bits, 0, (m->nbits + 7) / 8);
	}
	if (!r && (m->journal_sectors || m->csum)) {
		/* The same areas as the other members have. */
		struct ext_areas x = {0};

		for (unsigned i = 0; i < m->ndev; i++)
			if (ext_hdr_read(m->dev[i].bdev, m->sb.set_uuid, m->dev[i].data_offset, &x))
				break;
		d->journal_offset = x.journal_start;
		d->csum_offset = x.csum_offset;
		r = ext_hdr_write(b, m->sb.set_uuid, &x);
		if (!r && x.journal_sectors) {
			/*
			 * A device that was a member before may still hold records of this array
			 * in its ring; a replay would apply them over everything written since.
			 */
			struct bs_io io = {.op = BS_OP_WRITE_ZEROES,
					   .flags = BS_IO_NOUNMAP | BS_IO_FUA,
					   .off = x.journal_start << 9,
					   .len = x.journal_sectors << 9};

			r = bs_bdev_submit(b, &io);
		}
		if (!r && x.csum_sectors)
			r = raid_csum_format(b, x.csum_offset, m->sb.size, m->sb.set_uuid);
	}
	if (r) {
		pthread_mutex_unlock(&m->lock);
		sb_printf(err, "cannot write metadata to %s: %s", b->name, strerror(-r));
		return r;
	}
	m->ndev++;
	pthread_mutex_unlock(&m->lock);
	r = raid_array_add_spare(m->a, b, d->data_offset, d->data_size, d->journal_offset,
				 d->csum_offset, err);
	if (r) {
		pthread_mutex_lock(&m->lock);
		m->ndev--;
		pthread_mutex_unlock(&m->lock);
	}
	return r;
}

int md_array_remove(struct md_array *m, const char *name, struct bs_bdev **out, struct strbuf *err)
{
	struct bs_bdev *b = NULL;
	int r = raid_array_remove_member(m->a, name, &b, err);

	if (r)
		return r;
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < m->ndev; i++)
		if (m->dev[i].bdev == b) {
			m->dev[i] = m->dev[--m->ndev];
			break;
		}
	pthread_mutex_unlock(&m->lock);
	*out = b;
	return 0;
}

/* ---- grow ------------------------------------------------------------------------------------ */

/* The first sector after every metadata area below the data of device D (1.1/1.2). */
static uint64_t metadata_end(struct md_array *m, struct md_dev *d)
{
	uint64_t end = d->super_offset + 8;
	struct ext_areas x;

	if (m->bitmap) {
		uint64_t bytes = 256 + (m->nbits + 7) / 8;
		int64_t at = (int64_t)d->super_offset + m->sb.bitmap_offset;
		uint64_t e = (uint64_t)at + (bytes + 4095) / 4096 * 8;

		if (at > 0 && e > end)
			end = e;
	}
	if (m->sb.bblog_offset && m->sb.bblog_size) {
		int64_t e = (int64_t)d->super_offset + m->sb.bblog_offset + m->sb.bblog_size;

		if (e > 0 && (uint64_t)e > end)
			end = (uint64_t)e;
	}
	if (ext_hdr_read(d->bdev, m->sb.set_uuid, d->data_offset, &x)) {
		if (MD_EXT_HDR_SECTOR + 8 > end)
			end = MD_EXT_HDR_SECTOR + 8;
		if (x.journal_sectors && x.journal_start + x.journal_sectors > end)
			end = x.journal_start + x.journal_sectors;
		if (x.csum_sectors && x.csum_offset + x.csum_sectors > end)
			end = x.csum_offset + x.csum_sectors;
	}
	return end;
}

int md_array_grow(struct md_array *m, unsigned raid_disks, struct strbuf *err)
{
	uint64_t chunk = m->sb.chunksize, room = UINT64_MAX, headroom;
	const char *tight = NULL;

	pthread_mutex_lock(&m->lock);
	if (m->sb.level < 4 || m->sb.level > 6) {
		pthread_mutex_unlock(&m->lock);
		sb_printf(err, "only RAID4/5/6 arrays can grow onto more members (this is RAID%d)",
			  m->sb.level);
		return -EOPNOTSUPP;
	}
	if (m->sb.minor == 0) {
		pthread_mutex_unlock(&m->lock);
		sb_puts(err, "metadata 1.0 keeps the data at the start of the members: no room to "
			     "move it for a grow");
		return -ENOSPC;
	}
	for (unsigned i = 0; i < m->ndev; i++) {
		struct md_dev *d = &m->dev[i];
		uint64_t end = metadata_end(m, d),
			 free = d->data_offset > end ? d->data_offset - end : 0;

		if (free < room) {
			room = free;
			tight = d->bdev->name;
		}
	}
	pthread_mutex_unlock(&m->lock);
	/* A few chunks: the first copy windows are that many stripes. */
	headroom = room / chunk;
	if (headroom > MD_GROW_HEADROOM_CHUNKS / 4)
		headroom = MD_GROW_HEADROOM_CHUNKS / 4;
	headroom *= chunk;
	if (!headroom) {
		sb_printf(err,
			  "%s has %llu free sectors before its data; a grow without a backup file "
			  "needs at least one chunk (%llu sectors) there",
			  tight ? tight : "a member", (unsigned long long)room,
			  (unsigned long long)chunk);
		return -ENOSPC;
	}
	return raid_array_grow(m->a, raid_disks, headroom, err);
}
