/*
 * xts_aesni.c - see xts_aesni.h.
 *
 * The T_0 of sixteen sectors are computed at once, then each sector goes through in groups
 * of eight registers (every sector size is a multiple of 256 bytes), with the tweaks
 * computed in registers and eight AES computations interleaved so that the latency of the
 * AES instructions is hidden.  With VAES and AVX2 a register holds two blocks (sixteen per
 * group), else one (eight per group).
 */
#include "crypto/xts_aesni.h"

#include <errno.h>
#include <openssl/crypto.h>

#include "crypto/aes_aesni.h"
#include "util/secmem.h"

struct bs_xts_keys {
	uint8_t enc[15][16];   /* data key, encryption */
	uint8_t dec[15][16];   /* data key, decryption (equivalent inverse cipher) */
	uint8_t tweak[15][16]; /* tweak key, encryption */
	unsigned rounds;       /* 10, 12 or 14 */
	bool vaes;	       /* use the 256-bit VAES sector loop */
};

void bs_xts_keys_free(struct bs_xts_keys *k)
{
	bs_secure_free(k); /* wipes the keys */
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

#define AESNI	  __attribute__((target("aes,sse2")))
#define XTS_BATCH 16 /* sectors whose T_0 are computed together */

enum bs_cipher_accel bs_xts_aesni_level(enum bs_cipher_accel max)
{
	unsigned eax, ebx, ecx, edx;

	if (max < BS_ACCEL_AESNI || !__builtin_cpu_supports("aes") ||
	    !__builtin_cpu_supports("sse2"))
		return BS_ACCEL_NONE;
	/* Not every compiler's __builtin_cpu_supports() knows "vaes": CPUID.(7,0):ECX[9].  The
	 * "avx2" test includes the OS's saving of the YMM registers. */
	if (max < BS_ACCEL_VAES || !__builtin_cpu_supports("avx2") ||
	    !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 9)))
		return BS_ACCEL_AESNI;
	return BS_ACCEL_VAES;
}

AESNI static void expand_xts_key(struct bs_xts_keys *k, const uint8_t *key, size_t len)
{
	const size_t half = len / 2;

	k->rounds = bs_aesni_key_schedule(key, half, k->enc, k->dec);
	bs_aesni_key_schedule(key + half, half, k->tweak, NULL);
}

/* T * alpha in GF(2^128), IEEE 1619's little-endian convention. */
AESNI static inline __m128i xts_double(__m128i t)
{
	/* Each dword's top bit moves to the bottom of the next dword; bit 127 folds to 0x87. */
	__m128i m = _mm_shuffle_epi32(_mm_srai_epi32(t, 31), 0x93);

	m = _mm_and_si128(m, _mm_set_epi32(1, 1, 1, 0x87));
	return _mm_xor_si128(_mm_add_epi32(t, t), m);
}

/* OP on all eight blocks of B with round key K, written out so they stay in registers. */
#define ALL8(op, b, k)                                                                             \
	do {                                                                                       \
		b[0] = op(b[0], k);                                                                \
		b[1] = op(b[1], k);                                                                \
		b[2] = op(b[2], k);                                                                \
		b[3] = op(b[3], k);                                                                \
		b[4] = op(b[4], k);                                                                \
		b[5] = op(b[5], k);                                                                \
		b[6] = op(b[6], k);                                                                \
		b[7] = op(b[7], k);                                                                \
	} while (0)

/* Encrypts the eight blocks of B in place with round keys K (the tweak key). */
AESNI static void aesni_encrypt8(const uint8_t (*k)[16], unsigned nr, __m128i b[8])
{
	__m128i kr = _mm_loadu_si128((const __m128i *)k[0]);

	ALL8(_mm_xor_si128, b, kr);
	for (unsigned r = 1; r < nr; r++) {
		kr = _mm_loadu_si128((const __m128i *)k[r]);
		ALL8(_mm_aesenc_si128, b, kr);
	}
	kr = _mm_loadu_si128((const __m128i *)k[nr]);
	ALL8(_mm_aesenclast_si128, b, kr);
}

/*
 * One sector of SS bytes (a multiple of 128) from IN to OUT (equal or not overlapping) with
 * T_0 = T, in groups of eight independent blocks.
 */
__attribute__((always_inline)) AESNI static inline void xts_sector(const uint8_t (*k)[16],
								   unsigned nr, const uint8_t *in,
								   uint8_t *out, unsigned ss,
								   __m128i t, bool dec)
{
	for (unsigned off = 0; off < ss; off += 128) {
		const __m128i *src = (const __m128i *)(in + off);
		__m128i *dst = (__m128i *)(out + off);
		__m128i t0, t1, t2, t3, t4, t5, t6, t7, b[8], kr;

		t0 = t;
		t1 = xts_double(t0);
		t2 = xts_double(t1);
		t3 = xts_double(t2);
		t4 = xts_double(t3);
		t5 = xts_double(t4);
		t6 = xts_double(t5);
		t7 = xts_double(t6);
		t = xts_double(t7);
		kr = _mm_loadu_si128((const __m128i *)k[0]);
		b[0] = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128(src + 0), t0), kr);
		b[1] = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128(src + 1), t1), kr);
		b[2] = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128(src + 2), t2), kr);
		b[3] = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128(src + 3), t3), kr);
		b[4] = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128(src + 4), t4), kr);
		b[5] = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128(src + 5), t5), kr);
		b[6] = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128(src + 6), t6), kr);
		b[7] = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128(src + 7), t7), kr);
		for (unsigned r = 1; r < nr; r++) {
			kr = _mm_loadu_si128((const __m128i *)k[r]);
			if (dec)
				ALL8(_mm_aesdec_si128, b, kr);
			else
				ALL8(_mm_aesenc_si128, b, kr);
		}
		kr = _mm_loadu_si128((const __m128i *)k[nr]);
		if (dec)
			ALL8(_mm_aesdeclast_si128, b, kr);
		else
			ALL8(_mm_aesenclast_si128, b, kr);
		_mm_storeu_si128(dst + 0, _mm_xor_si128(b[0], t0));
		_mm_storeu_si128(dst + 1, _mm_xor_si128(b[1], t1));
		_mm_storeu_si128(dst + 2, _mm_xor_si128(b[2], t2));
		_mm_storeu_si128(dst + 3, _mm_xor_si128(b[3], t3));
		_mm_storeu_si128(dst + 4, _mm_xor_si128(b[4], t4));
		_mm_storeu_si128(dst + 5, _mm_xor_si128(b[5], t5));
		_mm_storeu_si128(dst + 6, _mm_xor_si128(b[6], t6));
		_mm_storeu_si128(dst + 7, _mm_xor_si128(b[7], t7));
	}
}

AESNI static void xts_enc_sector(const uint8_t (*k)[16], unsigned nr, const uint8_t *in,
				 uint8_t *out, unsigned ss, __m128i t)
{
	xts_sector(k, nr, in, out, ss, t, false);
}

AESNI static void xts_dec_sector(const uint8_t (*k)[16], unsigned nr, const uint8_t *in,
				 uint8_t *out, unsigned ss, __m128i t)
{
	xts_sector(k, nr, in, out, ss, t, true);
}

/*
 * The same with VAES: two blocks per 256-bit register, sixteen blocks (256 bytes, and every
 * sector size is a multiple of that) per group.  Register I of a group holds T_{2i} and
 * T_{2i+1}; the next group's tweaks are these times alpha^16, computed independently rather
 * than by a chain of doublings.
 */
#define VAES __attribute__((target("aes,vaes,avx2")))

/* Each 128-bit lane of T times alpha^K, 1 <= K <= 56, in GF(2^128) (IEEE 1619 order). */
__attribute__((always_inline)) VAES static inline __m256i xts_mul_xk(__m256i t, int k)
{
	/* The K bits shifted out of each 64-bit half, swapped: the high half's go to the low. */
	__m256i c = _mm256_shuffle_epi32(_mm256_srli_epi64(t, 64 - k), 0x4e);
	/* Those from the high half (now in the low half) fold back as times x^7 + x^2 + x + 1. */
	__m256i lo = _mm256_and_si256(c, _mm256_set_epi64x(0, -1, 0, -1));

	return _mm256_xor_si256(
	    _mm256_xor_si256(_mm256_slli_epi64(t, k), c),
	    _mm256_xor_si256(_mm256_xor_si256(_mm256_slli_epi64(lo, 1), _mm256_slli_epi64(lo, 2)),
			     _mm256_slli_epi64(lo, 7)));
}

__attribute__((always_inline)) VAES static inline void vaes_sector(const uint8_t (*k)[16],
								   unsigned nr, const uint8_t *in,
								   uint8_t *out, unsigned ss,
								   __m128i t, bool dec)
{
	__m256i tw[8], b[8], kr;

	/* T_0 times alpha in the high lane. */
	tw[0] = _mm256_broadcastsi128_si256(t);
	tw[0] = _mm256_blend_epi32(tw[0], xts_mul_xk(tw[0], 1), 0xf0);
	tw[1] = xts_mul_xk(tw[0], 2);
	tw[2] = xts_mul_xk(tw[0], 4);
	tw[3] = xts_mul_xk(tw[0], 6);
	tw[4] = xts_mul_xk(tw[0], 8);
	tw[5] = xts_mul_xk(tw[0], 10);
	tw[6] = xts_mul_xk(tw[0], 12);
	tw[7] = xts_mul_xk(tw[0], 14);
	for (unsigned off = 0; off < ss; off += 256) {
		const __m256i *src = (const __m256i *)(in + off);
		__m256i *dst = (__m256i *)(out + off);

		if (off) {
			tw[0] = xts_mul_xk(tw[0], 16);
			tw[1] = xts_mul_xk(tw[1], 16);
			tw[2] = xts_mul_xk(tw[2], 16);
			tw[3] = xts_mul_xk(tw[3], 16);
			tw[4] = xts_mul_xk(tw[4], 16);
			tw[5] = xts_mul_xk(tw[5], 16);
			tw[6] = xts_mul_xk(tw[6], 16);
			tw[7] = xts_mul_xk(tw[7], 16);
		}
		kr = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)k[0]));
		b[0] = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256(src + 0), tw[0]), kr);
		b[1] = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256(src + 1), tw[1]), kr);
		b[2] = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256(src + 2), tw[2]), kr);
		b[3] = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256(src + 3), tw[3]), kr);
		b[4] = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256(src + 4), tw[4]), kr);
		b[5] = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256(src + 5), tw[5]), kr);
		b[6] = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256(src + 6), tw[6]), kr);
		b[7] = _mm256_xor_si256(_mm256_xor_si256(_mm256_loadu_si256(src + 7), tw[7]), kr);
		for (unsigned r = 1; r < nr; r++) {
			kr = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)k[r]));
			if (dec)
				ALL8(_mm256_aesdec_epi128, b, kr);
			else
				ALL8(_mm256_aesenc_epi128, b, kr);
		}
		kr = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)k[nr]));
		if (dec)
			ALL8(_mm256_aesdeclast_epi128, b, kr);
		else
			ALL8(_mm256_aesenclast_epi128, b, kr);
		_mm256_storeu_si256(dst + 0, _mm256_xor_si256(b[0], tw[0]));
		_mm256_storeu_si256(dst + 1, _mm256_xor_si256(b[1], tw[1]));
		_mm256_storeu_si256(dst + 2, _mm256_xor_si256(b[2], tw[2]));
		_mm256_storeu_si256(dst + 3, _mm256_xor_si256(b[3], tw[3]));
		_mm256_storeu_si256(dst + 4, _mm256_xor_si256(b[4], tw[4]));
		_mm256_storeu_si256(dst + 5, _mm256_xor_si256(b[5], tw[5]));
		_mm256_storeu_si256(dst + 6, _mm256_xor_si256(b[6], tw[6]));
		_mm256_storeu_si256(dst + 7, _mm256_xor_si256(b[7], tw[7]));
	}
}

VAES static void vaes_enc_sector(const uint8_t (*k)[16], unsigned nr, const uint8_t *in,
				 uint8_t *out, unsigned ss, __m128i t)
{
	vaes_sector(k, nr, in, out, ss, t, false);
}

VAES static void vaes_dec_sector(const uint8_t (*k)[16], unsigned nr, const uint8_t *in,
				 uint8_t *out, unsigned ss, __m128i t)
{
	vaes_sector(k, nr, in, out, ss, t, true);
}

/* Encrypts the sixteen blocks of T in place with round keys K (the tweak key). */
VAES static void vaes_encrypt16(const uint8_t (*k)[16], unsigned nr, __m128i t[16])
{
	__m256i b[8], kr = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)k[0]));

	for (unsigned i = 0; i < 8; i++)
		b[i] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(t + 2 * i)), kr);
	for (unsigned r = 1; r < nr; r++) {
		kr = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)k[r]));
		ALL8(_mm256_aesenc_epi128, b, kr);
	}
	kr = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)k[nr]));
	ALL8(_mm256_aesenclast_epi128, b, kr);
	for (unsigned i = 0; i < 8; i++)
		_mm256_storeu_si256((__m256i *)(t + 2 * i), b[i]);
}

AESNI int bs_xts_aesni_crypt(const struct bs_xts_keys *k, bool encrypt, const uint8_t *in,
			     uint8_t *out, unsigned ss, size_t nsec, bs_xts_iv_fn iv, void *arg)
{
	const unsigned nr = k->rounds;
	void (*sector_fn)(const uint8_t(*)[16], unsigned, const uint8_t *, uint8_t *, unsigned,
			  __m128i) = k->vaes ? (encrypt ? vaes_enc_sector : vaes_dec_sector)
					     : (encrypt ? xts_enc_sector : xts_dec_sector);
	__m128i t[XTS_BATCH] = {0};
	int r = 0;

	for (size_t s = 0; s < nsec; s += XTS_BATCH) {
		const unsigned n = nsec - s < XTS_BATCH ? (unsigned)(nsec - s) : XTS_BATCH;

		for (unsigned i = 0; i < n; i++)
			if ((r = iv(arg, s + i, (uint8_t *)&t[i])))
				goto out;
		/* Blocks past N hold stale tweaks; encrypting them is harmless. */
		if (k->vaes) {
			vaes_encrypt16(k->tweak, nr, t);
		} else {
			aesni_encrypt8(k->tweak, nr, t);
			if (n > 8)
				aesni_encrypt8(k->tweak, nr, t + 8);
		}
		for (unsigned i = 0; i < n; i++) {
			size_t off = (s + i) * ss;

			sector_fn(encrypt ? k->enc : k->dec, nr, in + off, out + off, ss, t[i]);
		}
	}
out:
	/* T_0 values are key-dependent; do not leave them on the stack. */
	OPENSSL_cleanse(t, sizeof(t));
	return r;
}

struct bs_xts_keys *bs_xts_keys_new(const uint8_t *key, size_t len, enum bs_cipher_accel level)
{
	struct bs_xts_keys *k = bs_secure_alloc(sizeof(*k));

	if (!k)
		return NULL;
	expand_xts_key(k, key, len);
	k->vaes = level == BS_ACCEL_VAES;
	return k;
}
#else
enum bs_cipher_accel bs_xts_aesni_level(enum bs_cipher_accel max)
{
	(void)max;
	return BS_ACCEL_NONE;
}

struct bs_xts_keys *bs_xts_keys_new(const uint8_t *key, size_t len, enum bs_cipher_accel level)
{
	(void)key;
	(void)len;
	(void)level;
	return NULL;
}

int bs_xts_aesni_crypt(const struct bs_xts_keys *k, bool encrypt, const uint8_t *in, uint8_t *out,
		       unsigned ss, size_t nsec, bs_xts_iv_fn iv, void *arg)
{
	(void)k;
	(void)encrypt;
	(void)in;
	(void)out;
	(void)ss;
	(void)nsec;
	(void)iv;
	(void)arg;
	return -ENOTSUP;
}
#endif
