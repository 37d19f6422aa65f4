/*
 * layout.c - see layout.h.  The arithmetic mirrors md's raid0.c (create_strip_zones,
 * map_sector), raid5.c (raid5_compute_sector, set_syndrome_sources) and raid10.c
 * (setup_geo, calc_sectors, raid10_find_phys), re-derived, not copied.
 */
#include "raid/layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h"

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static bool raid5_layout_ok(unsigned l)
{
	return l <= MD_ALG_PARITY_N;
}

static bool raid6_layout_ok(unsigned l)
{
	return l <= MD_ALG_PARITY_N ||
	       (l >= MD_ALG_ROTATING_ZERO_RESTART && l <= MD_ALG_ROTATING_N_CONTINUE) ||
	       (l >= MD_ALG_LEFT_ASYMMETRIC_6 && l <= MD_ALG_PARITY_0_6);
}

static bool ddf_layout(const struct raid_geom *g)
{
	return g->level == 6 && g->layout >= MD_ALG_ROTATING_ZERO_RESTART &&
	       g->layout <= MD_ALG_ROTATING_N_CONTINUE;
}

static int raid0_zones(struct raid_geom *g, const uint64_t *sz, const char **why)
{
	uint64_t prev = 0, end = 0;

	g->zones = calloc(g->disks + 1, sizeof(*g->zones)); /* + the empty one that ends the scan */
	if (!g->zones) {
		*why = "out of memory";
		return -ENOMEM;
	}
	g->nr_zones = 0;
	for (;;) {
		struct raid0_zone *z = &g->zones[g->nr_zones];
		uint64_t smallest = UINT64_MAX;

		z->nb_dev = 0;
		for (unsigned j = 0; j < g->disks; j++) {
			uint64_t s = sz[j] / g->chunk * g->chunk;

			if (s <= prev)
				continue;
			z->dev[z->nb_dev++] = j;
			if (s < smallest)
				smallest = s;
		}
		if (z->nb_dev == 0)
			break;
		z->dev_start = prev;
		end += (smallest - prev) * z->nb_dev;
		z->zone_end = end;
		prev = smallest;
		g->nr_zones++;
	}
	if (g->nr_zones == 0) {
		*why = "members are smaller than one chunk";
		return -EINVAL;
	}
	if (g->nr_zones > 1 && g->layout != MD_RAID0_ORIG_LAYOUT &&
	    g->layout != MD_RAID0_ALT_MULTIZONE_LAYOUT) {
		*why = "RAID0 with members of different sizes needs layout original or alternate";
		return -EINVAL;
	}
	g->array_sectors = end;
	g->dev_sectors = prev;
	return 0;
}

static int raid10_setup(struct raid_geom *g, uint64_t size, const char **why)
{
	uint64_t chunks, a, d;
	unsigned copies;

	if (g->layout >> 18) {
		*why = "unknown RAID10 layout bits";
		return -EINVAL;
	}
	g->near = g->layout & 255;
	g->far = (g->layout >> 8) & 255;
	g->far_offset = g->layout & (1u << 16);
	if (!g->near || !g->far) {
		*why = "RAID10 layout needs at least one near and one far copy";
		return -EINVAL;
	}
	copies = g->near * g->far;
	if (copies > g->disks || copies < 2) {
		*why = "RAID10 needs more members than copies, and at least 2 copies";
		return -EINVAL;
	}
	g->far_set_size = (g->layout & (1u << 17)) ? g->disks / g->far : g->disks;
	if ((g->layout & (1u << 17)) && g->far_set_size < g->far) {
		*why = "RAID10 far sets smaller than the far copy count";
		return -EINVAL;
	}
	if (!pow2(g->chunk) || g->chunk < 8) {
		*why = "RAID10 chunk must be a power of two of at least 4 KiB";
		return -EINVAL;
	}
	chunks = size / g->chunk;
	a = chunks / g->far * g->disks / g->near;   /* array chunks */
	d = (a * copies + g->disks - 1) / g->disks; /* chunks used per member */
	g->dev_sectors = d * g->chunk;
	g->stride = g->far_offset ? g->chunk : d / g->far * g->chunk;
	g->array_sectors = (d / g->far * g->disks / g->near) * g->chunk;
	if (g->array_sectors == 0) {
		*why = "members too small for the RAID10 layout";
		return -EINVAL;
	}
	return 0;
}

int raid_geom_init(struct raid_geom *g, int level, unsigned disks, unsigned layout, uint64_t chunk,
		   const uint64_t *sz, const char **why)
{
	uint64_t min = UINT64_MAX;

	memset(g, 0, sizeof(*g));
	g->level = level;
	g->disks = disks;
	g->layout = layout;
	g->chunk = chunk;
	if (disks == 0 || disks > RAID_MAX_DISKS) {
		*why = "invalid number of members";
		return -EINVAL;
	}
	for (unsigned i = 0; i < disks; i++)
		if (sz[i] && sz[i] < min)
			min = sz[i];
	if (min == UINT64_MAX) {
		*why = "no member has a size";
		return -EINVAL;
	}
	switch (level) {
	case 0:
		if (!chunk || chunk % 8) {
			*why = "RAID0 chunk must be a multiple of 4 KiB";
			return -EINVAL;
		}
		for (unsigned i = 0; i < disks; i++)
			if (!sz[i]) {
				*why = "RAID0 cannot run without all members";
				return -EINVAL;
			}
		return raid0_zones(g, sz, why);
	case 1:
		if (disks < 1) {
			*why = "RAID1 needs a member";
			return -EINVAL;
		}
		g->chunk = 0;
		g->dev_sectors = min;
		g->array_sectors = min;
		return 0;
	case 4:
	case 5:
	case 6:
		if (disks < (level == 6 ? 4u : 2u)) {
			*why = level == 6 ? "RAID6 needs at least 4 members"
					  : "RAID4/5 needs at least 2 members";
			return -EINVAL;
		}
		if (!pow2(chunk) || chunk < 8) {
			*why = "chunk must be a power of two of at least 4 KiB";
			return -EINVAL;
		}
		if (level == 4)
			g->layout = MD_ALG_PARITY_N;
		else if (level == 5 && !raid5_layout_ok(layout)) {
			*why = "unknown RAID5 layout";
			return -EINVAL;
		} else if (level == 6 && !raid6_layout_ok(layout)) {
			*why = "unknown or unsupported RAID6 layout";
			return -EINVAL;
		}
		g->data_disks = disks - (level == 6 ? 2 : 1);
		g->dev_sectors = min / chunk * chunk;
		g->array_sectors = g->dev_sectors * g->data_disks;
		if (!g->array_sectors) {
			*why = "members are smaller than one chunk";
			return -EINVAL;
		}
		return 0;
	case 10:
		return raid10_setup(g, min, why);
	}
	*why = "unsupported RAID level";
	return -EINVAL;
}

void raid_geom_free(struct raid_geom *g)
{
	free(g->zones);
	g->zones = NULL;
}

/* ---- names ----------------------------------------------------------------------------- */

static const char *const r5_names[] = {
    "left-asymmetric", "right-asymmetric", "left-symmetric",
    "right-symmetric", "parity-first",	   "parity-last",
};

const char *raid_layout_name(int level, unsigned layout, char *buf, unsigned len)
{
	switch (level) {
	case 0:
		return layout == MD_RAID0_ALT_MULTIZONE_LAYOUT ? "alternate"
		       : layout == MD_RAID0_ORIG_LAYOUT	       ? "original"
							       : "-unknown-";
	case 5:
	case 6:
		if (layout <= MD_ALG_PARITY_N)
			return r5_names[layout];
		if (level == 6 && layout == MD_ALG_ROTATING_ZERO_RESTART)
			return "ddf-zero-restart";
		if (level == 6 && layout == MD_ALG_ROTATING_N_RESTART)
			return "ddf-N-restart";
		if (level == 6 && layout == MD_ALG_ROTATING_N_CONTINUE)
			return "ddf-N-continue";
		if (level == 6 && layout >= MD_ALG_LEFT_ASYMMETRIC_6 &&
		    layout <= MD_ALG_PARITY_0_6) {
			snprintf(buf, len, "%s-6", r5_names[layout - MD_ALG_LEFT_ASYMMETRIC_6]);
			return buf;
		}
		return "-unknown-";
	case 10: {
		unsigned n = layout & 255, f = (layout >> 8) & 255;

		if (f <= 1)
			snprintf(buf, len, "near=%u", n);
		else if (n <= 1)
			snprintf(buf, len, "%s=%u", (layout & (1u << 16)) ? "offset" : "far", f);
		else
			snprintf(buf, len, "near=%u, %s=%u", n,
				 (layout & (1u << 16)) ? "offset" : "far", f);
		return buf;
	}
	}
	return "";
}

unsigned raid_layout_default(int level)
{
	switch (level) {
	case 5:
	case 6:
		return MD_ALG_LEFT_SYMMETRIC;
	case 4:
		return MD_ALG_PARITY_N;
	case 10:
		return 0x102; /* n2 */
	case 0:
		return MD_RAID0_ORIG_LAYOUT;
	}
	return 0;
}

int raid_layout_parse(int level, const char *name, unsigned *layout)
{
	uint32_t v;

	if (level == 5 || level == 6) {
		static const struct {
			const char *n;
			unsigned v;
		} alias[] = {{"la", 0}, {"ra", 1}, {"ls", 2}, {"rs", 3}, {"default", 2}};

		for (unsigned i = 0; i < 6; i++) {
			char six[32];

			if (!strcmp(name, r5_names[i])) {
				*layout = i;
				return 0;
			}
			snprintf(six, sizeof(six), "%s-6", r5_names[i]);
			if (level == 6 && i < 5 && !strcmp(name, six)) {
				*layout = MD_ALG_LEFT_ASYMMETRIC_6 + i;
				return 0;
			}
		}
		for (unsigned i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
			if (!strcmp(name, alias[i].n)) {
				*layout = alias[i].v;
				return 0;
			}
		if (!bs_parse_u32(name, &v) &&
		    (level == 5 ? raid5_layout_ok(v) : raid6_layout_ok(v))) {
			*layout = v;
			return 0;
		}
		return -EINVAL;
	}
	if (level == 10) {
		char kind = name[0];
		uint32_t n;

		if ((kind == 'n' || kind == 'f' || kind == 'o') && !bs_parse_u32(name + 1, &n) &&
		    n >= 1 && n <= 255) {
			*layout = kind == 'n'	? 0x100 | n
				  : kind == 'f' ? (n << 8) | 1
						: (1u << 16) | (n << 8) | 1;
			return 0;
		}
		if (!strcmp(name, "default")) {
			*layout = 0x102;
			return 0;
		}
		return -EINVAL;
	}
	if (level == 0) {
		if (!strcmp(name, "original") || !strcmp(name, "default"))
			*layout = MD_RAID0_ORIG_LAYOUT;
		else if (!strcmp(name, "alternate"))
			*layout = MD_RAID0_ALT_MULTIZONE_LAYOUT;
		else
			return -EINVAL;
		return 0;
	}
	if (level == 4 && (!strcmp(name, "parity-last") || !strcmp(name, "default"))) {
		*layout = MD_ALG_PARITY_N;
		return 0;
	}
	return -EINVAL;
}

/* ---- parity RAID ------------------------------------------------------------------------- */

void raid_stripe_layout(const struct raid_geom *g, uint64_t stripe, struct raid_stripe *s)
{
	const unsigned n = g->disks, dd = g->data_disks;

	s->qd = -1;
	for (unsigned k = 0; k < dd; k++) {
		unsigned d = k;
		unsigned pd = 0;
		int qd = -1;

		if (g->level == 4) {
			pd = dd;
		} else if (g->level == 5) {
			switch (g->layout) {
			case MD_ALG_LEFT_ASYMMETRIC:
				pd = dd - (unsigned)(stripe % n);
				if (d >= pd)
					d++;
				break;
			case MD_ALG_RIGHT_ASYMMETRIC:
				pd = (unsigned)(stripe % n);
				if (d >= pd)
					d++;
				break;
			case MD_ALG_LEFT_SYMMETRIC:
				pd = dd - (unsigned)(stripe % n);
				d = (pd + 1 + d) % n;
				break;
			case MD_ALG_RIGHT_SYMMETRIC:
				pd = (unsigned)(stripe % n);
				d = (pd + 1 + d) % n;
				break;
			case MD_ALG_PARITY_0:
				pd = 0;
				d++;
				break;
			default: /* MD_ALG_PARITY_N */
				pd = dd;
				break;
			}
		} else { /* RAID6 */
			switch (g->layout) {
			case MD_ALG_LEFT_ASYMMETRIC:
			case MD_ALG_RIGHT_ASYMMETRIC:
			case MD_ALG_ROTATING_ZERO_RESTART:
			case MD_ALG_ROTATING_N_RESTART:
				pd = g->layout == MD_ALG_LEFT_ASYMMETRIC
					 ? n - 1 - (unsigned)(stripe % n)
				     : g->layout == MD_ALG_ROTATING_N_RESTART
					 ? n - 1 - (unsigned)((stripe + 1) % n)
					 : (unsigned)(stripe % n);
				qd = (int)pd + 1;
				if (pd == n - 1) {
					d++; /* Q D D D P */
					qd = 0;
				} else if (d >= pd) {
					d += 2; /* D D P Q D */
				}
				break;
			case MD_ALG_LEFT_SYMMETRIC:
			case MD_ALG_RIGHT_SYMMETRIC:
				pd = g->layout == MD_ALG_LEFT_SYMMETRIC
					 ? n - 1 - (unsigned)(stripe % n)
					 : (unsigned)(stripe % n);
				qd = (int)((pd + 1) % n);
				d = (pd + 2 + d) % n;
				break;
			case MD_ALG_ROTATING_N_CONTINUE:
				/* left-symmetric with Q before P */
				pd = n - 1 - (unsigned)(stripe % n);
				qd = (int)((pd + n - 1) % n);
				d = (pd + 1 + d) % n;
				break;
			case MD_ALG_PARITY_0:
				pd = 0;
				qd = 1;
				d += 2;
				break;
			case MD_ALG_PARITY_N:
				pd = dd;
				qd = (int)dd + 1;
				break;
			case MD_ALG_LEFT_ASYMMETRIC_6:
			case MD_ALG_RIGHT_ASYMMETRIC_6:
				pd = g->layout == MD_ALG_LEFT_ASYMMETRIC_6
					 ? dd - (unsigned)(stripe % (n - 1))
					 : (unsigned)(stripe % (n - 1));
				if (d >= pd)
					d++;
				qd = (int)n - 1;
				break;
			case MD_ALG_LEFT_SYMMETRIC_6:
			case MD_ALG_RIGHT_SYMMETRIC_6:
				pd = g->layout == MD_ALG_LEFT_SYMMETRIC_6
					 ? dd - (unsigned)(stripe % (n - 1))
					 : (unsigned)(stripe % (n - 1));
				d = (pd + 1 + d) % (n - 1);
				qd = (int)n - 1;
				break;
			default: /* MD_ALG_PARITY_0_6 */
				pd = 0;
				d++;
				qd = (int)n - 1;
				break;
			}
		}
		s->pd = pd;
		s->qd = qd;
		s->data[k] = d;
	}
	if (s->qd >= 0 && ddf_layout(g)) {
		/* DDF: the coefficient of a chunk is its member's index. */
		for (unsigned k = 0; k < dd; k++)
			s->qslot[k] = s->data[k];
	} else if (s->qd >= 0) {
		/* Q's coefficients follow the members in order starting after Q. */
		unsigned slot = 0;
		int slot_of[RAID_MAX_DISKS];

		for (unsigned i = 0, m = ((unsigned)s->qd + 1) % n; i < n; i++, m = (m + 1) % n)
			slot_of[m] = (m == s->pd || (int)m == s->qd) ? -1 : (int)slot++;
		for (unsigned k = 0; k < dd; k++)
			s->qslot[k] = (unsigned)slot_of[s->data[k]];
	}
}

/* ---- mapping ------------------------------------------------------------------------------- */

static unsigned map_raid0(const struct raid_geom *g, uint64_t a, struct raid_loc *loc,
			  uint64_t *run)
{
	const struct raid0_zone *z = g->zones;
	uint64_t zstart = 0, in_zone, chunk, off, dchunk;
	unsigned idx;

	while (a >= z->zone_end) {
		zstart = z->zone_end;
		z++;
	}
	in_zone = a - zstart;
	off = a % g->chunk;
	chunk = in_zone / g->chunk;
	dchunk = chunk / z->nb_dev;
	/* md chooses the member from the array sector (original) or the zone sector (alternate). */
	if (g->layout == MD_RAID0_ALT_MULTIZONE_LAYOUT || g->nr_zones == 1)
		idx = (unsigned)(chunk % z->nb_dev);
	else
		idx = (unsigned)((a / g->chunk) % z->nb_dev);
	loc[0].member = z->dev[idx];
	loc[0].sector = z->dev_start + dchunk * g->chunk + off;
	*run = g->chunk - off;
	return 1;
}

static unsigned map_raid10(const struct raid_geom *g, uint64_t a, struct raid_loc *loc,
			   uint64_t *run)
{
	const unsigned n = g->disks;
	const unsigned last_set_start = (n / g->far_set_size - 1) * g->far_set_size;
	const unsigned last_set_size = g->far_set_size + n % g->far_set_size;
	uint64_t chunk = a / g->chunk, sector = a % g->chunk, stripe;
	unsigned dev, slot = 0;

	*run = g->chunk - sector;
	chunk *= g->near;
	stripe = chunk / n;
	dev = (unsigned)(chunk % n);
	if (g->far_offset)
		stripe *= g->far;
	sector += stripe * g->chunk;
	for (unsigned c = 0; c < g->near; c++) {
		unsigned d = dev;
		uint64_t s = sector;

		loc[slot].member = d;
		loc[slot++].sector = s;
		for (unsigned f = 1; f < g->far; f++) {
			unsigned set = d / g->far_set_size;

			d += g->near;
			if ((n % g->far_set_size) && d > last_set_start) {
				d -= last_set_start;
				d %= last_set_size;
				d += last_set_start;
			} else {
				d %= g->far_set_size;
				d += g->far_set_size * set;
			}
			s += g->stride;
			loc[slot].member = d;
			loc[slot++].sector = s;
		}
		dev++;
		if (dev >= n) {
			dev = 0;
			sector += g->chunk;
		}
	}
	return slot;
}

unsigned raid_map(const struct raid_geom *g, uint64_t a, struct raid_loc *loc, uint64_t *run)
{
	switch (g->level) {
	case 0:
		return map_raid0(g, a, loc, run);
	case 1:
		for (unsigned i = 0; i < g->disks; i++) {
			loc[i].member = i;
			loc[i].sector = a;
		}
		*run = g->array_sectors - a;
		return g->disks;
	case 10:
		return map_raid10(g, a, loc, run);
	default: {
		uint64_t c = a / g->chunk, off = a % g->chunk, stripe = c / g->data_disks;
		struct raid_stripe s;

		raid_stripe_layout(g, stripe, &s);
		loc[0].member = s.data[c % g->data_disks];
		loc[0].sector = stripe * g->chunk + off;
		*run = g->chunk - off;
		return 1;
	}
	}
}
