/*
 * test_plain.c - cryptsetup plain-mode key derivation (formats/plain.c).
 *
 * The answers are the volume keys the Linux kernel received from cryptsetup 2.6.1
 * `open --type plain` in linux-lab, read back with `dmsetup table --showkeys`
 * (tests/fixtures/plain/kdf.txt, made by kdf-lab1.sh and kdf-lab2.sh there); each was also
 * recomputed with Python's hashlib as H(P) || H("A" P) || H("AA" P) ...  They cover the
 * default hash (ripemd160), keys longer than one digest (sha1, sha256, ripemd160 with a
 * 512-bit key), truncation (sha512 to 128 bits), NAME:LEN, "plain", passphrases with CR, NUL
 * and newlines, and key files used directly.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "formats/plain.h"
#include "util/parse.h"

/* The first 100 bytes of tests/fixtures/plain/kdf-keyfile. */
static const char keyfile[] = "binarykeyfile-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
			      "OPQRSTUVWXYZ!\"#$%&()*+,-./:;<=>?@[]^_{}~";

static void check(const char *hash, const void *pass, size_t pass_len, const char *want)
{
	uint8_t key[64], exp[64];
	size_t n = strlen(want) / 2;
	const char *why = NULL;

	assert_int_equal(bs_hex_decode(want, exp, n), 0);
	memset(key, 0xaa, sizeof(key));
	if (bs_plain_derive_key(hash, pass, pass_len, key, n, &why)) {
		print_error("%s: %s\n", hash ? hash : "(key file)", why);
		fail();
	}
	assert_memory_equal(key, exp, n);
	assert_int_equal(key[n < sizeof(key) ? n : 0], n < sizeof(key) ? 0xaa : key[0]);
}

static void test_hashes(void **state)
{
	(void)state;
	/* "stdin default": aes-cbc-essiv:sha256, 256 bits, ripemd160 */
	check("ripemd160", "secret", 6,
	      "cd98bf0202ef07e38e87f6bd9445e5e7331e2c78104677e9f86c16552856dae8");
	/* "stdin sha256 xts512" */
	check("sha256", "secret", 6,
	      "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
	      "40a1e4d40dbee92612950e2d0657f16e2ef366d37d0adf587d3845ac27593b3a");
	/* "stdin sha512 k128" */
	check("sha512", "secret", 6, "bd2b1aaf7ef4f09be9f52ce2d8d59967");
	/* "stdin sha1 xts512": four 20-byte rounds, the last cut */
	check("sha1", "secret", 6,
	      "e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4308510fd5b1f140c6139710a"
	      "a75ef64f19a6add6e297a462536dd62664ccb57c1e215021c995d3ff7149c2bf");
	/* "stdin ripemd xts512" */
	check("ripemd160", "secret", 6,
	      "cd98bf0202ef07e38e87f6bd9445e5e7331e2c78104677e9f86c16552856dae8"
	      "42f4bc1356932cda897ab4c364dc2331a15d73743394c2f920420ab373d7bc38");
	/* "stdin sha256:16": 16 hashed bytes, 16 zero bytes */
	check("sha256:16", "secret", 6,
	      "2bb80d537b1da3e38bd30361aa85568600000000000000000000000000000000");
	/* "keyfile stdin default": a key file on stdin keeps its newlines and is hashed */
	check("ripemd160", "line1\nline2\n", 12,
	      "45a54d2e30ad493504959686461e324280a041824c3cd34ee7bb19a918971818");
	/* "keyfile stdin size4" and "stdin pass keyfile-size 3": --keyfile-size cuts first */
	check("ripemd160", "line", 4,
	      "bdcea5a60fd88b92fbea89d81e4949381526c43aeff51a87198723e5a335257c");
	check("ripemd160", "sec", 3,
	      "1068c66c6ccb058e4594d76141dc94cf2e6111447aaea5b9b5f042c43f22824f");
	/* "stdin no newline", "stdin crlf" (the CR stays), "stdin nul" (all three bytes) */
	check("ripemd160", "abc", 3,
	      "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc7e368e412f739ece724fc229");
	check("ripemd160", "abc\r", 4,
	      "1ab0b9702a7e599d86a24867cabcd61799ef8b66cc66e8042372a13b44bef839");
	check("sha256", "a\0b", 3,
	      "59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138");
}

static void test_plain_and_keyfiles(void **state)
{
	(void)state;
	/* "stdin plain": the passphrase, zero-padded */
	check("plain", "secret", 6,
	      "7365637265740000000000000000000000000000000000000000000000000000");
	/* ... and cut */
	check("plain", "0123456789abcdefghijklmnopqrstuvwxyz", 36,
	      "303132333435363738396162636465666768696a6b6c6d6e6f70717273747576");
	check("plain:4", "secret", 6,
	      "7365637200000000000000000000000000000000000000000000000000000000");
	/* "keyfile default": the first 32 bytes of the file */
	check(NULL, keyfile, sizeof(keyfile) - 1,
	      "62696e6172796b657966696c652d303132333435363738396162636465666768");
	/* "keyfile off3" */
	check(NULL, keyfile + 3, sizeof(keyfile) - 4,
	      "6172796b657966696c652d303132333435363738396162636465666768696a6b");
	/* "keyfile xts512" */
	check(NULL, keyfile, sizeof(keyfile) - 1,
	      "62696e6172796b657966696c652d303132333435363738396162636465666768"
	      "696a6b6c6d6e6f707172737475767778797a4142434445464748494a4b4c4d4e");
	/* "keyfile stdin plain 45": --key-file=- --hash plain reads the key directly */
	check(NULL, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH\n", 45,
	      "303132333435363738396162636465666768696a6b6c6d6e6f70717273747576");
}

static void bad(const char *hash, const void *pass, size_t pass_len, size_t key_len,
		const char *needle)
{
	uint8_t key[64];
	const char *why = NULL;

	memset(key, 0x55, sizeof(key));
	if (!bs_plain_derive_key(hash, pass, pass_len, key, key_len, &why)) {
		print_error("%s accepted\n", hash ? hash : "(key file)");
		fail();
	}
	assert_non_null(why);
	if (!strstr(why, needle)) {
		print_error("%s: \"%s\" does not say \"%s\"\n", hash, why, needle);
		fail();
	}
	/* nothing of the key is left behind */
	for (size_t i = 0; i < key_len; i++)
		assert_true(key[i] == 0 || key[i] == 0x55);
}

static void test_refusals(void **state)
{
	(void)state;
	/* "sha256:40" on a 256-bit key: cryptsetup says "Key processing error" */
	bad("sha256:40", "x", 1, 32, "larger than the key");
	/* "nosuch": "Hash algorithm nosuch not supported." */
	bad("nosuch", "x", 1, 32, "not supported");
	bad("shake256", "x", 1, 32, "not supported");
	bad("", "x", 1, 32, "invalid hash");
	bad(":16", "x", 1, 32, "invalid hash");
	bad("sha256:", "x", 1, 32, "invalid hash length");
	bad("sha256:0", "x", 1, 32, "invalid hash length");
	bad("sha256:x", "x", 1, 32, "invalid hash length");
	bad("sha256:-1", "x", 1, 32, "invalid hash length");
	bad("sha256:99999999999999999999999", "x", 1, 32, "invalid hash length");
	bad("plain:10", "secret", 6, 32, "shorter");
	bad("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "x", 1, 32,
	    "invalid hash");
	/* "keyfile short": "Cannot read requested amount of data." */
	bad(NULL, "0123456789", 10, 32, "shorter than the key");
	bad("sha256", "x", 1, 0, "zero");
}

static void check_cipher(const char *in, const char *want)
{
	char out[128];
	const char *why = NULL;

	if (bs_plain_cipher_spec(in, out, sizeof(out), &why)) {
		print_error("%s: %s\n", in, why);
		fail();
	}
	assert_string_equal(out, want);
}

static void bad_cipher(const char *in, const char *needle)
{
	char out[128];
	const char *why = NULL;

	assert_int_equal(bs_plain_cipher_spec(in, out, sizeof(out), &why), -EINVAL);
	if (!strstr(why, needle)) {
		print_error("%s: \"%s\" does not say \"%s\"\n", in, why, needle);
		fail();
	}
}

static void test_ciphers(void **state)
{
	char small[8];
	const char *why;

	(void)state;
	check_cipher(BS_PLAIN_DEFAULT_CIPHER, "aes-cbc-essiv:sha256");
	check_cipher("aes-xts-plain64", "aes-xts-plain64");
	/* "cipher aes": the kernel table said aes-cbc-plain */
	check_cipher("aes", "aes-cbc-plain");
	check_cipher("capi:xts(aes)-plain64", "capi:xts(aes)-plain64");
	bad_cipher("twofish", "unsupported cipher");
	bad_cipher("aes-ctr-plain64", "unsupported chaining mode");
	bad_cipher("aes-xts", "IV mechanism required");
	bad_cipher("", "invalid cipher");
	bad_cipher("aes xts", "invalid cipher");
	assert_int_equal(bs_plain_cipher_spec("aes-xts-plain64", small, sizeof(small), &why),
			 -EINVAL);
	assert_non_null(strstr(why, "too long"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hashes),
	    cmocka_unit_test(test_plain_and_keyfiles),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_ciphers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
