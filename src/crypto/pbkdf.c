/*
 * pbkdf.c - see pbkdf.h.
 */
#include "crypto/pbkdf.h"

#include <argon2.h>
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>
#include <time.h>

#include "util/secmem.h"

#define PBKDF2_MIN_ITER	     1000u
#define LUKS_ARGON2_MIN_TIME 4u
#define LUKS_ARGON2_MIN_MEM  32u
#define LUKS_ARGON2_MAX_MEM  (4u << 20) /* 4 GiB in KiB, as cryptsetup's limit */

int bs_pbkdf_type_parse(const char *name, enum bs_pbkdf_type *out)
{
	if (!strcmp(name, "pbkdf2"))
		*out = BS_PBKDF2;
	else if (!strcmp(name, "argon2i"))
		*out = BS_ARGON2I;
	else if (!strcmp(name, "argon2id"))
		*out = BS_ARGON2ID;
	else
		return -EINVAL;
	return 0;
}

const char *bs_pbkdf_type_name(enum bs_pbkdf_type t)
{
	return t == BS_PBKDF2 ? "pbkdf2" : t == BS_ARGON2I ? "argon2i" : "argon2id";
}

/*
 * Argon2's working memory: its blocks are derived from the passphrase, and the last ones
 * give the key without it, so they stay out of core dumps and are wiped (libargon2 clears
 * them before the free callback too).  Not locked: it may be gigabytes.
 */
static int argon2_alloc(uint8_t **memory, size_t bytes)
{
	*memory = bs_secure_alloc_unlocked(bytes);
	return *memory ? ARGON2_OK : ARGON2_MEMORY_ALLOCATION_ERROR;
}

static void argon2_free(uint8_t *memory, size_t bytes)
{
	(void)bytes;
	bs_secure_free(memory);
}

int bs_pbkdf_derive(const struct bs_pbkdf *p, const void *pass, size_t pass_len, const void *salt,
		    size_t salt_len, void *out, size_t out_len)
{
	if (p->type == BS_PBKDF2) {
		const EVP_MD *md = EVP_get_digestbyname(p->hash);

		if (!md || p->iterations == 0 || pass_len > INT32_MAX || salt_len > INT32_MAX ||
		    out_len > INT32_MAX)
			return -EINVAL;
		if (!PKCS5_PBKDF2_HMAC(pass, (int)pass_len, salt, (int)salt_len, (int)p->iterations,
				       md, (int)out_len, out))
			return -EIO;
		return 0;
	}
	if (p->iterations == 0 || p->memory_kb < 8 * p->parallel || p->parallel == 0 ||
	    p->parallel > 16 || p->memory_kb > LUKS_ARGON2_MAX_MEM)
		return -EINVAL;
	if (pass_len > UINT32_MAX || salt_len > UINT32_MAX || out_len > UINT32_MAX)
		return -EINVAL;
	argon2_context ctx = {
	    .out = out,
	    .outlen = (uint32_t)out_len,
	    .pwd = (uint8_t *)(uintptr_t)pass, /* not written: no ARGON2_FLAG_CLEAR_PASSWORD */
	    .pwdlen = (uint32_t)pass_len,
	    .salt = (uint8_t *)(uintptr_t)salt,
	    .saltlen = (uint32_t)salt_len,
	    .t_cost = p->iterations,
	    .m_cost = p->memory_kb,
	    .lanes = p->parallel,
	    .threads = p->parallel,
	    .version = ARGON2_VERSION_13,
	    .allocate_cbk = argon2_alloc,
	    .free_cbk = argon2_free,
	    .flags = ARGON2_DEFAULT_FLAGS,
	};
	int r = argon2_ctx(&ctx, p->type == BS_ARGON2I ? Argon2_i : Argon2_id);

	if (r == ARGON2_MEMORY_ALLOCATION_ERROR)
		return -ENOMEM;
	return r == ARGON2_OK ? 0 : -EINVAL;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Time of one derivation in ms, or a negative errno. */
static double time_one(const struct bs_pbkdf *p, size_t key_len)
{
	static const char pass[] = "blkstack-benchmark";
	static const char salt[32];
	uint8_t *out = bs_secure_alloc(key_len);
	double t0 = now_ms();
	int r;

	if (!out)
		return -ENOMEM;
	r = bs_pbkdf_derive(p, pass, sizeof(pass) - 1, salt, sizeof(salt), out, key_len);
	bs_secure_free(out);
	return r ? r : now_ms() - t0;
}

int bs_pbkdf_benchmark(struct bs_pbkdf *p, size_t key_len, uint32_t iter_time_ms)
{
	double t;

	if (iter_time_ms == 0)
		iter_time_ms = 1;
	if (p->type == BS_PBKDF2) {
		uint32_t probe = 1u << 14;
		double per;

		/* Grow the probe until it takes long enough to measure. */
		for (;;) {
			p->iterations = probe;
			t = time_one(p, key_len);
			if (t < 0)
				return (int)t;
			if (t >= 40 || probe >= (1u << 26))
				break;
			probe *= 4;
		}
		per = t / probe;
		double want = iter_time_ms / (per > 0 ? per : 1e-9);

		p->iterations = want > UINT32_MAX	 ? UINT32_MAX
				: want < PBKDF2_MIN_ITER ? PBKDF2_MIN_ITER
							 : (uint32_t)want;
		return 0;
	}
	/* Argon2: keep memory, scale the time cost; if the minimum is too slow, shrink memory. */
	if (p->parallel == 0)
		p->parallel = 4;
	if (p->memory_kb == 0)
		p->memory_kb = 1u << 20;
	if (p->memory_kb < LUKS_ARGON2_MIN_MEM)
		p->memory_kb = LUKS_ARGON2_MIN_MEM;
	for (;;) {
		p->iterations = LUKS_ARGON2_MIN_TIME;
		t = time_one(p, key_len);
		if (t == -ENOMEM && p->memory_kb > LUKS_ARGON2_MIN_MEM) {
			p->memory_kb /= 2;
			continue;
		}
		if (t < 0)
			return (int)t;
		if (t <= iter_time_ms || p->memory_kb <= LUKS_ARGON2_MIN_MEM)
			break;
		p->memory_kb = (uint32_t)(p->memory_kb * (iter_time_ms / t));
		if (p->memory_kb < LUKS_ARGON2_MIN_MEM)
			p->memory_kb = LUKS_ARGON2_MIN_MEM;
	}
	double want = LUKS_ARGON2_MIN_TIME * (iter_time_ms / (t > 0 ? t : 1e-3));

	p->iterations = want > 1000000		      ? 1000000
			: want < LUKS_ARGON2_MIN_TIME ? LUKS_ARGON2_MIN_TIME
						      : (uint32_t)want;
	return 0;
}
