/*
 * luks_util.c - helpers shared by LUKS1 and LUKS2: base64, UUIDs, key slot material (AF
 * split + sector encryption), wiping, PBKDF parameters.  See luks_int.h.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/af.h"
#include "crypto/cipher.h"
#include "formats/luks_int.h"
#include "util/secmem.h"

int luks_err(struct strbuf *err, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* messages quote hostile header text: keep them one printable line */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	sb_reset(err);
	sb_puts(err, msg);
	return code;
}

/* ---- UUIDs ------------------------------------------------------------------------------ */

void luks_uuid_generate(char out[37])
{
	uint8_t u[16];

	if (RAND_bytes(u, sizeof(u)) != 1)
		abort();	     /* no randomness: nothing sensible can be formatted */
	u[6] = (u[6] & 0x0f) | 0x40; /* version 4 (RFC 4122 4.4) */
	u[8] = (u[8] & 0x3f) | 0x80; /* variant 10 */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

bool luks_uuid_valid(const char *s)
{
	static const int dash[] = {8, 13, 18, 23};

	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0, d = 0; i < 36; i++) {
		if (d < 4 && i == dash[d]) {
			if (s[i] != '-')
				return false;
			d++;
		} else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
			     (s[i] >= 'A' && s[i] <= 'F'))) {
			return false;
		}
	}
	return true;
}

/* ---- base64 ----------------------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *luks_b64_encode(const uint8_t *in, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1), *p = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		*p++ = b64[(v >> 18) & 63];
		*p++ = b64[(v >> 12) & 63];
		*p++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		*p++ = i + 2 < n ? b64[v & 63] : '=';
	}
	*p = '\0';
	return out;
}

static int b64_val(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

int luks_b64_decode(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(s), o = 0;

	if (n % 4)
		return -EINVAL;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad) /* '=' followed by data */
				return -EINVAL;
			v[k] = b64_val(s[i + k]);
			if (v[k] < 0)
				return -EINVAL;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		size_t take = 3 - (size_t)pad;

		if (o + take > max)
			return -EINVAL;
		out[o++] = (uint8_t)(w >> 16);
		if (take > 1)
			out[o++] = (uint8_t)(w >> 8);
		if (take > 2)
			out[o++] = (uint8_t)w;
	}
	*len = o;
	return 0;
}

/* ---- small things ----------------------------------------------------------------------- */

bool luks_printable(const char *s, size_t max)
{
	for (size_t i = 0; i < max && s[i]; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

size_t luks_hash_size(const char *hash)
{
	const EVP_MD *md = hash && *hash ? EVP_get_digestbyname(hash) : NULL;
	int n = md ? EVP_MD_get_size(md) : 0;

	return n > 0 ? (size_t)n : 0;
}

uint64_t luks_af_sectors(size_t key_len, unsigned stripes)
{
	return ((uint64_t)key_len * stripes + LUKS_SECTOR_SIZE - 1) / LUKS_SECTOR_SIZE;
}

void luks_hexdump(struct strbuf *out, const uint8_t *b, size_t n, unsigned per_line,
		  const char *indent)
{
	for (size_t i = 0; i < n; i++) {
		if (i && per_line && i % per_line == 0) {
			sb_putc(out, '\n');
			sb_puts(out, indent);
		}
		sb_printf(out, "%02x ", b[i]);
	}
	sb_putc(out, '\n');
}

int luks_cipher_split(const char *spec, char *name, size_t nlen, char *mode, size_t mlen)
{
	const char *dash = strchr(spec, '-');
	size_t n = dash ? (size_t)(dash - spec) : strlen(spec);

	if (!strncmp(spec, "capi:", 5) || n == 0 || n >= nlen || (dash && strlen(dash + 1) >= mlen))
		return -EINVAL;
	memcpy(name, spec, n);
	name[n] = '\0';
	snprintf(mode, mlen, "%s", dash ? dash + 1 : "");
	return 0;
}

int luks_cipher_check(const char *spec, size_t key_len, struct strbuf *err)
{
	struct bs_crypt_spec s;
	const char *why;

	if (bs_crypt_spec_parse(spec, &s, &why))
		return luks_err(err, -EINVAL, "cipher %s: %s", spec, why);
	if (!strcmp(s.cipher, "cipher_null"))
		return luks_err(err, -EINVAL, "cipher %s: cipher_null is not supported for LUKS",
				spec);
	if (!bs_crypt_key_size_valid(&s, key_len))
		return luks_err(err, -EINVAL, "cipher %s: invalid key size %zu bits", spec,
				key_len * 8);
	return 0;
}

/* ---- key material ----------------------------------------------------------------------- */

static int material_cipher(const char *spec, const uint8_t *key, size_t key_len,
			   struct bs_sector_cipher **c, struct strbuf *err)
{
	struct bs_crypt_spec s;
	const char *why;
	int r = luks_cipher_check(spec, key_len, err);

	if (r)
		return r;
	bs_crypt_spec_parse(spec, &s, &why);
	r = bs_sector_cipher_new(&s, key, key_len, LUKS_SECTOR_SIZE, false, c, &why);
	if (r)
		return luks_err(err, r, "cipher %s: %s", spec, why);
	return 0;
}

int luks_material_store(struct bs_bdev *dev, uint64_t offset, const char *cipher,
			const uint8_t *key, size_t key_len, const uint8_t *vk, size_t vk_len,
			unsigned stripes, const char *af_hash, struct strbuf *err)
{
	size_t len = (size_t)luks_af_sectors(vk_len, stripes) * LUKS_SECTOR_SIZE;
	struct bs_sector_cipher *c = NULL;
	uint8_t *buf;
	int r;

	r = material_cipher(cipher, key, key_len, &c, err);
	if (r)
		return r;
	buf = bs_secure_alloc(len);
	if (!buf) {
		bs_sector_cipher_free(c);
		return luks_err(err, -ENOMEM, "out of memory");
	}
	r = bs_af_split(vk, vk_len, stripes, af_hash, buf);
	if (r)
		luks_err(err, r, "AF split with %s failed", af_hash);
	if (!r && (r = bs_sector_cipher_crypt(c, true, buf, buf, len, 0)))
		luks_err(err, r, "cannot encrypt the key material");
	if (!r && (r = bs_bdev_write(dev, buf, len, offset, BS_IO_FUA)))
		luks_err(err, r, "%s: cannot write key material at offset %llu: %s", dev->name,
			 (unsigned long long)offset, strerror(-r));
	bs_secure_free(buf);
	bs_sector_cipher_free(c);
	return r;
}

int luks_material_load(struct bs_bdev *dev, uint64_t offset, const char *cipher, const uint8_t *key,
		       size_t key_len, uint8_t *vk, size_t vk_len, unsigned stripes,
		       const char *af_hash, struct strbuf *err)
{
	size_t len = (size_t)luks_af_sectors(vk_len, stripes) * LUKS_SECTOR_SIZE;
	struct bs_sector_cipher *c = NULL;
	uint8_t *buf;
	int r;

	r = material_cipher(cipher, key, key_len, &c, err);
	if (r)
		return r;
	buf = bs_secure_alloc(len);
	if (!buf) {
		bs_sector_cipher_free(c);
		return luks_err(err, -ENOMEM, "out of memory");
	}
	r = bs_bdev_read(dev, buf, len, offset);
	if (r)
		luks_err(err, r, "%s: cannot read key material at offset %llu: %s", dev->name,
			 (unsigned long long)offset, strerror(-r));
	if (!r && (r = bs_sector_cipher_crypt(c, false, buf, buf, len, 0)))
		luks_err(err, r, "cannot decrypt the key material");
	if (!r && (r = bs_af_merge(buf, vk_len, stripes, af_hash, vk)))
		luks_err(err, r, "AF merge with %s failed", af_hash);
	bs_secure_free(buf);
	bs_sector_cipher_free(c);
	return r;
}

int luks_wipe(struct bs_bdev *dev, uint64_t off, uint64_t len, bool random, struct strbuf *err)
{
	const size_t chunk = 1u << 20;
	uint8_t *buf = calloc(1, chunk);
	int r = 0;

	if (!buf)
		return luks_err(err, -ENOMEM, "out of memory");
	while (len && !r) {
		size_t n = len < chunk ? (size_t)len : chunk;

		if (random && RAND_bytes(buf, (int)n) != 1)
			r = -EIO;
		if (!r)
			r = bs_bdev_write(dev, buf, n, off, 0);
		off += n;
		len -= n;
	}
	free(buf);
	if (r)
		return luks_err(err, r, "%s: cannot wipe the header area: %s", dev->name,
				strerror(-r));
	return 0;
}

/* ---- PBKDF parameters ------------------------------------------------------------------- */

static uint32_t phys_memory_half_kb(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	uint64_t kb;

	if (pages <= 0 || psz <= 0)
		return LUKS2_DEFAULT_MEMORY_KB;
	kb = (uint64_t)pages * (uint64_t)psz / 1024 / 2;
	return kb > UINT32_MAX ? UINT32_MAX : (uint32_t)kb;
}

int luks_pbkdf_resolve(const struct luks_pbkdf_opts *o, int version, size_t key_len,
		       struct bs_pbkdf *p, struct strbuf *err)
{
	const char *hash = o->hash[0] ? o->hash : LUKS_DEFAULT_HASH;
	uint32_t t = o->iter_time_ms ? o->iter_time_ms : LUKS_DEFAULT_ITER_TIME;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int r;

	memset(p, 0, sizeof(*p));
	p->type = o->type_set ? o->type : version == 1 ? BS_PBKDF2 : BS_ARGON2ID;
	if (version == 1 && p->type != BS_PBKDF2)
		return luks_err(err, -EINVAL, "Requested PBKDF type is not supported for LUKS1.");
	if (!luks_hash_size(hash) || strlen(hash) >= sizeof(p->hash))
		return luks_err(err, -EINVAL, "Requested hash %s is not supported.", hash);
	strcpy(p->hash, hash);
	if (p->type == BS_PBKDF2) {
		if (o->memory_kb || o->parallel)
			return luks_err(err, -EINVAL,
					"PBKDF max memory or parallel threads must not be set "
					"with pbkdf2.");
		if (o->iterations) {
			if (o->iterations < LUKS_SLOT_ITERATIONS_MIN)
				return luks_err(err, -EINVAL,
						"Forced iteration count is too low for pbkdf2 "
						"(minimum is %u).",
						LUKS_SLOT_ITERATIONS_MIN);
			p->iterations = o->iterations;
			return 0;
		}
		r = bs_pbkdf_benchmark(p, key_len, t);
		if (r)
			return luks_err(err, r, "PBKDF2 benchmark failed: %s", strerror(-r));
		return 0;
	}
	p->memory_kb = o->memory_kb ? o->memory_kb : LUKS2_DEFAULT_MEMORY_KB;
	if (p->memory_kb > LUKS2_ARGON2_MAX_MEMORY)
		return luks_err(err, -EINVAL,
				"Requested maximum PBKDF memory cost is too high (maximum is %u "
				"kilobytes).",
				LUKS2_ARGON2_MAX_MEMORY);
	if (p->memory_kb < LUKS2_ARGON2_MIN_MEMORY)
		return luks_err(err, -EINVAL,
				"Forced memory cost is too low for %s (minimum is %u kilobytes).",
				bs_pbkdf_type_name(p->type), LUKS2_ARGON2_MIN_MEMORY);
	if (p->memory_kb > phys_memory_half_kb())
		p->memory_kb = phys_memory_half_kb();
	p->parallel = o->parallel ? o->parallel : LUKS2_DEFAULT_PARALLEL;
	if (p->parallel > LUKS2_ARGON2_MAX_THREADS)
		p->parallel = LUKS2_ARGON2_MAX_THREADS;
	if (cpus > 0 && p->parallel > (uint32_t)cpus)
		p->parallel = (uint32_t)cpus;
	if (p->memory_kb < 8 * p->parallel)
		p->memory_kb = 8 * p->parallel;
	if (o->iterations) {
		if (o->iterations < LUKS2_ARGON2_MIN_TIME)
			return luks_err(err, -EINVAL,
					"Forced iteration count is too low for %s (minimum is %u).",
					bs_pbkdf_type_name(p->type), LUKS2_ARGON2_MIN_TIME);
		p->iterations = o->iterations;
		return 0;
	}
	r = bs_pbkdf_benchmark(p, key_len, t);
	if (r)
		return luks_err(err, r, "%s benchmark failed: %s", bs_pbkdf_type_name(p->type),
				strerror(-r));
	return 0;
}

int luks_digest_iterations(const struct luks_pbkdf_opts *o, const char *hash, size_t key_len,
			   uint32_t *iter, struct strbuf *err)
{
	struct bs_pbkdf p = {.type = BS_PBKDF2};
	int r;

	if (o->iterations) { /* no benchmark: the minimum, as cryptsetup */
		*iter = LUKS_MKD_ITERATIONS_MIN;
		return 0;
	}
	snprintf(p.hash, sizeof(p.hash), "%s", hash);
	r = bs_pbkdf_benchmark(&p, key_len, LUKS_MKD_ITERATIONS_MS);
	if (r)
		return luks_err(err, r, "PBKDF2 benchmark failed: %s", strerror(-r));
	*iter = p.iterations < LUKS_MKD_ITERATIONS_MIN ? LUKS_MKD_ITERATIONS_MIN : p.iterations;
	return 0;
}
