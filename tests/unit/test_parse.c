/*
 * test_parse.c - strict number parsing and dm-style argument splitting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/parse.h"

static void test_u64(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(bs_parse_u64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(bs_parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_not_equal(bs_parse_u64("18446744073709551616", &v), 0);
	assert_int_not_equal(bs_parse_u64("", &v), 0);
	assert_int_not_equal(bs_parse_u64("-1", &v), 0);
	assert_int_not_equal(bs_parse_u64("+1", &v), 0);
	assert_int_not_equal(bs_parse_u64("12a", &v), 0);
	assert_int_not_equal(bs_parse_u64(" 1", &v), 0);
	assert_int_not_equal(bs_parse_u64("0x10", &v), 0);
}

static void test_size(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(bs_parse_size("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(bs_parse_size("64K", &v), 0);
	assert_true(v == 65536);
	assert_int_equal(bs_parse_size("64KiB", &v), 0);
	assert_true(v == 65536);
	assert_int_equal(bs_parse_size("1m", &v), 0);
	assert_true(v == 1048576);
	assert_int_equal(bs_parse_size("8s", &v), 0);
	assert_true(v == 4096);
	assert_int_not_equal(bs_parse_size("1X", &v), 0);
	assert_int_not_equal(bs_parse_size("K", &v), 0);
	assert_int_not_equal(bs_parse_size("99999999999999999P", &v), 0);
}

static void test_split(void **state)
{
	char line[] = "  linear  /dev/a\\ b 0\\\\ x\t";
	unsigned argc;
	char **argv;

	(void)state;
	assert_int_equal(bs_split_args(line, &argc, &argv), 0);
	assert_int_equal(argc, 4);
	assert_string_equal(argv[0], "linear");
	assert_string_equal(argv[1], "/dev/a b");
	assert_string_equal(argv[2], "0\\");
	assert_string_equal(argv[3], "x");
	assert_null(argv[4]);
	free(argv);
}

static void test_hex(void **state)
{
	uint8_t b[4];
	char s[9];

	(void)state;
	assert_int_equal(bs_hex_decode("deadBEEF", b, 4), 0);
	assert_int_equal(b[0], 0xde);
	assert_int_equal(b[3], 0xef);
	bs_hex_encode(b, 4, s);
	assert_string_equal(s, "deadbeef");
	assert_int_not_equal(bs_hex_decode("deadbee", b, 4), 0);
	assert_int_not_equal(bs_hex_decode("deadbeeg", b, 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_u64),
	    cmocka_unit_test(test_size),
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
