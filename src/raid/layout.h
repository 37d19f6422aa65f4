/*
 * layout.h - where Linux md puts every chunk, for RAID 0, 1, 4, 5, 6 and 10.
 *
 * Pure geometry, no I/O.  Sectors are 512 bytes and relative to each member's data area.
 * Layout numbers are md's (include/uapi/linux/raid/md_p.h and drivers/md/raid5.h,
 * raid0.c, raid10.c): RAID5 left-asymmetric 0, right-asymmetric 1, left-symmetric 2 (mdadm's
 * default), right-symmetric 3, parity-first 4, parity-last 5; RAID6 adds the "-6" variants
 * 16..20 (RAID5 layout with Q on the last member); RAID10 encodes near copies in bits 0-7,
 * far copies in bits 8-15, "offset" in bit 16 and far sets in bit 17; RAID0 multi-zone
 * layouts are original (1) and alternate (2).
 */
#ifndef BS_RAID_LAYOUT_H
#define BS_RAID_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#define RAID_MAX_DISKS 64

enum {
	MD_ALG_LEFT_ASYMMETRIC = 0,
	MD_ALG_RIGHT_ASYMMETRIC = 1,
	MD_ALG_LEFT_SYMMETRIC = 2,
	MD_ALG_RIGHT_SYMMETRIC = 3,
	MD_ALG_PARITY_0 = 4,
	MD_ALG_PARITY_N = 5,
	MD_ALG_ROTATING_ZERO_RESTART = 8, /* DDF layouts: dm-raid's raid6_zr, _nr, _nc */
	MD_ALG_ROTATING_N_RESTART = 9,
	MD_ALG_ROTATING_N_CONTINUE = 10,
	MD_ALG_LEFT_ASYMMETRIC_6 = 16,
	MD_ALG_RIGHT_ASYMMETRIC_6 = 17,
	MD_ALG_LEFT_SYMMETRIC_6 = 18,
	MD_ALG_RIGHT_SYMMETRIC_6 = 19,
	MD_ALG_PARITY_0_6 = 20,
	MD_RAID0_ORIG_LAYOUT = 1,
	MD_RAID0_ALT_MULTIZONE_LAYOUT = 2,
};

struct raid0_zone {
	uint64_t zone_end;  /* array sector where the zone ends */
	uint64_t dev_start; /* member sector where the zone starts */
	unsigned nb_dev;
	unsigned dev[RAID_MAX_DISKS]; /* member indexes, in member order */
};

struct raid_geom {
	int level; /* 0, 1, 4, 5, 6, 10 */
	unsigned disks;
	unsigned layout;
	uint64_t chunk;		/* sectors (RAID1: 0) */
	uint64_t dev_sectors;	/* sectors used on each member */
	uint64_t array_sectors; /* size of the array */
	unsigned data_disks;	/* RAID4/5/6 */
	/* RAID0 */
	unsigned nr_zones;
	struct raid0_zone *zones;
	/* RAID10 */
	unsigned near, far, far_set_size;
	bool far_offset;
	uint64_t stride; /* sectors between far copies */
};

/*
 * Sets up the geometry of an array of DISKS members whose data areas hold MEMBER_SECTORS[i]
 * sectors (NULL entries of a degraded array may be given as 0 only for RAID 1/4/5/6/10, where
 * the smallest present member counts).  Returns 0, or -EINVAL with *why.
 */
int raid_geom_init(struct raid_geom *g, int level, unsigned disks, unsigned layout,
		   uint64_t chunk_sectors, const uint64_t *member_sectors, const char **why);
void raid_geom_free(struct raid_geom *g);

/* md's name of a layout ("left-symmetric", "n2", "f2", "o2", "original"...). */
const char *raid_layout_name(int level, unsigned layout, char *buf, unsigned len);
/* Parses a layout name or number for LEVEL (mdadm spellings); -EINVAL if unknown. */
int raid_layout_parse(int level, const char *name, unsigned *layout);
/* mdadm's default layout for LEVEL. */
unsigned raid_layout_default(int level);

/* ---- RAID4/5/6 ---- */

struct raid_stripe {
	unsigned pd;		       /* member holding P */
	int qd;			       /* member holding Q, or -1 */
	unsigned data[RAID_MAX_DISKS]; /* member holding logical data chunk k */
	/*
	 * RAID6: Q coefficient exponent of logical data chunk k (Q = sum g^qslot[k] * D_k).
	 * md's layouts use 0..data_disks-1 in member order after Q; the DDF layouts use the
	 * member index itself.
	 */
	unsigned qslot[RAID_MAX_DISKS];
};

/* Where the parity and data chunks of stripe STRIPE are (stripe = member chunk index). */
void raid_stripe_layout(const struct raid_geom *g, uint64_t stripe, struct raid_stripe *s);

/* ---- RAID0 / RAID10 / all levels: array sector -> member locations ---- */

struct raid_loc {
	unsigned member;
	uint64_t sector; /* in the member's data area */
};

/*
 * Maps array sector A.  Returns the number of copies filled into LOC (1 for RAID0/4/5/6, the
 * copy count for RAID1/10) and sets *run to the number of sectors from A that stay contiguous
 * in all copies (up to the chunk end).  For RAID4/5/6 the location is the data chunk's.
 */
unsigned raid_map(const struct raid_geom *g, uint64_t a, struct raid_loc *loc, uint64_t *run);

#endif
