/*
 * test_nbd.c - the NBD request-header parser and errno mapping (proto/nbd.c).
 *
 * Every command type, with the checks the protocol asks of a server: magic, unknown flags,
 * writes to a read-only export (EPERM), ranges beyond the export (EINVAL for reads, ENOSPC
 * for writes) including offset+length overflow, payloads above the limit (EOVERFLOW),
 * FLUSH with a range, DF without structured replies, FAST_ZERO (ENOTSUP), unknown commands.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/nbd.h"

#define SIZE   (1ull << 30)
#define MAXPAY (1u << 20)

static const struct nbd_export_limits rw = {
    .size = SIZE, .min_block = 512, .max_payload = MAXPAY, .readonly = false, .structured = false};
static const struct nbd_export_limits ro = {
    .size = SIZE, .min_block = 512, .max_payload = MAXPAY, .readonly = true, .structured = false};
static const struct nbd_export_limits sr = {
    .size = SIZE, .min_block = 512, .max_payload = MAXPAY, .readonly = false, .structured = true};

/* Writes a request header the way a client does: all big-endian. */
static void put(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static void header(uint8_t h[NBD_REQUEST_SIZE], uint32_t magic, uint16_t flags, uint16_t type,
		   uint64_t handle, uint64_t offset, uint32_t length)
{
	put(h, magic, 4);
	put(h + 4, flags, 2);
	put(h + 6, type, 2);
	put(h + 8, handle, 8);
	put(h + 16, offset, 8);
	put(h + 24, length, 4);
}

/* Parses a request; returns the result and leaves the NBD error in *err. */
static enum nbd_parse_result parse(const struct nbd_export_limits *lim, uint16_t flags,
				   uint16_t type, uint64_t offset, uint32_t length, uint32_t *err)
{
	uint8_t h[NBD_REQUEST_SIZE];
	struct nbd_request req;
	enum nbd_parse_result r;

	header(h, NBD_REQUEST_MAGIC, flags, type, 0x0102030405060708ull, offset, length);
	*err = 0xdeadbeef;
	memset(&req, 0xa5, sizeof(req));
	r = nbd_parse_request(h, lim, &req, err);
	if (r != NBD_PARSE_BAD_MAGIC) {
		/* The header is decoded whatever the verdict. */
		assert_int_equal(req.flags, flags);
		assert_int_equal(req.type, type);
		assert_true(req.handle == 0x0102030405060708ull);
		assert_true(req.offset == offset);
		assert_int_equal(req.length, length);
	}
	if (r == NBD_PARSE_OK)
		assert_int_equal(*err, 0);
	return r;
}

static void ok(const struct nbd_export_limits *lim, uint16_t flags, uint16_t type, uint64_t offset,
	       uint32_t length)
{
	uint32_t err;

	assert_int_equal(parse(lim, flags, type, offset, length, &err), NBD_PARSE_OK);
}

static void bad(const struct nbd_export_limits *lim, uint16_t flags, uint16_t type, uint64_t offset,
		uint32_t length, uint32_t want)
{
	uint32_t err;

	assert_int_equal(parse(lim, flags, type, offset, length, &err), NBD_PARSE_ERROR);
	assert_int_equal(err, want);
}

static void test_decode(void **state)
{
	uint8_t h[NBD_REQUEST_SIZE] = {
	    0x25, 0x60, 0x95, 0x13,			    /* magic */
	    0x00, 0x01,					    /* flags: FUA */
	    0x00, 0x01,					    /* WRITE */
	    0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33, /* handle */
	    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, /* offset 66048 */
	    0x00, 0x00, 0x10, 0x00,			    /* length 4096 */
	};
	struct nbd_request req;
	uint32_t err = 1;

	(void)state;
	assert_int_equal(nbd_parse_request(h, &rw, &req, &err), NBD_PARSE_OK);
	assert_int_equal(err, 0);
	assert_int_equal(req.flags, NBD_CMD_FLAG_FUA);
	assert_int_equal(req.type, NBD_CMD_WRITE);
	assert_true(req.handle == 0xdeadbeef00112233ull);
	assert_true(req.offset == 66048);
	assert_int_equal(req.length, 4096);
}

static void test_bad_magic(void **state)
{
	uint8_t h[NBD_REQUEST_SIZE];
	struct nbd_request req;
	uint32_t err;

	(void)state;
	header(h, NBD_SIMPLE_REPLY_MAGIC, 0, NBD_CMD_READ, 1, 0, 512);
	assert_int_equal(nbd_parse_request(h, &rw, &req, &err), NBD_PARSE_BAD_MAGIC);
	header(h, 0x13956025, 0, NBD_CMD_READ, 1, 0, 512); /* little-endian magic */
	assert_int_equal(nbd_parse_request(h, &rw, &req, &err), NBD_PARSE_BAD_MAGIC);
	header(h, 0, 0, NBD_CMD_DISC, 0, 0, 0);
	assert_int_equal(nbd_parse_request(h, &rw, &req, &err), NBD_PARSE_BAD_MAGIC);
	/* Bad magic wins over everything else that is wrong. */
	header(h, 0xffffffff, 0xffff, 0xffff, 0, UINT64_MAX, UINT32_MAX);
	assert_int_equal(nbd_parse_request(h, &ro, &req, &err), NBD_PARSE_BAD_MAGIC);
}

static void test_read(void **state)
{
	(void)state;
	ok(&rw, 0, NBD_CMD_READ, 0, 512);
	ok(&rw, 0, NBD_CMD_READ, SIZE - 512, 512);
	ok(&rw, 0, NBD_CMD_READ, SIZE - 1, 1);
	ok(&rw, 0, NBD_CMD_READ, SIZE, 0);
	ok(&rw, 0, NBD_CMD_READ, 12345, MAXPAY);
	ok(&ro, 0, NBD_CMD_READ, 0, 4096);
	/* Out of range: EINVAL for reads. */
	bad(&rw, 0, NBD_CMD_READ, SIZE, 1, NBD_EINVAL);
	bad(&rw, 0, NBD_CMD_READ, SIZE - 511, 512, NBD_EINVAL);
	bad(&rw, 0, NBD_CMD_READ, SIZE + 512, 0, NBD_EINVAL);
	bad(&ro, 0, NBD_CMD_READ, UINT64_MAX, 1, NBD_EINVAL);
	/* offset + length wraps around 2^64. */
	bad(&rw, 0, NBD_CMD_READ, UINT64_MAX - 100, 512, NBD_EINVAL);
	bad(&rw, 0, NBD_CMD_READ, UINT64_MAX - 511, 512, NBD_EINVAL);
	/* Too large a payload. */
	bad(&rw, 0, NBD_CMD_READ, 0, MAXPAY + 1, NBD_EOVERFLOW);
	bad(&rw, 0, NBD_CMD_READ, 0, UINT32_MAX, NBD_EOVERFLOW);
	/* DF needs structured replies. */
	bad(&rw, NBD_CMD_FLAG_DF, NBD_CMD_READ, 0, 512, NBD_EINVAL);
	ok(&sr, NBD_CMD_FLAG_DF, NBD_CMD_READ, 0, 512);
	ok(&sr, 0, NBD_CMD_READ, 0, 512);
}

static void test_writes(void **state)
{
	static const uint16_t writes[] = {NBD_CMD_WRITE, NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES};

	(void)state;
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		uint16_t t = writes[i];

		ok(&rw, 0, t, 0, 512);
		ok(&rw, NBD_CMD_FLAG_FUA, t, SIZE - 4096, 4096);
		ok(&sr, 0, t, SIZE, 0);
		/* Read-only export: EPERM, even when the range is also wrong. */
		bad(&ro, 0, t, 0, 512, NBD_EPERM);
		bad(&ro, NBD_CMD_FLAG_FUA, t, SIZE, 512, NBD_EPERM);
		/* Beyond the end: ENOSPC for writes. */
		bad(&rw, 0, t, SIZE, 1, NBD_ENOSPC);
		bad(&rw, 0, t, SIZE - 1, 2, NBD_ENOSPC);
		bad(&rw, 0, t, UINT64_MAX - 1000, 4096, NBD_ENOSPC);
		bad(&rw, 0, t, UINT64_MAX, 1, NBD_ENOSPC);
		/* Unknown flags. */
		bad(&rw, 1u << 5, t, 0, 512, NBD_EINVAL);
		bad(&rw, 0x8000, t, 0, 512, NBD_EINVAL);
		bad(&rw, NBD_CMD_FLAG_REQ_ONE, t, 0, 512, NBD_EINVAL);
	}
	/* Only READ and WRITE carry payloads, so only they are limited by max_payload. */
	bad(&rw, 0, NBD_CMD_WRITE, 0, MAXPAY + 1, NBD_EOVERFLOW);
	ok(&rw, 0, NBD_CMD_WRITE, 0, MAXPAY);
	ok(&rw, 0, NBD_CMD_TRIM, 0, MAXPAY * 4u);
	ok(&rw, 0, NBD_CMD_WRITE_ZEROES, 0, (uint32_t)SIZE);
	/* Flags that belong to write-zeroes. */
	ok(&rw, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE_ZEROES, 0, 512);
	ok(&rw, NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FUA, NBD_CMD_WRITE_ZEROES, 0, 512);
	/* We never promise fast zeroing. */
	bad(&rw, NBD_CMD_FLAG_FAST_ZERO, NBD_CMD_WRITE_ZEROES, 0, 512, NBD_ENOTSUP);
	bad(&sr, NBD_CMD_FLAG_FAST_ZERO | NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE_ZEROES, 0, 512,
	    NBD_ENOTSUP);
	/* ... and not to any other command; DF belongs to READ; FUA goes with anything. */
	bad(&rw, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE, 0, 512, NBD_EINVAL);
	bad(&rw, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_TRIM, 0, 512, NBD_EINVAL);
	bad(&rw, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_READ, 0, 512, NBD_EINVAL);
	bad(&rw, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_FLUSH, 0, 0, NBD_EINVAL);
	bad(&rw, NBD_CMD_FLAG_FAST_ZERO, NBD_CMD_WRITE, 0, 512, NBD_EINVAL);
	bad(&sr, NBD_CMD_FLAG_DF, NBD_CMD_WRITE, 0, 512, NBD_EINVAL);
	bad(&sr, NBD_CMD_FLAG_DF, NBD_CMD_WRITE_ZEROES, 0, 512, NBD_EINVAL);
	ok(&sr, NBD_CMD_FLAG_DF, NBD_CMD_READ, 0, 512);
	ok(&rw, NBD_CMD_FLAG_FUA, NBD_CMD_FLUSH, 0, 0);
	ok(&rw, NBD_CMD_FLAG_FUA, NBD_CMD_READ, 0, 512);
}

static void test_flush_disc(void **state)
{
	(void)state;
	ok(&rw, 0, NBD_CMD_FLUSH, 0, 0);
	ok(&ro, 0, NBD_CMD_FLUSH, 0, 0);
	bad(&rw, 0, NBD_CMD_FLUSH, 512, 0, NBD_EINVAL);
	bad(&rw, 0, NBD_CMD_FLUSH, 0, 512, NBD_EINVAL);
	bad(&rw, 0, NBD_CMD_FLUSH, UINT64_MAX, UINT32_MAX, NBD_EINVAL);
	bad(&rw, 1u << 7, NBD_CMD_FLUSH, 0, 0, NBD_EINVAL);
	ok(&rw, 0, NBD_CMD_DISC, 0, 0);
	ok(&ro, 0, NBD_CMD_DISC, 0, 0);
}

static void test_unknown_commands(void **state)
{
	static const uint16_t types[] = {
	    NBD_CMD_CACHE, NBD_CMD_BLOCK_STATUS, NBD_CMD_RESIZE, 9, 100, 0xffff};

	(void)state;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		bad(&rw, 0, types[i], 0, 512, NBD_EINVAL);
		bad(&ro, 0, types[i], 0, 512, NBD_EINVAL);
	}
	/* Unknown flags on an otherwise fine read. */
	bad(&rw, 1u << 5, NBD_CMD_READ, 0, 512, NBD_EINVAL);
	bad(&sr, NBD_CMD_FLAG_REQ_ONE, NBD_CMD_READ, 0, 512, NBD_EINVAL);
}

static void test_errno_to_wire(void **state)
{
	static const struct {
		int err;
		uint32_t wire;
	} map[] = {
	    {0, 0},
	    {EPERM, NBD_EPERM},
	    {EROFS, NBD_EPERM},
	    {EACCES, NBD_EPERM},
	    {EIO, NBD_EIO},
	    {ENOMEM, NBD_ENOMEM},
	    {EINVAL, NBD_EINVAL},
	    {ENOSPC, NBD_ENOSPC},
	    {EFBIG, NBD_ENOSPC},
	    {EDQUOT, NBD_ENOSPC},
	    {EOVERFLOW, NBD_EOVERFLOW},
	    {ENOTSUP, NBD_ENOTSUP},
	    {EOPNOTSUPP, NBD_ENOTSUP},
	    {ESHUTDOWN, NBD_ESHUTDOWN},
	    {ENXIO, NBD_ESHUTDOWN},
	    /* Everything else is an I/O error. */
	    {ELOOP, NBD_EIO},
	    {EBADMSG, NBD_EIO},
	    {EILSEQ, NBD_EIO},
	    {ENOENT, NBD_EIO},
	    {EBUSY, NBD_EIO},
	    {12345, NBD_EIO},
	};

	(void)state;
	/* The wire values are the protocol's, which are Linux's. */
	assert_int_equal(NBD_EPERM, 1);
	assert_int_equal(NBD_EIO, 5);
	assert_int_equal(NBD_ENOMEM, 12);
	assert_int_equal(NBD_EINVAL, 22);
	assert_int_equal(NBD_ENOSPC, 28);
	assert_int_equal(NBD_EOVERFLOW, 75);
	assert_int_equal(NBD_ENOTSUP, 95);
	assert_int_equal(NBD_ESHUTDOWN, 108);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		assert_int_equal(nbd_errno_to_wire(map[i].err), map[i].wire);
		/* -errno, as engine calls return it, maps the same. */
		assert_int_equal(nbd_errno_to_wire(-map[i].err), map[i].wire);
	}
	assert_int_equal(nbd_errno_to_wire(INT32_MIN), NBD_EIO);
	assert_int_equal(nbd_errno_to_wire(INT32_MAX), NBD_EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode),	  cmocka_unit_test(test_bad_magic),
	    cmocka_unit_test(test_read),	  cmocka_unit_test(test_writes),
	    cmocka_unit_test(test_flush_disc),	  cmocka_unit_test(test_unknown_commands),
	    cmocka_unit_test(test_errno_to_wire),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
