/*
 * cgd.h - NetBSD cgd(4) volumes: cgdconfig(8) parameters files and their keys.
 *
 * A cgd volume has no header: sector 0 of the device is encrypted block 0, and the volume is
 * the whole device.  Everything needed to open it is in a parameters file, for example
 *
 *     algorithm aes-cbc;
 *     iv-method encblkno1;
 *     keylength 192;
 *     verify_method none;
 *     keygen storedkey key AAAAwC8jjqDvqdfD9Xu0Bl9oFhZ7Y33VX9 \
 *                          ...;
 *
 * The syntax and encodings are those of NetBSD's sbin/cgdconfig (cgdlex.l, cgdparse.y,
 * params.c, utils.c): statements end with ';' or a newline, '#' starts a comment that runs to
 * the next ';' or newline, a backslash before a newline joins lines, and a keygen statement
 * takes one statement or a brace-enclosed block.  A "bits" value (key, salt) is base64 of a
 * 32-bit big-endian bit count followed by the bits; long values are split over several words.
 * Several keygen statements are combined by XOR.
 *
 * Supported: algorithms aes-cbc (128, 192, 256 bits) and aes-xts (256, 512 bits); IV methods
 * encblkno1 (default), encblkno8 and its old name encblkno (cbc only; cgd uses encblkno1 for
 * xts, which is plain XTS with the block number as tweak); blocksize 128 or absent; keygens
 * storedkey, pkcs5_pbkdf2/sha1, the old pkcs5_pbkdf2 (PBKDF2 with its block index counted
 * from 0), randomkey and urandomkey, and the deprecated keygen_method/keygen_salt/
 * keygen_iterations/xor_key statements; verify methods none and re-enter.  Parsed and refused
 * with a reason: other algorithms, keygens shell_cmd and argon2id, shared keys, verify
 * methods disklabel, ffs, mbr and gpt.
 */
#ifndef BS_FORMATS_CGD_H
#define BS_FORMATS_CGD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

/* sbin/cgdconfig/params.c */
#define CGD_DEFAULT_IVMETHOD	"encblkno1" /* params_filldefaults() */
#define CGD_DEFAULT_SALT_BITS	128	    /* DEFAULT_SALTLEN */
#define CGD_DEFAULT_PBKDF2_MSEC 2000	    /* DEFAULT_ITERATION_TIME, 2000000 us */
#define CGD_DEFAULT_KEYLEN_CBC	128	    /* crypto_defaults[]: aes-cbc */
#define CGD_DEFAULT_KEYLEN_XTS	256	    /* crypto_defaults[]: aes-xts */
#define CGD_WRAP_COL		50	    /* print_kvpair_b64(): wrap base64 past this column */
#define CGD_TAB_COL		8	    /* keygen block indent */
/* sbin/cgdconfig/cgdparse.y: deprecated keygen_* statements default to 128 iterations */
#define CGD_DEPRECATED_ITERATIONS 128
/* sys/dev/cgd_crypto.c: the only cipher block size AES takes (in bits) */
#define CGD_AES_BLOCKSIZE 128

#define CGD_PARAMS_MAX	 (64u << 10) /* largest parameters file accepted */
#define CGD_KEY_MAX_BITS 512

enum cgd_keygen_method {
	CGD_KG_STOREDKEY,
	CGD_KG_PBKDF2_SHA1, /* "pkcs5_pbkdf2/sha1" */
	CGD_KG_PBKDF2_OLD,  /* "pkcs5_pbkdf2": the pre-2.0 block index bug, kept for old files */
	CGD_KG_RANDOMKEY,
	CGD_KG_URANDOMKEY,
	CGD_KG_SHELL_CMD, /* parsed, refused */
	CGD_KG_ARGON2ID,  /* parsed, refused */
};

enum cgd_verify {
	CGD_VERIFY_UNSET = -1,
	CGD_VERIFY_NONE,
	CGD_VERIFY_DISKLABEL,
	CGD_VERIFY_FFS,
	CGD_VERIFY_REENTER,
	CGD_VERIFY_MBR,
	CGD_VERIFY_GPT,
};

/* A bit string (cgdconfig's bits_t); the bytes are in locked memory. */
struct cgd_bits {
	uint8_t *data; /* (nbits + 7) / 8 bytes, or NULL */
	uint32_t nbits;
};

struct cgd_keygen {
	enum cgd_keygen_method method;
	int64_t iterations; /* -1: not given */
	struct cgd_bits salt, key;
	bool has_cmd, has_argon2, shared;
	struct cgd_keygen *next;
};

struct cgd_params {
	char algorithm[32]; /* "" when not given */
	char ivmethod[16];  /* "" when not given */
	int64_t keylen;	    /* bits; -1 when not given */
	int64_t blocksize;  /* bits; -1 when not given */
	enum cgd_verify verify;
	struct cgd_keygen *keygens; /* in file order; XORed */
};

/*
 * Parses a parameters file (TEXT, LEN bytes, may hold keys: keep it in locked memory).  On
 * error returns -EINVAL and writes one line to ERR ("line N: ..."); the error never quotes
 * key material.
 */
int cgd_params_parse(const char *text, size_t len, struct cgd_params **out, struct strbuf *err);
void cgd_params_free(struct cgd_params *p);

/*
 * Fills the defaults cgdconfig fills (iv-method, verify_method, keylength) and checks that
 * blkstack can open a volume with P.  0, or -EINVAL with one line in ERR.
 */
int cgd_params_check(struct cgd_params *p, struct strbuf *err);

/* Writes P in cgdconfig's layout (OUT should be a secure strbuf: it may get a key). */
void cgd_params_write(const struct cgd_params *p, struct strbuf *out);

/*
 * New parameters for ALG and KEYLEN bits (0: the default) with one keygen METHOD (storedkey:
 * a random key; pkcs5_pbkdf2/sha1: a random 128-bit salt and ITERATIONS, 0 to calibrate to
 * two seconds as cgdconfig does; randomkey or urandomkey), IVMETHOD (NULL: encblkno1) and
 * verify method VERIFY.  0, or -EINVAL with one line in ERR.
 */
int cgd_params_generate(const char *alg, unsigned keylen, enum cgd_keygen_method method,
			uint32_t iterations, const char *ivmethod, enum cgd_verify verify,
			struct cgd_params **out, struct strbuf *err);

/* Keygen and verify method names as in parameters files; NULL when unknown. */
const char *cgd_keygen_name(enum cgd_keygen_method m);
int cgd_keygen_from_name(const char *name, enum cgd_keygen_method *out);
const char *cgd_verify_name(enum cgd_verify v);

/* Asks for the passphrase of a pbkdf2 keygen; returns it in locked memory, or -1. */
typedef int (*cgd_passphrase_fn)(void *arg, char **pass, size_t *len);

/*
 * The volume key of checked parameters P into KEY (keylen/8 bytes): every keygen's output,
 * XORed.  pbkdf2 keygens get their passphrase from ASK (called once per such keygen; the
 * passphrase counts up to its first NUL, as cgdconfig's strlen() does).  0, or -errno with
 * *why (-ECANCELED when ASK failed).
 */
int cgd_params_key(const struct cgd_params *p, cgd_passphrase_fn ask, void *arg, uint8_t *key,
		   const char **why);

/*
 * PKCS #5 PBKDF2 with HMAC-SHA1 as cgdconfig's pkcs5_pbkdf2.c computes it; OLD_INDEX counts
 * the blocks from 0 (keygen "pkcs5_pbkdf2") instead of 1 (RFC 2898, "pkcs5_pbkdf2/sha1").
 */
int cgd_pbkdf2_sha1(const void *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
		    uint32_t iterations, bool old_index, uint8_t *out, size_t out_len);

/* Iterations of pkcs5_pbkdf2/sha1 that take about MSEC milliseconds for KEY_BYTES. */
uint32_t cgd_pbkdf2_calibrate(size_t key_bytes, unsigned msec);

/* The crypt table cipher for checked parameters: aes-cbc-encblkno1, aes-xts-plain64, ... */
const char *cgd_params_dm_cipher(const struct cgd_params *p);

/* base64 as cgdconfig writes it (standard alphabet, '=' padding); for tests. */
int cgd_base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len);
void cgd_base64_encode(const uint8_t *in, size_t len, struct strbuf *out);

#endif
