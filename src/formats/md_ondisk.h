/*
 * md_ondisk.h - the on-disk layout of Linux md metadata, for formats/md.c only.
 *
 * Names follow the specification they come from:
 *   - Linux include/uapi/linux/raid/md_p.h: the 0.90 superblock (struct mdp_superblock_s,
 *     host-endian 32-bit words; only little-endian hosts are supported), the 1.x superblock
 *     (struct mdp_superblock_1, little-endian), disk and array state bits;
 *   - Linux drivers/md/md-bitmap.h: the write-intent bitmap superblock (bitmap_super_t).
 * The feature_map bits and the device role values are public and live in formats/md.h.
 */
#ifndef BS_FORMATS_MD_ONDISK_H
#define BS_FORMATS_MD_ONDISK_H

#define MD_SB_MAGIC 0xa92b4efcu

/* ---- 0.90 (md_p.h) -------------------------------------------------------------------- */

#define MD_RESERVED_BYTES   (64 * 1024)
#define MD_RESERVED_SECTORS (MD_RESERVED_BYTES / 512)
/* Where the 0.90 superblock of a device of X sectors starts. */
#define MD_NEW_SIZE_SECTORS(x) (((x) & ~(uint64_t)(MD_RESERVED_SECTORS - 1)) - MD_RESERVED_SECTORS)

#define MD_SB_BYTES		     4096
#define MD_SB_WORDS		     (MD_SB_BYTES / 4)
#define MD_SB_DISKS		     27
#define MD_SB_DESCRIPTOR_WORDS	     32
#define MD_SB_DISKS_OFFSET	     128 /* word index of disks[0] */
#define MD_SB_DESCRIPTOR_OFFSET	     992 /* word index of this_disk */
#define MD_SB_GENERIC_CONSTANT_WORDS 32

/* Word indexes of the fields of mdp_superblock_s (little-endian ordering of events). */
enum {
	SB0_md_magic = 0,
	SB0_major_version = 1,
	SB0_minor_version = 2,
	SB0_patch_version = 3,
	SB0_gvalid_words = 4,
	SB0_set_uuid0 = 5,
	SB0_ctime = 6,
	SB0_level = 7,
	SB0_size = 8, /* KiB */
	SB0_nr_disks = 9,
	SB0_raid_disks = 10,
	SB0_md_minor = 11,
	SB0_not_persistent = 12,
	SB0_set_uuid1 = 13,
	SB0_set_uuid2 = 14,
	SB0_set_uuid3 = 15,
	SB0_utime = 32,
	SB0_state = 33,
	SB0_active_disks = 34,
	SB0_working_disks = 35,
	SB0_failed_disks = 36,
	SB0_spare_disks = 37,
	SB0_sb_csum = 38,
	SB0_events_lo = 39,
	SB0_events_hi = 40,
	SB0_cp_events_lo = 41,
	SB0_cp_events_hi = 42,
	SB0_recovery_cp = 43,
	SB0_reshape_position = 44, /* 64 bits, minor_version 91 */
	SB0_new_level = 46,
	SB0_delta_disks = 47,
	SB0_new_layout = 48,
	SB0_new_chunk = 49,
	SB0_layout = 64,
	SB0_chunk_size = 65, /* bytes */
};

/* mdp_disk_t: word indexes inside one descriptor */
enum {
	MD_DISK_number = 0,
	MD_DISK_major = 1,
	MD_DISK_minor = 2,
	MD_DISK_raid_disk = 3,
	MD_DISK_state = 4,
};

/* mdp_disk_t.state bits */
#define MD_DISK_FAULTY	    0
#define MD_DISK_ACTIVE	    1
#define MD_DISK_SYNC	    2
#define MD_DISK_REMOVED	    3
#define MD_DISK_WRITEMOSTLY 9
#define MD_DISK_FAILFAST    10

/* mdp_superblock_s.state bits */
#define MD_SB_CLEAN	     0
#define MD_SB_ERRORS	     1
#define MD_SB_CLUSTERED	     5
#define MD_SB_BITMAP_PRESENT 8

/* ---- 1.x (md_p.h, struct mdp_superblock_1): byte offsets ---------------------------------- */

enum {
	SB1_magic = 0,
	SB1_major_version = 4,
	SB1_feature_map = 8,
	SB1_pad0 = 12,
	SB1_set_uuid = 16,
	SB1_set_name = 32,
	SB1_ctime = 64,
	SB1_level = 72,
	SB1_layout = 76,
	SB1_size = 80,
	SB1_chunksize = 88,
	SB1_raid_disks = 92,
	SB1_bitmap_offset = 96, /* union with ppl.offset (le16) and ppl.size (le16) */
	SB1_new_level = 100,
	SB1_reshape_position = 104,
	SB1_delta_disks = 112,
	SB1_new_layout = 116,
	SB1_new_chunk = 120,
	SB1_new_offset = 124,
	SB1_data_offset = 128,
	SB1_data_size = 136,
	SB1_super_offset = 144,
	SB1_recovery_offset = 152, /* union with journal_tail */
	SB1_dev_number = 160,
	SB1_cnt_corrected_read = 164,
	SB1_device_uuid = 168,
	SB1_devflags = 184,
	SB1_bblog_shift = 185,
	SB1_bblog_size = 186,
	SB1_bblog_offset = 188,
	SB1_utime = 192,
	SB1_events = 200,
	SB1_resync_offset = 208,
	SB1_sb_csum = 216,
	SB1_max_dev = 220,
	SB1_pad3 = 224, /* 32 bytes */
	SB1_dev_roles = 256,
};

#define SB1_FIXED_BYTES	 256	/* sizeof(struct mdp_superblock_1) */
#define SB1_READ_BYTES	 4096	/* md reads 4 KiB at the superblock's offset */
#define MD_DISK_ROLE_MAX 0xff00 /* roles above this are special (md.h: MD_ROLE_*) */

/* devflags */
#define WriteMostly1 1
#define FailFast1    2

/* The ctime and utime fields: low 40 bits seconds, high 24 bits microseconds. */
#define SB1_TIME_SECONDS_MASK 0xffffffffffull

/* ---- the write-intent bitmap (md-bitmap.h, bitmap_super_t): byte offsets ----------------- */

enum {
	BMS_magic = 0,
	BMS_version = 4,
	BMS_uuid = 8,
	BMS_events = 24,
	BMS_events_cleared = 32,
	BMS_sync_size = 40,
	BMS_state = 48,
	BMS_chunksize = 52,
	BMS_daemon_sleep = 56,
	BMS_write_behind = 60,
	BMS_sectors_reserved = 64,
	BMS_nodes = 68,
	BMS_cluster_name = 72,
};

#define BITMAP_SUPER_BYTES	256
#define BITMAP_MAJOR_LO		3
#define BITMAP_MAJOR_HI		4
#define BITMAP_MAJOR_CLUSTERED	5
#define BITMAP_MAJOR_HOSTENDIAN 3
/* bitmap_super_t.state bits */
#define BITMAP_STALE	   1
#define BITMAP_WRITE_ERROR 2
#define BITMAP_HOSTENDIAN  15
/* The most write-behind requests a bitmap counter can track (md-bitmap.h COUNTER_MAX). */
#define BITMAP_COUNTER_MAX ((1 << 14) - 1)

#endif
