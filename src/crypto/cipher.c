/*
 * cipher.c - see cipher.h.
 *
 * IV generation follows Linux dm-crypt (drivers/md/dm-crypt.c, Documentation/admin-guide/
 * device-mapper/dm-crypt.rst): the IV of a sector is derived from its number in 512-byte units
 * (or in sector_size units with iv_large_sectors), little-endian unless the mode says
 * otherwise, zero-padded to the cipher's IV size.  The encblkno modes follow NetBSD's
 * sys/dev/cgd.c (the block number as 8 little-endian bytes in a zeroed cipher block, encrypted
 * with the data key once, or eight times for the legacy mode).
 *
 * Every mode is built on AES-ECB (plus AES-CBC encryption, which cannot be batched), so XTS
 * takes the key sizes Linux takes (two AES-128, -192 or -256 keys) and, as in Linux outside
 * FIPS mode, does not refuse two equal halves (OpenSSL's own XTS would).  On x86-64 with
 * AES-NI, XTS has its own one-pass implementation instead (xts_aesni.c), with the same
 * answers.
 */
#include "crypto/cipher.h"

#include <endian.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/aes_aesni.h"
#include "crypto/xts_aesni.h"
#include "util/secmem.h"

#define MAX_IV 16

/*
 * One set of keyed OpenSSL contexts, used by one request at a time:
 *   ecb_enc/ecb_dec  AES-ECB with the data key (the XTS data half): the bulk of every mode
 *   tweak            AES-ECB encryption with the XTS tweak half
 *   cbc_enc          AES-CBC encryption, sector by sector (CBC encryption cannot be batched)
 *   essiv            AES-ECB with hash(key), for ESSIV IVs
 * Only those the CPU's AES instructions do not replace are made: with AES-NI, none (the
 * round keys are then the cipher's own, in locked memory; OpenSSL's contexts keep theirs in
 * its ordinary heap).  buf holds the per-block XOR stream of a request (tweaks, or IVs and
 * chaining blocks).
 */
struct cctx {
	EVP_CIPHER_CTX *ecb_enc;
	EVP_CIPHER_CTX *ecb_dec;
	EVP_CIPHER_CTX *tweak;
	EVP_CIPHER_CTX *cbc_enc;
	EVP_CIPHER_CTX *essiv;
	uint8_t *buf;
	size_t cap;
	struct cctx *next;
};

struct bs_sector_cipher {
	struct bs_crypt_spec spec;
	bool null_cipher;      /* cipher_null: data passes through */
	EVP_CIPHER *evp;       /* AES-CBC, for CBC encryption only */
	EVP_CIPHER *ecb;       /* AES-ECB for the data key (half of an XTS key) */
	EVP_CIPHER *essiv_evp; /* ESSIV only */
	uint8_t *key;	       /* locked */
	size_t key_len;
	uint8_t *essiv_key; /* locked: hash of the key */
	size_t essiv_key_len;
	unsigned sector_size;
	unsigned large_shift; /* log2(sector_size) - 9 when IVs count large sectors */
	unsigned iv_size;
	struct bs_xts_keys *xk; /* AES-NI round keys for XTS (locked), or NULL */
	/* AES-NI round keys (locked) of the data key and the ESSIV key, or NULL: OpenSSL */
	struct bs_aes_keys *ak;
	struct bs_aes_keys *essiv_ak;
	pthread_mutex_t lock;
	struct cctx *pool;
};

/* ---- specifications -------------------------------------------------------------------- */

static int parse_iv(const char *iv, struct bs_crypt_spec *s, const char **why)
{
	const char *colon = strchr(iv, ':');
	size_t n = colon ? (size_t)(colon - iv) : strlen(iv);

	if (n == 0 || n >= sizeof(s->ivname)) {
		*why = "invalid IV mode";
		return -EINVAL;
	}
	memcpy(s->ivname, iv, n);
	s->ivname[n] = '\0';
	if (colon) {
		if (strlen(colon + 1) >= sizeof(s->ivopts) || !colon[1]) {
			*why = "invalid IV options";
			return -EINVAL;
		}
		strcpy(s->ivopts, colon + 1);
	}
	if (!strcmp(s->ivname, "plain"))
		s->iv = BS_IV_PLAIN;
	else if (!strcmp(s->ivname, "plain64"))
		s->iv = BS_IV_PLAIN64;
	else if (!strcmp(s->ivname, "plain64be"))
		s->iv = BS_IV_PLAIN64BE;
	else if (!strcmp(s->ivname, "null"))
		s->iv = BS_IV_NULL;
	else if (!strcmp(s->ivname, "benbi"))
		s->iv = BS_IV_BENBI;
	else if (!strcmp(s->ivname, "encblkno1"))
		s->iv = BS_IV_ENCBLKNO1;
	else if (!strcmp(s->ivname, "encblkno8"))
		s->iv = BS_IV_ENCBLKNO8;
	else if (!strcmp(s->ivname, "essiv")) {
		s->iv = BS_IV_ESSIV;
		if (!s->ivopts[0]) {
			*why = "essiv needs a hash (essiv:sha256)";
			return -EINVAL;
		}
	} else {
		*why = "unsupported IV mode (plain, plain64, plain64be, essiv, benbi, null, "
		       "encblkno1 and encblkno8 are)";
		return -EINVAL;
	}
	if (s->ivopts[0] && s->iv != BS_IV_ESSIV) {
		*why = "this IV mode takes no options";
		return -EINVAL;
	}
	return 0;
}

int bs_crypt_spec_parse(const char *spec, struct bs_crypt_spec *s, const char **why)
{
	char buf[128];
	char *cipher, *chain = NULL, *iv = NULL;

	memset(s, 0, sizeof(*s));
	s->keycount = 1;
	if (strlen(spec) >= sizeof(buf) || !*spec) {
		*why = "invalid cipher specification";
		return -EINVAL;
	}
	strcpy(buf, spec);

	if (!strncmp(buf, "capi:", 5)) {
		/* capi:<chain>(<cipher>)-<iv>[:<opts>] */
		char *open = strchr(buf + 5, '('), *close = open ? strchr(open, ')') : NULL;

		if (!open || !close || close[1] != '-' || !close[2]) {
			*why = "invalid capi cipher specification (want capi:xts(aes)-plain64)";
			return -EINVAL;
		}
		*open = *close = '\0';
		chain = buf + 5;
		cipher = open + 1;
		iv = close + 2;
		s->capi = true;
	} else {
		char *colon;

		cipher = buf;
		chain = strchr(cipher, '-');
		if (chain) {
			*chain++ = '\0';
			iv = strchr(chain, '-');
			if (iv)
				*iv++ = '\0';
		}
		colon = strchr(cipher, ':');
		if (colon) {
			*colon = '\0';
			if (strcmp(colon + 1, "1")) {
				*why =
				    "multi-key ciphers (keycount other than 1) are not supported";
				return -EINVAL;
			}
		}
		if (!strcmp(cipher, "cipher_null")) {
			strcpy(s->cipher, "cipher_null");
			strcpy(s->chain, "ecb");
			s->iv = BS_IV_NONE;
			return 0;
		}
		/* Old dm-crypt compatibility: "aes" and "aes-plain" mean aes-cbc-plain. */
		if (!chain || (!strcmp(chain, "plain") && !iv)) {
			chain = "cbc";
			iv = "plain";
		}
	}
	if (strlen(cipher) >= sizeof(s->cipher) || strlen(chain) >= sizeof(s->chain)) {
		*why = "invalid cipher specification";
		return -EINVAL;
	}
	strcpy(s->cipher, cipher);
	strcpy(s->chain, chain);
	if (strcmp(s->cipher, "aes")) {
		*why = "unsupported cipher (aes and cipher_null are supported)";
		return -EINVAL;
	}
	if (strcmp(s->chain, "xts") && strcmp(s->chain, "cbc") && strcmp(s->chain, "ecb")) {
		*why = "unsupported chaining mode (xts, cbc and ecb are supported)";
		return -EINVAL;
	}
	if (!strcmp(s->chain, "ecb")) {
		s->iv = BS_IV_NONE; /* ECB has no IV; a given IV mode is ignored, as in Linux */
		if (iv && parse_iv(iv, s, why))
			return -EINVAL;
		s->iv = BS_IV_NONE;
		return 0;
	}
	if (!iv || !*iv) {
		*why = "IV mechanism required";
		return -EINVAL;
	}
	if (parse_iv(iv, s, why))
		return -EINVAL;
	if ((s->iv == BS_IV_ENCBLKNO1 || s->iv == BS_IV_ENCBLKNO8) && strcmp(s->chain, "cbc")) {
		*why = "encblkno1 and encblkno8 are for cbc (cgd's aes-xts is aes-xts-plain64)";
		return -EINVAL;
	}
	return 0;
}

void bs_crypt_spec_format(const struct bs_crypt_spec *s, char *out, size_t outlen)
{
	char iv[64];

	if (!strcmp(s->cipher, "cipher_null")) {
		snprintf(out, outlen, "cipher_null-ecb");
		return;
	}
	if (s->ivname[0])
		snprintf(iv, sizeof(iv), "%s%s%s", s->ivname, s->ivopts[0] ? ":" : "", s->ivopts);
	else
		iv[0] = '\0';
	if (s->capi)
		snprintf(out, outlen, "capi:%s(%s)%s%s", s->chain, s->cipher, iv[0] ? "-" : "", iv);
	else
		snprintf(out, outlen, "%s-%s%s%s", s->cipher, s->chain, iv[0] ? "-" : "", iv);
}

bool bs_crypt_key_size_valid(const struct bs_crypt_spec *s, size_t n)
{
	if (!strcmp(s->cipher, "cipher_null"))
		return n == 0;
	if (!strcmp(s->chain, "xts"))
		return n == 32 || n == 48 || n == 64;
	return n == 16 || n == 24 || n == 32;
}

/* ---- AES-NI XTS (xts_aesni.c) ---------------------------------------------------------- */

static enum bs_cipher_accel accel_max = BS_ACCEL_VAES;

void bs_sector_cipher_set_accel(enum bs_cipher_accel max)
{
	accel_max = max;
}

/* ---- instances ------------------------------------------------------------------------- */

static void cctx_free(struct cctx *x)
{
	if (!x)
		return;
	EVP_CIPHER_CTX_free(x->ecb_enc);
	EVP_CIPHER_CTX_free(x->ecb_dec);
	EVP_CIPHER_CTX_free(x->tweak);
	EVP_CIPHER_CTX_free(x->cbc_enc);
	EVP_CIPHER_CTX_free(x->essiv);
	free(x->buf);
	free(x);
}

static EVP_CIPHER_CTX *keyed(const EVP_CIPHER *ciph, const uint8_t *key, int enc)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (!ctx || !EVP_CipherInit_ex2(ctx, ciph, key, NULL, enc, NULL)) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	return ctx;
}

static bool is_xts(const struct bs_sector_cipher *c)
{
	return !strcmp(c->spec.chain, "xts");
}

static struct cctx *cctx_new(struct bs_sector_cipher *c)
{
	struct cctx *x = calloc(1, sizeof(*x));
	size_t half = is_xts(c) ? c->key_len / 2 : c->key_len;

	if (!x)
		return NULL;
	if (!c->ak) {
		x->ecb_enc = keyed(c->ecb, c->key, 1);
		x->ecb_dec = keyed(c->ecb, c->key, 0);
		if (!x->ecb_enc || !x->ecb_dec)
			goto fail;
		if (!strcmp(c->spec.chain, "cbc") && !(x->cbc_enc = keyed(c->evp, c->key, 1)))
			goto fail;
	}
	if (is_xts(c) && !c->xk && !(x->tweak = keyed(c->ecb, c->key + half, 1)))
		goto fail;
	if (c->essiv_evp && !c->essiv_ak) {
		x->essiv = EVP_CIPHER_CTX_new();
		if (!x->essiv ||
		    !EVP_CipherInit_ex2(x->essiv, c->essiv_evp, c->essiv_key, NULL, 1, NULL))
			goto fail;
		EVP_CIPHER_CTX_set_padding(x->essiv, 0);
	}
	return x;
fail:
	cctx_free(x);
	return NULL;
}

static struct cctx *cctx_get(struct bs_sector_cipher *c)
{
	struct cctx *x;

	pthread_mutex_lock(&c->lock);
	x = c->pool;
	if (x)
		c->pool = x->next;
	pthread_mutex_unlock(&c->lock);
	return x ? x : cctx_new(c);
}

static void cctx_put(struct bs_sector_cipher *c, struct cctx *x)
{
	pthread_mutex_lock(&c->lock);
	x->next = c->pool;
	c->pool = x;
	pthread_mutex_unlock(&c->lock);
}

void bs_sector_cipher_free(struct bs_sector_cipher *c)
{
	if (!c)
		return;
	while (c->pool) {
		struct cctx *x = c->pool;

		c->pool = x->next;
		cctx_free(x);
	}
	EVP_CIPHER_free(c->evp);
	EVP_CIPHER_free(c->ecb);
	EVP_CIPHER_free(c->essiv_evp);
	bs_secure_free(c->key);
	bs_secure_free(c->essiv_key);
	bs_xts_keys_free(c->xk);
	bs_aes_keys_free(c->ak);
	bs_aes_keys_free(c->essiv_ak);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int setup_essiv(struct bs_sector_cipher *c, const char **why)
{
	EVP_MD *md = EVP_MD_fetch(NULL, c->spec.ivopts, NULL);
	unsigned int len = 0;
	char name[32];

	if (!md) {
		*why = "unknown ESSIV hash";
		return -EINVAL;
	}
	c->essiv_key = bs_secure_alloc(EVP_MAX_MD_SIZE);
	if (!c->essiv_key || !EVP_Digest(c->key, c->key_len, c->essiv_key, &len, md, NULL)) {
		EVP_MD_free(md);
		*why = "cannot hash the key for ESSIV";
		return -EINVAL;
	}
	EVP_MD_free(md);
	if (len != 16 && len != 24 && len != 32) {
		*why = "ESSIV hash size is not a valid key size for the cipher";
		return -EINVAL;
	}
	c->essiv_key_len = len;
	snprintf(name, sizeof(name), "AES-%u-ECB", len * 8);
	c->essiv_evp = EVP_CIPHER_fetch(NULL, name, NULL);
	if (!c->essiv_evp) {
		*why = "ESSIV cipher unavailable";
		return -EINVAL;
	}
	return 0;
}

int bs_sector_cipher_new(const struct bs_crypt_spec *spec, const uint8_t *key, size_t key_len,
			 unsigned sector_size, bool iv_large_sectors, struct bs_sector_cipher **out,
			 const char **why)
{
	struct bs_sector_cipher *c;
	char name[32];
	struct cctx *probe;
	enum bs_cipher_accel level;
	int r = -EINVAL;

	if (sector_size < 512 || sector_size > 4096 || (sector_size & (sector_size - 1))) {
		*why = "sector size must be a power of two from 512 to 4096";
		return -EINVAL;
	}
	if (!bs_crypt_key_size_valid(spec, key_len)) {
		*why = "invalid key size for the cipher";
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->spec = *spec;
	c->sector_size = sector_size;
	if (iv_large_sectors)
		c->large_shift = (unsigned)__builtin_ctz(sector_size) - 9;
	c->key_len = key_len;
	c->key = bs_secure_alloc(key_len ? key_len : 1);
	if (!c->key) {
		r = -ENOMEM;
		goto fail;
	}
	if (key_len)
		memcpy(c->key, key, key_len);
	if (!strcmp(spec->cipher, "cipher_null")) {
		c->null_cipher = true;
		*out = c;
		return 0;
	}
	snprintf(name, sizeof(name), "AES-%zu-ECB",
		 (!strcmp(spec->chain, "xts") ? key_len / 2 : key_len) * 8);
	c->ecb = EVP_CIPHER_fetch(NULL, name, NULL);
	if (!strcmp(spec->chain, "cbc")) {
		snprintf(name, sizeof(name), "AES-%zu-CBC", key_len * 8);
		c->evp = EVP_CIPHER_fetch(NULL, name, NULL);
	}
	if (!c->ecb || (!strcmp(spec->chain, "cbc") && !c->evp)) {
		*why = "cipher unavailable in OpenSSL";
		goto fail;
	}
	c->iv_size = (unsigned)EVP_CIPHER_get_block_size(c->ecb); /* AES: 16 */
	if (c->iv_size != MAX_IV) {
		*why = "unexpected cipher block size";
		goto fail;
	}
	if (spec->iv == BS_IV_ESSIV && setup_essiv(c, why))
		goto fail;
	level = bs_xts_aesni_level(accel_max);
	if (level != BS_ACCEL_NONE) {
		c->ak = bs_aes_keys_new(c->key, is_xts(c) ? key_len / 2 : key_len);
		if (!c->ak ||
		    (c->essiv_key &&
		     !(c->essiv_ak = bs_aes_keys_new(c->essiv_key, c->essiv_key_len))) ||
		    (is_xts(c) && !(c->xk = bs_xts_keys_new(c->key, c->key_len, level)))) {
			r = -ENOMEM;
			goto fail;
		}
	}
	/* Build one context now so that a bad key fails here, not on the first request. */
	probe = cctx_new(c);
	if (!probe) {
		*why = "OpenSSL refused the key";
		goto fail;
	}
	cctx_put(c, probe);
	*out = c;
	return 0;
fail:
	bs_sector_cipher_free(c);
	return r;
}

unsigned bs_sector_cipher_sector_size(const struct bs_sector_cipher *c)
{
	return c->sector_size;
}

static int ecb(EVP_CIPHER_CTX *ctx, const uint8_t *in, uint8_t *out, size_t len)
{
	while (len) {
		int n = len > (1u << 30) ? (1 << 30) : (int)len, outl;

		if (!EVP_CipherUpdate(ctx, out, &outl, in, n) || outl != n)
			return -EIO;
		in += n;
		out += n;
		len -= (size_t)n;
	}
	return 0;
}

/* AES-ECB with the data key: the cipher's own round keys, or OpenSSL's context. */
static int data_ecb(const struct bs_sector_cipher *c, struct cctx *x, bool encrypt,
		    const uint8_t *in, uint8_t *out, size_t len)
{
	if (c->ak) {
		bs_aes_ecb(c->ak, encrypt, in, out, len);
		return 0;
	}
	return ecb(encrypt ? x->ecb_enc : x->ecb_dec, in, out, len);
}

static int make_iv(struct bs_sector_cipher *c, struct cctx *x, uint64_t n, uint8_t *iv)
{
	uint64_t v;
	uint32_t v32;
	int len;

	memset(iv, 0, c->iv_size);
	switch (c->spec.iv) {
	case BS_IV_NONE:
	case BS_IV_NULL:
		return 0;
	case BS_IV_PLAIN:
		v32 = htole32((uint32_t)n);
		memcpy(iv, &v32, 4);
		return 0;
	case BS_IV_PLAIN64:
		v = htole64(n);
		memcpy(iv, &v, 8);
		return 0;
	case BS_IV_PLAIN64BE:
		v = htobe64(n);
		memcpy(iv + c->iv_size - 8, &v, 8);
		return 0;
	case BS_IV_BENBI:
		/* Count of 16-byte blocks from the start, plus one (9 - log2(16) = 5). */
		v = htobe64((n << 5) + 1);
		memcpy(iv + c->iv_size - 8, &v, 8);
		return 0;
	case BS_IV_ESSIV:
		v = htole64(n);
		memcpy(iv, &v, 8);
		if (c->essiv_ak)
			bs_aes_ecb(c->essiv_ak, true, iv, iv, c->iv_size);
		else if (!EVP_CipherUpdate(x->essiv, iv, &len, iv, (int)c->iv_size))
			return -EIO;
		return 0;
	case BS_IV_ENCBLKNO1:
	case BS_IV_ENCBLKNO8:
		v = htole64(n);
		memcpy(iv, &v, 8);
		for (int i = c->spec.iv == BS_IV_ENCBLKNO1 ? 1 : 8; i > 0; i--)
			if (data_ecb(c, x, true, iv, iv, c->iv_size))
				return -EIO;
		return 0;
	}
	return -EINVAL;
}

/* Room for LEN bytes of XOR stream in the context. */
static int reserve(struct cctx *x, size_t len)
{
	uint8_t *n;

	if (x->cap >= len)
		return 0;
	n = malloc(len);
	if (!n)
		return -ENOMEM;
	free(x->buf);
	x->buf = n;
	x->cap = len;
	return 0;
}

/* Sixteen bytes as a vector (a GNU C extension gcc and clang share; SSE2 on x86-64). */
typedef uint64_t v2u64 __attribute__((vector_size(16)));

/* DST = A ^ B for LEN bytes, a multiple of 16; DST may be A or B. */
static void xor_blocks(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i += 16) {
		v2u64 x, y;

		memcpy(&x, a + i, 16);
		memcpy(&y, b + i, 16);
		x ^= y;
		memcpy(dst + i, &x, 16);
	}
}

/*
 * XTS (IEEE 1619): block j of a sector is C = E_k1(P ^ T_j) ^ T_j with T_0 = E_k2(IV) and
 * T_j = T_{j-1} * alpha in GF(2^128).  Without AES-NI, the request goes through in pieces of
 * XTS_PIECE bytes (whole sectors) so that the tweak stream and the data stay in cache between
 * the passes: the IVs of the piece are encrypted in one call, the tweak stream is expanded,
 * and the data goes through AES-ECB in one call between two XORs.
 */
#define XTS_PIECE 16384

static void xts_expand(uint8_t *p, const uint8_t *t0, unsigned nblocks)
{
	uint64_t lo, hi;

	memcpy(&lo, t0, 8);
	memcpy(&hi, t0 + 8, 8);
	lo = le64toh(lo);
	hi = le64toh(hi);
	for (unsigned j = 0; j < nblocks; j++) {
		uint64_t l = htole64(lo), h = htole64(hi), carry = hi >> 63;

		memcpy(p + 16 * j, &l, 8);
		memcpy(p + 16 * j + 8, &h, 8);
		hi = (hi << 1) | (lo >> 63);
		lo = (lo << 1) ^ (carry * 0x87);
	}
}

/* IVs for bs_xts_aesni_crypt(): the given ones, or the IV mode's from the first sector. */
struct xts_iv_arg {
	struct bs_sector_cipher *c;
	struct cctx *x;
	uint64_t sector;
	const uint8_t *given;
};

static int xts_iv(void *arg, size_t i, uint8_t iv[16])
{
	struct xts_iv_arg *a = arg;

	if (a->given) {
		memcpy(iv, a->given + 16 * i, 16);
		return 0;
	}
	return make_iv(a->c, a->x, (a->sector + (a->c->sector_size >> 9) * i) >> a->c->large_shift,
		       iv);
}

static int xts_crypt(struct bs_sector_cipher *c, struct cctx *x, bool encrypt, const uint8_t *in,
		     uint8_t *out, size_t len, uint64_t sector, const uint8_t *given)
{
	const unsigned ss = c->sector_size, step = ss >> 9;
	const size_t piece = XTS_PIECE / ss * ss;
	uint8_t *t, *ivs;
	int r;

	if (c->xk) {
		struct xts_iv_arg a = {c, x, sector, given};

		return bs_xts_aesni_crypt(c->xk, encrypt, in, out, ss, len / ss, xts_iv, &a);
	}
	/* reserve() gave piece + 16 per sector (not on the AES-NI path: x->buf may be NULL) */
	t = x->buf;
	ivs = x->buf + piece;
	for (size_t done = 0; done < len; done += piece) {
		const size_t n = len - done < piece ? len - done : piece;
		const unsigned nsec = (unsigned)(n / ss);

		if (given)
			memcpy(ivs, given + 16 * (done / ss), 16 * (size_t)nsec);
		for (unsigned i = 0; i < nsec && !given; i++, sector += step) {
			r = make_iv(c, x, sector >> c->large_shift, ivs + 16 * (size_t)i);
			if (r)
				return r;
		}
		/* T_0 of every sector of the piece in one call. */
		r = ecb(x->tweak, ivs, ivs, 16 * (size_t)nsec);
		if (r)
			return r;
		for (unsigned i = 0; i < nsec; i++)
			xts_expand(t + (size_t)i * ss, ivs + 16 * (size_t)i, ss / 16);
		xor_blocks(out + done, in + done, t, n);
		r = data_ecb(c, x, encrypt, out + done, out + done, n);
		if (r)
			return r;
		xor_blocks(out + done, out + done, t, n);
	}
	return 0;
}

/*
 * CBC decryption batches: P_i = D(C_i) ^ C_{i-1}, C_{-1} = IV.  The XOR stream (IV, then the
 * ciphertext shifted by one block) is built first, so decryption may run in place.
 */
static int cbc_decrypt(struct bs_sector_cipher *c, struct cctx *x, const uint8_t *in, uint8_t *out,
		       size_t len, uint64_t sector, const uint8_t *given)
{
	const unsigned ss = c->sector_size, step = ss >> 9, nsec = (unsigned)(len / ss);
	uint8_t *t = x->buf;
	int r;

	for (unsigned i = 0; i < nsec; i++, sector += step) {
		uint8_t *p = t + (size_t)i * ss;

		if (given)
			memcpy(p, given + 16 * (size_t)i, 16);
		else if ((r = make_iv(c, x, sector >> c->large_shift, p)))
			return r;
		memcpy(p + 16, in + (size_t)i * ss, ss - 16);
	}
	r = data_ecb(c, x, false, in, out, len);
	if (!r)
		xor_blocks(out, out, t, len);
	return r;
}

static int cbc_encrypt(struct bs_sector_cipher *c, struct cctx *x, const uint8_t *in, uint8_t *out,
		       size_t len, uint64_t sector, const uint8_t *given)
{
	const unsigned ss = c->sector_size, step = ss >> 9;

	for (size_t off = 0; off < len; off += ss, sector += step) {
		uint8_t iv[MAX_IV];
		int outl, r = 0;

		if (given)
			memcpy(iv, given + off / ss * 16, 16);
		else
			r = make_iv(c, x, sector >> c->large_shift, iv);
		if (r)
			return r;
		if (c->ak) {
			bs_aes_cbc_encrypt(c->ak, iv, in + off, out + off, ss);
			continue;
		}
		if (!EVP_CipherInit_ex2(x->cbc_enc, NULL, NULL, iv, 1, NULL) ||
		    !EVP_CipherUpdate(x->cbc_enc, out + off, &outl, in + off, (int)ss) ||
		    outl != (int)ss)
			return -EIO;
	}
	return 0;
}

static int crypt_common(struct bs_sector_cipher *c, bool encrypt, const void *in, void *out,
			size_t len, uint64_t sector, const uint8_t *ivs)
{
	struct cctx *x;
	int r;

	if (len % c->sector_size)
		return -EINVAL;
	if (c->null_cipher) {
		if (out != in)
			memmove(out, in, len);
		return 0;
	}
	x = cctx_get(c);
	if (!x)
		return -ENOMEM;
	if (c->spec.iv == BS_IV_NONE) {
		r = data_ecb(c, x, encrypt, in, out, len);
	} else if (!encrypt && !strcmp(c->spec.chain, "cbc")) {
		r = reserve(x, len);
		if (!r)
			r = cbc_decrypt(c, x, in, out, len, sector, ivs);
	} else if (!strcmp(c->spec.chain, "cbc")) {
		r = cbc_encrypt(c, x, in, out, len, sector, ivs);
	} else {
		const size_t piece = XTS_PIECE / c->sector_size * c->sector_size;

		r = c->xk ? 0 : reserve(x, piece + 16 * (piece / c->sector_size));
		if (!r)
			r = xts_crypt(c, x, encrypt, in, out, len, sector, ivs);
	}
	cctx_put(c, x);
	return r;
}

int bs_sector_cipher_crypt(struct bs_sector_cipher *c, bool encrypt, const void *in, void *out,
			   size_t len, uint64_t sector)
{
	return crypt_common(c, encrypt, in, out, len, sector, NULL);
}

int bs_sector_cipher_crypt_ivs(struct bs_sector_cipher *c, bool encrypt, const void *in, void *out,
			       size_t len, const uint8_t *ivs)
{
	if (c->null_cipher || c->spec.iv == BS_IV_NONE)
		return -EINVAL; /* no IV to give */
	return crypt_common(c, encrypt, in, out, len, 0, ivs);
}

unsigned bs_sector_cipher_iv_size(const struct bs_sector_cipher *c)
{
	return c->null_cipher || c->spec.iv == BS_IV_NONE ? 0 : c->iv_size;
}

int bs_sector_cipher_ivs(struct bs_sector_cipher *c, uint64_t sector, size_t nsec, uint8_t *out)
{
	const unsigned step = c->sector_size >> 9;
	struct cctx *x;
	int r = 0;

	if (c->null_cipher || c->spec.iv == BS_IV_NONE)
		return -EINVAL;
	x = cctx_get(c);
	if (!x)
		return -ENOMEM;
	for (size_t i = 0; i < nsec && !r; i++, sector += step)
		r = make_iv(c, x, sector >> c->large_shift, out + (size_t)c->iv_size * i);
	cctx_put(c, x);
	return r;
}
