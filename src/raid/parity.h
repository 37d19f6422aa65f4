/*
 * parity.h - RAID parity arithmetic on top of ISA-L.
 *
 * P is the XOR of the data chunks; Q (RAID6) is sum over data slots i of g^i * D_i in
 * GF(2^8) with polynomial 0x11d and generator g = 2, as Linux md computes it, where the slot
 * of a chunk is given by the layout (raid_stripe.qslot).  Buffers of any alignment and any
 * length (a multiple of 512) are accepted; aligned ones take ISA-L's vector code.
 */
#ifndef BS_RAID_PARITY_H
#define BS_RAID_PARITY_H

#include <stddef.h>
#include <stdint.h>

/* dst = src[0] ^ ... ^ src[n-1] (dst may not alias a source). */
void raid_xor(unsigned n, const void *const *src, void *dst, size_t len);
/* dst ^= src */
void raid_xor_into(void *dst, const void *src, size_t len);
/* P and Q of N data chunks given in slot order (data[i] has coefficient g^i). */
void raid_pq(unsigned n, const void *const *data, void *p, void *q, size_t len);
/*
 * P and Q of N data chunks where data[i] has coefficient g^exp[i] (any distinct exponents);
 * takes the vector path when EXP is a permutation of 0..n-1.
 */
void raid_pq_exp(unsigned n, const unsigned *exp, const void *const *data, void *p, void *q,
		 size_t len);
/* dst ^= c * src in GF(2^8). */
void raid_gf_mul_add(uint8_t c, const void *src, void *dst, size_t len);
/* g^i */
uint8_t raid_gf_exp2(unsigned i);

/*
 * RAID6 recovery.  DATA[i] is a data chunk with coefficient g^EXP[i] (EXP NULL: g^i),
 * NULL when missing; P and Q likewise.
 * Up to two of the n+2 chunks may be missing; the missing ones are written into the buffers
 * in OUT_DATA/OUT_P/OUT_Q (same indexing; only entries for missing chunks are used).
 * Returns 0, or -EINVAL when more than two are missing.
 */
int raid6_recover(unsigned n, const unsigned *exp, const void *const *data, const void *p,
		  const void *q, void *const *out_data, void *out_p, void *out_q, size_t len);

#endif
