/*
 * parity.c - see parity.h.
 */
#include "raid/parity.h"

#include <errno.h>
#include <pthread.h>
#include <isa-l.h>
#include <stdbool.h>
#include <string.h>

#include "raid/layout.h"

static bool aligned32(const void *p)
{
	return ((uintptr_t)p & 31) == 0;
}

void raid_xor_into(void *dst, const void *src, size_t len)
{
	uint64_t *d = dst;
	const uint64_t *s = src;

	if (((uintptr_t)dst | (uintptr_t)src | len) & 7) {
		uint8_t *db = dst;
		const uint8_t *sb = src;

		for (size_t i = 0; i < len; i++)
			db[i] ^= sb[i];
		return;
	}
	for (size_t i = 0; i < len / 8; i++)
		d[i] ^= s[i];
}

void raid_xor(unsigned n, const void *const *src, void *dst, size_t len)
{
	void *v[RAID_MAX_DISKS + 1];
	bool fast = aligned32(dst) && len % 32 == 0 && n >= 1;

	if (n == 1) {
		memcpy(dst, src[0], len);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		v[i] = (void *)src[i];
		fast = fast && aligned32(src[i]);
	}
	v[n] = dst;
	if (fast)
		xor_gen((int)n + 1, (int)len, v);
	else
		xor_gen_base((int)n + 1, (int)len, v);
}

static uint8_t exp_table[255];
static pthread_once_t exp_once = PTHREAD_ONCE_INIT;

static void exp_init(void)
{
	uint8_t r = 1;

	for (unsigned k = 0; k < 255; k++) {
		exp_table[k] = r;
		r = gf_mul(r, 2);
	}
}

uint8_t raid_gf_exp2(unsigned i)
{
	pthread_once(&exp_once, exp_init);
	return exp_table[i % 255];
}

void raid_gf_mul_add(uint8_t c, const void *src, void *dst, size_t len)
{
	unsigned char tbl[32];

	if (c == 0)
		return;
	if (c == 1) {
		raid_xor_into(dst, src, len);
		return;
	}
	ec_init_tables(1, 1, &c, tbl);
	if (aligned32(src) && aligned32(dst) && len % 32 == 0)
		gf_vect_mad((int)len, 1, 0, tbl, (unsigned char *)src, dst);
	else
		gf_vect_mad_base((int)len, 1, 0, tbl, (unsigned char *)src, dst);
}

void raid_pq(unsigned n, const void *const *data, void *p, void *q, size_t len)
{
	void *v[RAID_MAX_DISKS + 2];
	bool fast = aligned32(p) && aligned32(q) && len % 32 == 0 && n >= 2;

	for (unsigned i = 0; i < n; i++) {
		v[i] = (void *)data[i];
		fast = fast && aligned32(data[i]);
	}
	v[n] = p;
	v[n + 1] = q;
	if (fast) {
		pq_gen((int)n + 2, (int)len, v);
		return;
	}
	/* Generic path (single data chunk or unaligned buffers). */
	memset(p, 0, len);
	memset(q, 0, len);
	for (unsigned i = 0; i < n; i++) {
		raid_xor_into(p, data[i], len);
		raid_gf_mul_add(raid_gf_exp2(i), data[i], q, len);
	}
}

void raid_pq_exp(unsigned n, const unsigned *exp, const void *const *data, void *p, void *q,
		 size_t len)
{
	const void *slot[RAID_MAX_DISKS];
	bool perm = n <= RAID_MAX_DISKS;

	for (unsigned i = 0; i < n; i++)
		slot[i] = NULL;
	for (unsigned i = 0; i < n && perm; i++) {
		unsigned e = exp ? exp[i] : i;

		if (e >= n || slot[e])
			perm = false;
		else
			slot[e] = data[i];
	}
	if (perm) {
		raid_pq(n, slot, p, q, len);
		return;
	}
	memset(p, 0, len);
	memset(q, 0, len);
	for (unsigned i = 0; i < n; i++) {
		raid_xor_into(p, data[i], len);
		raid_gf_mul_add(raid_gf_exp2(exp[i]), data[i], q, len);
	}
}

#define EXP(i) raid_gf_exp2(exp ? exp[i] : (i))

int raid6_recover(unsigned n, const unsigned *exp, const void *const *data, const void *p,
		  const void *q, void *const *out_data, void *out_p, void *out_q, size_t len)
{
	int miss[2], nmiss = 0;

	for (unsigned i = 0; i < n; i++)
		if (!data[i]) {
			if (nmiss == 2)
				return -EINVAL;
			miss[nmiss++] = (int)i;
		}
	if (nmiss + !p + !q > 2)
		return -EINVAL;

	if (nmiss == 0) {
		/* Only parity is missing: recompute it. */
		void *pp = p ? NULL : out_p, *qq = q ? NULL : out_q;

		if (pp && qq) {
			raid_pq_exp(n, exp, data, pp, qq, len);
		} else if (pp) {
			raid_xor(n, data, pp, len);
		} else if (qq) {
			memset(qq, 0, len);
			for (unsigned i = 0; i < n; i++)
				raid_gf_mul_add(EXP(i), data[i], qq, len);
		}
		return 0;
	}
	if (nmiss == 1) {
		void *dx = out_data[miss[0]];
		unsigned x = (unsigned)miss[0];

		if (p) {
			/* Dx = P ^ (other data) */
			memcpy(dx, p, len);
			for (unsigned i = 0; i < n; i++)
				if (i != x)
					raid_xor_into(dx, data[i], len);
		} else {
			/* Dx = (Q ^ sum of the others' contributions) / g^x */
			memcpy(dx, q, len);
			for (unsigned i = 0; i < n; i++)
				if (i != x)
					raid_gf_mul_add(EXP(i), data[i], dx, len);
			/* dx now holds g^x * Dx: scale by the inverse in place via a copy. */
			{
				uint8_t inv = gf_inv(EXP(x));
				unsigned char tbl[32];
				unsigned char *src = dx;

				ec_init_tables(1, 1, &inv, tbl);
				/* ec_encode_data_base may run in place for one source and one row.
				 */
				ec_encode_data_base((int)len, 1, 1, tbl, &src, &src);
			}
		}
		if (!p && out_p) {
			const void *all[RAID_MAX_DISKS];

			for (unsigned i = 0; i < n; i++)
				all[i] = i == x ? dx : data[i];
			raid_xor(n, all, out_p, len);
		}
		if (!q && out_q) {
			memset(out_q, 0, len);
			for (unsigned i = 0; i < n; i++)
				raid_gf_mul_add(EXP(i), i == x ? dx : data[i], out_q, len);
		}
		return 0;
	}
	/* Two data chunks missing: P and Q are both present. */
	{
		unsigned x = (unsigned)miss[0], y = (unsigned)miss[1];
		uint8_t gx = EXP(x), gy = EXP(y);
		uint8_t inv = gf_inv(gx ^ gy);
		void *dx = out_data[x], *dy = out_data[y];

		/* dy = Pxy = P ^ other data; dx = Qxy = Q ^ sum others */
		memcpy(dy, p, len);
		memcpy(dx, q, len);
		for (unsigned i = 0; i < n; i++)
			if (i != x && i != y) {
				raid_xor_into(dy, data[i], len);
				raid_gf_mul_add(EXP(i), data[i], dx, len);
			}
		/* Dx = inv * (Qxy ^ gy * Pxy); then Dy = Pxy ^ Dx. */
		raid_gf_mul_add(gy, dy, dx, len);
		{
			unsigned char tbl[32];
			unsigned char *src = dx;

			ec_init_tables(1, 1, &inv, tbl);
			ec_encode_data_base((int)len, 1, 1, tbl, &src, &src);
		}
		raid_xor_into(dy, dx, len);
		return 0;
	}
}
