/*
 * aes_aesni.c - see aes_aesni.h.
 *
 * ECB goes eight independent blocks at a time so that the latency of the AES instructions
 * is hidden; CBC encryption cannot (each block needs the one before).
 */
#include "crypto/aes_aesni.h"

#include <endian.h>
#include <openssl/crypto.h>
#include <string.h>

#include "util/secmem.h"

struct bs_aes_keys {
	uint8_t enc[15][16];
	uint8_t dec[15][16]; /* equivalent inverse cipher */
	unsigned rounds;     /* 10, 12 or 14 */
};

void bs_aes_keys_free(struct bs_aes_keys *k)
{
	bs_secure_free(k); /* wipes the keys */
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AESNI __attribute__((target("aes,sse2")))

/* SubWord(RotWord(w)) with AESKEYGENASSIST: w as X1, dword 1 of the result. */
AESNI static uint32_t sub_rot_word(uint32_t w)
{
	__m128i r = _mm_aeskeygenassist_si128(_mm_set_epi32(0, 0, (int)w, 0), 0);

	return (uint32_t)_mm_cvtsi128_si32(_mm_shuffle_epi32(r, 0x01));
}

/* SubWord(w): dword 0 of the same result. */
AESNI static uint32_t sub_word(uint32_t w)
{
	__m128i r = _mm_aeskeygenassist_si128(_mm_set_epi32(0, 0, (int)w, 0), 0);

	return (uint32_t)_mm_cvtsi128_si32(r);
}

/*
 * FIPS-197 key expansion (section 5.2) word by word, for Nk = 4, 6 or 8 words of key; the
 * S-box comes from AESKEYGENASSIST.  Words are little-endian, as the AES instructions see
 * the state, so RotWord is a rotation right by 8 and Rcon sits in the low byte.  The
 * decryption keys are the encryption keys in reverse order, the inner ones through
 * AESIMC (FIPS-197 section 5.3.5).
 */
AESNI unsigned bs_aesni_key_schedule(const uint8_t *key, size_t len, uint8_t enc[15][16],
				     uint8_t dec[15][16])
{
	static const uint8_t rcon[11] = {0,    0x01, 0x02, 0x04, 0x08, 0x10,
					 0x20, 0x40, 0x80, 0x1b, 0x36};
	const unsigned nk = (unsigned)(len / 4), total = 4 * (nk + 7), nr = nk + 6;
	uint32_t w[60];

	for (unsigned i = 0; i < nk; i++) {
		memcpy(&w[i], key + 4 * i, 4);
		w[i] = le32toh(w[i]);
	}
	for (unsigned i = nk; i < total; i++) {
		uint32_t t = w[i - 1];

		if (i % nk == 0)
			t = sub_rot_word(t) ^ rcon[i / nk];
		else if (nk > 6 && i % nk == 4)
			t = sub_word(t);
		w[i] = w[i - nk] ^ t;
	}
	for (unsigned i = 0; i < total; i++) {
		uint32_t v = htole32(w[i]);

		memcpy(&enc[i / 4][4 * (i % 4)], &v, 4);
	}
	OPENSSL_cleanse(w, sizeof(w));
	if (dec) {
		_mm_storeu_si128((__m128i *)dec[0], _mm_loadu_si128((const __m128i *)enc[nr]));
		for (unsigned i = 1; i < nr; i++)
			_mm_storeu_si128((__m128i *)dec[i], _mm_aesimc_si128(_mm_loadu_si128(
								(const __m128i *)enc[nr - i])));
		_mm_storeu_si128((__m128i *)dec[nr], _mm_loadu_si128((const __m128i *)enc[0]));
	}
	return nr;
}

struct bs_aes_keys *bs_aes_keys_new(const uint8_t *key, size_t len)
{
	struct bs_aes_keys *k;

	if (!__builtin_cpu_supports("aes") || (len != 16 && len != 24 && len != 32))
		return NULL;
	k = bs_secure_alloc(sizeof(*k));
	if (k)
		k->rounds = bs_aesni_key_schedule(key, len, k->enc, k->dec);
	return k;
}

/* N (1 to 8) blocks of B through the cipher with round keys K, interleaved. */
__attribute__((always_inline)) AESNI static inline void
crypt_blocks(const uint8_t (*k)[16], unsigned nr, __m128i *b, unsigned n, bool dec)
{
	__m128i kr = _mm_loadu_si128((const __m128i *)k[0]);

	for (unsigned i = 0; i < n; i++)
		b[i] = _mm_xor_si128(b[i], kr);
	for (unsigned r = 1; r < nr; r++) {
		kr = _mm_loadu_si128((const __m128i *)k[r]);
		for (unsigned i = 0; i < n; i++)
			b[i] = dec ? _mm_aesdec_si128(b[i], kr) : _mm_aesenc_si128(b[i], kr);
	}
	kr = _mm_loadu_si128((const __m128i *)k[nr]);
	for (unsigned i = 0; i < n; i++)
		b[i] = dec ? _mm_aesdeclast_si128(b[i], kr) : _mm_aesenclast_si128(b[i], kr);
}

__attribute__((always_inline)) AESNI static inline void
ecb(const struct bs_aes_keys *k, const uint8_t *in, uint8_t *out, size_t len, bool dec)
{
	const uint8_t(*rk)[16] = dec ? k->dec : k->enc;
	__m128i b[8];

	while (len) {
		const unsigned n = len >= 128 ? 8 : (unsigned)(len / 16);

		for (unsigned i = 0; i < n; i++)
			b[i] = _mm_loadu_si128((const __m128i *)in + i);
		if (n == 8)
			crypt_blocks(rk, k->rounds, b, 8, dec); /* unrolled: the common case */
		else
			crypt_blocks(rk, k->rounds, b, n, dec);
		for (unsigned i = 0; i < n; i++)
			_mm_storeu_si128((__m128i *)out + i, b[i]);
		in += 16 * n;
		out += 16 * n;
		len -= 16 * n;
	}
}

AESNI static void ecb_enc(const struct bs_aes_keys *k, const uint8_t *in, uint8_t *out, size_t len)
{
	ecb(k, in, out, len, false);
}

AESNI static void ecb_dec(const struct bs_aes_keys *k, const uint8_t *in, uint8_t *out, size_t len)
{
	ecb(k, in, out, len, true);
}

void bs_aes_ecb(const struct bs_aes_keys *k, bool encrypt, const uint8_t *in, uint8_t *out,
		size_t len)
{
	if (encrypt)
		ecb_enc(k, in, out, len);
	else
		ecb_dec(k, in, out, len);
}

AESNI void bs_aes_cbc_encrypt(const struct bs_aes_keys *k, const uint8_t iv[16], const uint8_t *in,
			      uint8_t *out, size_t len)
{
	__m128i c = _mm_loadu_si128((const __m128i *)iv);

	for (size_t off = 0; off < len; off += 16) {
		c = _mm_xor_si128(c, _mm_loadu_si128((const __m128i *)(in + off)));
		crypt_blocks(k->enc, k->rounds, &c, 1, false);
		_mm_storeu_si128((__m128i *)(out + off), c);
	}
}
#else
unsigned bs_aesni_key_schedule(const uint8_t *key, size_t len, uint8_t enc[15][16],
			       uint8_t dec[15][16])
{
	(void)key;
	(void)len;
	(void)enc;
	(void)dec;
	return 0;
}

struct bs_aes_keys *bs_aes_keys_new(const uint8_t *key, size_t len)
{
	(void)key;
	(void)len;
	return NULL;
}

void bs_aes_ecb(const struct bs_aes_keys *k, bool encrypt, const uint8_t *in, uint8_t *out,
		size_t len)
{
	(void)k;
	(void)encrypt;
	(void)in;
	(void)out;
	(void)len;
}

void bs_aes_cbc_encrypt(const struct bs_aes_keys *k, const uint8_t iv[16], const uint8_t *in,
			uint8_t *out, size_t len)
{
	(void)k;
	(void)iv;
	(void)in;
	(void)out;
	(void)len;
}
#endif
