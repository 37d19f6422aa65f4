/*
 * test_control.c - control-protocol framing (proto/control.c) over a socketpair.
 *
 *   - frames round-trip with and without a data blob (binary, with NULs), back to back, and
 *     at the size limits; the end of the stream is -ECONNRESET;
 *   - senders refuse oversized parts without writing anything;
 *   - receivers refuse bad magic, out-of-range lengths, truncated headers, JSON and data,
 *     JSON that is not one object, NUL bytes in the JSON and trailing garbage after it:
 *     -EPROTO with a reason, and nothing left allocated;
 *   - the JSON accessors treat missing and mistyped fields as absent.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/control.h"

static int sp[2]; /* sp[0] sends, sp[1] receives */

static int pair_setup(void **state)
{
	(void)state;
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp);
}

static int pair_teardown(void **state)
{
	(void)state;
	if (sp[0] >= 0)
		close(sp[0]);
	close(sp[1]);
	return 0;
}

/* A fresh connection, for after a frame the receiver could not resynchronise from. */
static void reset_pair(void)
{
	pair_teardown(NULL);
	assert_int_equal(pair_setup(NULL), 0);
}

/* Ends the sending side, so that a short frame is truncated rather than pending. */
static void close_sender(void)
{
	close(sp[0]);
	sp[0] = -1;
}

static void write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		assert_true(w > 0);
		c += w;
		n -= (size_t)w;
	}
}

/* A hand-made frame: header fields as given, then the bytes of JSON and DATA. */
static void raw_frame(const char *magic, uint32_t jlen, uint32_t dlen, const void *json,
		      size_t json_n, const void *data, size_t data_n)
{
	uint8_t h[BS_CTL_HDR_SIZE];

	memcpy(h, magic, 4);
	for (int i = 0; i < 4; i++) {
		h[4 + i] = (uint8_t)(jlen >> (24 - 8 * i));
		h[8 + i] = (uint8_t)(dlen >> (24 - 8 * i));
	}
	write_all(sp[0], h, sizeof(h));
	if (json_n)
		write_all(sp[0], json, json_n);
	if (data_n)
		write_all(sp[0], data, data_n);
}

/* A frame whose lengths match its parts. */
static void frame(const char *json, size_t json_n, const void *data, size_t data_n)
{
	raw_frame(BS_CTL_MAGIC, (uint32_t)json_n, (uint32_t)data_n, json, json_n, data, data_n);
}

/* Receives and expects -EPROTO with a reason containing WHY, and an empty message. */
static void expect_proto(const char *why_needle)
{
	struct bs_msg msg;
	const char *why = NULL;
	int r = bs_ctl_recv(sp[1], &msg, &why);

	if (r != -EPROTO || !why || !strstr(why, why_needle)) {
		print_error("expected -EPROTO \"%s\", got %d \"%s\"\n", why_needle, r,
			    why ? why : "(null)");
		if (!r)
			bs_msg_free(&msg);
		fail();
	}
	assert_null(msg.json);
	assert_null(msg.data);
	assert_int_equal(msg.data_len, 0);
}

/* ---- round trips ------------------------------------------------------------------------ */

static void test_roundtrip(void **state)
{
	struct json_object *o = json_object_new_object();
	static const char blob[] = "0 8 crypt aes-xts-plain64 \0\x01\xff key\n";
	unsigned long long u;
	struct bs_msg msg;
	const char *why;

	(void)state;
	json_object_object_add(o, "cmd", json_object_new_string("dm.create"));
	json_object_object_add(o, "n", json_object_new_int64(42));
	json_object_object_add(o, "ro", json_object_new_boolean(1));
	json_object_object_add(o, "neg", json_object_new_int64(-1));
	json_object_object_add(o, "s", json_object_new_string("a \"quoted\" \\ string\n"));

	/* Without data. */
	assert_int_equal(bs_ctl_send(sp[0], o, NULL, 0), 0);
	assert_int_equal(bs_ctl_recv(sp[1], &msg, &why), 0);
	assert_non_null(msg.json);
	assert_null(msg.data);
	assert_int_equal(msg.data_len, 0);
	assert_string_equal(bs_json_str(msg.json, "cmd"), "dm.create");
	assert_string_equal(bs_json_str(msg.json, "s"), "a \"quoted\" \\ string\n");
	assert_int_equal(bs_json_bool(msg.json, "ro"), 1);
	assert_int_equal(bs_json_u64(msg.json, "n", &u), 0);
	assert_true(u == 42);
	/* Accessors: missing and mistyped fields are absent; negatives are not u64. */
	assert_null(bs_json_str(msg.json, "n"));
	assert_null(bs_json_str(msg.json, "missing"));
	assert_int_equal(bs_json_bool(msg.json, "cmd"), 0);
	assert_int_equal(bs_json_bool(msg.json, "missing"), 0);
	assert_int_equal(bs_json_u64(msg.json, "cmd", &u), -ENOENT);
	assert_int_equal(bs_json_u64(msg.json, "missing", &u), -ENOENT);
	assert_int_equal(bs_json_u64(msg.json, "neg", &u), -EINVAL);
	bs_msg_free(&msg);
	assert_null(msg.json);

	/* With a binary data blob, twice back to back. */
	assert_int_equal(bs_ctl_send(sp[0], o, blob, sizeof(blob)), 0);
	assert_int_equal(bs_ctl_send(sp[0], o, blob, 5), 0);
	assert_int_equal(bs_ctl_recv(sp[1], &msg, &why), 0);
	assert_int_equal(msg.data_len, sizeof(blob));
	assert_memory_equal(msg.data, blob, sizeof(blob));
	assert_int_equal(msg.data[msg.data_len], '\0');
	assert_string_equal(bs_json_str(msg.json, "cmd"), "dm.create");
	bs_msg_free(&msg);
	assert_int_equal(bs_ctl_recv(sp[1], &msg, &why), 0);
	assert_int_equal(msg.data_len, 5);
	assert_string_equal(msg.data, "0 8 c");
	bs_msg_free(&msg);

	/* A hand-made minimal frame: "{}" is the smallest JSON part. */
	frame("{}", 2, NULL, 0);
	assert_int_equal(bs_ctl_recv(sp[1], &msg, &why), 0);
	assert_int_equal(json_object_object_length(msg.json), 0);
	bs_msg_free(&msg);

	/* The clean end of the stream. */
	close_sender();
	assert_int_equal(bs_ctl_recv(sp[1], &msg, &why), -ECONNRESET);
	assert_non_null(strstr(why, "closed"));
	assert_null(msg.json);
	json_object_put(o);
}

struct sender {
	pthread_t th;
	struct json_object *o;
	const void *data;
	size_t len;
	int r;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;

	s->r = bs_ctl_send(sp[0], s->o, s->data, s->len);
	return NULL;
}

/* The largest frame goes through (a thread sends while we receive). */
static void test_limits(void **state)
{
	struct json_object *o = json_object_new_object();
	size_t slen = BS_CTL_JSON_MAX - strlen("{\"s\":\"\"}");
	char *s = malloc(slen + 1), *data = malloc(BS_CTL_DATA_MAX + 1);
	struct sender snd;
	struct bs_msg msg;
	const char *why;
	char probe;

	(void)state;
	assert_non_null(s);
	assert_non_null(data);
	memset(s, 'x', slen);
	s[slen] = '\0';
	for (size_t i = 0; i <= BS_CTL_DATA_MAX; i++)
		data[i] = (char)(i * 7);
	json_object_object_add(o, "s", json_object_new_string(s));
	assert_int_equal(strlen(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)),
			 BS_CTL_JSON_MAX);

	snd = (struct sender){.o = o, .data = data, .len = BS_CTL_DATA_MAX};
	assert_int_equal(pthread_create(&snd.th, NULL, sender_main, &snd), 0);
	assert_int_equal(bs_ctl_recv(sp[1], &msg, &why), 0);
	assert_int_equal(pthread_join(snd.th, NULL), 0);
	assert_int_equal(snd.r, 0);
	assert_int_equal(strlen(bs_json_str(msg.json, "s")), slen);
	assert_int_equal(msg.data_len, BS_CTL_DATA_MAX);
	assert_memory_equal(msg.data, data, BS_CTL_DATA_MAX);
	bs_msg_free(&msg);

	/* One byte more of either part is refused before anything is written. */
	assert_int_equal(bs_ctl_send(sp[0], o, data, BS_CTL_DATA_MAX + 1), -EMSGSIZE);
	json_object_object_add(o, "t", json_object_new_string(""));
	assert_int_equal(bs_ctl_send(sp[0], o, NULL, 0), -EMSGSIZE);
	assert_int_equal(recv(sp[1], &probe, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);

	json_object_put(o);
	free(s);
	free(data);
}

/* A peer that went away: the send fails instead of killing us. */
static void test_send_to_closed(void **state)
{
	struct json_object *o = json_object_new_object();

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	close(sp[1]);
	sp[1] = socket(AF_UNIX, SOCK_STREAM, 0); /* something for teardown to close */
	assert_int_equal(bs_ctl_send(sp[0], o, "x", 1), -EPIPE);
	json_object_put(o);
}

/* ---- malformed frames -------------------------------------------------------------------- */

static void test_bad_magic(void **state)
{
	(void)state;
	raw_frame("BKS2", 2, 0, "{}", 2, NULL, 0);
	close_sender();
	expect_proto("bad magic");
	reset_pair();
	raw_frame("bks1", 2, 0, "{}", 2, NULL, 0);
	close_sender();
	expect_proto("bad magic");
	reset_pair();
	raw_frame("\0\0\0\0", 2, 0, "{}", 2, NULL, 0);
	close_sender();
	expect_proto("bad magic");
	reset_pair();
}

/*
 * The sender closes after each bad header, so a receiver that wrongly accepted the lengths
 * fails on truncation instead of waiting for bytes that never come.
 */
static void test_bad_lengths(void **state)
{
	(void)state;
	/* JSON part: at least "{}", at most BS_CTL_JSON_MAX. */
	raw_frame(BS_CTL_MAGIC, 0, 0, NULL, 0, NULL, 0);
	close_sender();
	expect_proto("JSON part too large or empty");
	reset_pair();
	raw_frame(BS_CTL_MAGIC, 1, 0, "{", 1, NULL, 0);
	close_sender();
	expect_proto("JSON part too large or empty");
	reset_pair();
	raw_frame(BS_CTL_MAGIC, BS_CTL_JSON_MAX + 1, 0, NULL, 0, NULL, 0);
	close_sender();
	expect_proto("JSON part too large or empty");
	reset_pair();
	raw_frame(BS_CTL_MAGIC, UINT32_MAX, 0, NULL, 0, NULL, 0);
	close_sender();
	expect_proto("JSON part too large or empty");
	reset_pair();
	/* Data part: at most BS_CTL_DATA_MAX. */
	raw_frame(BS_CTL_MAGIC, 2, BS_CTL_DATA_MAX + 1, NULL, 0, NULL, 0);
	close_sender();
	expect_proto("data part too large");
	reset_pair();
	raw_frame(BS_CTL_MAGIC, 2, UINT32_MAX, NULL, 0, NULL, 0);
	close_sender();
	expect_proto("data part too large");
	reset_pair();
}

static void test_truncated_header(void **state)
{
	(void)state;
	write_all(sp[0], "BKS1\0\0", 6);
	close_sender();
	expect_proto("truncated header");
}

static void test_truncated_json(void **state)
{
	(void)state;
	raw_frame(BS_CTL_MAGIC, 10, 0, "{\"a\"", 4, NULL, 0);
	close_sender();
	expect_proto("truncated JSON");
}

static void test_truncated_json_empty(void **state)
{
	(void)state;
	raw_frame(BS_CTL_MAGIC, 10, 0, NULL, 0, NULL, 0);
	close_sender();
	expect_proto("truncated JSON");
}

static void test_truncated_data(void **state)
{
	(void)state;
	raw_frame(BS_CTL_MAGIC, 2, 100, "{}", 2, "abc", 3);
	close_sender();
	expect_proto("truncated data");
}

static void test_truncated_data_empty(void **state)
{
	(void)state;
	raw_frame(BS_CTL_MAGIC, 2, 100, "{}", 2, NULL, 0);
	close_sender();
	expect_proto("truncated data");
}

static void test_not_an_object(void **state)
{
	static const char *const bad[] = {
	    "[1,2]", "\"string\"", "42",	"null",		"true", "[]",
	    "  ",    "{\"a\":",	   "{\"a\" 1}", "{\"a\":nope}", "}{",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		frame(bad[i], strlen(bad[i]), NULL, 0);
		expect_proto("not a JSON object");
	}
	/* With a data blob, which must not leak when the JSON is refused. */
	frame("[0]", 3, "secret", 6);
	expect_proto("not a JSON object");
	/* Nesting deeper than the parser allows. */
	{
		char deep[300];
		size_t n = 0;

		deep[n++] = '{';
		for (int i = 0; i < 40; i++) {
			memcpy(deep + n, "\"a\":{", 5);
			n += 5;
		}
		memset(deep + n, '}', 41);
		n += 41;
		frame(deep, n, NULL, 0);
		expect_proto("not a JSON object");
	}
}

static void test_nul_in_json(void **state)
{
	(void)state;
	frame("{\"a\":\"\0\"}", 9, NULL, 0);
	expect_proto("NUL byte in JSON");
	frame("{}\0", 3, "d", 1);
	expect_proto("NUL byte in JSON");
	frame("\0{}", 3, NULL, 0);
	expect_proto("NUL byte in JSON");
}

static void test_trailing_garbage(void **state)
{
	static const char *const bad[] = {
	    "{}x", "{} {}", "{\"a\":1}}", "{\"a\":1}\"", "{}{}", "{}]",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		frame(bad[i], strlen(bad[i]), NULL, 0);
		expect_proto("not a JSON object");
	}
}

/* After a refused frame whose lengths were sane, the stream is still in step. */
static void test_resync_after_bad_json(void **state)
{
	struct bs_msg msg;
	const char *why;

	(void)state;
	frame("{}x", 3, "dd", 2);
	expect_proto("not a JSON object");
	frame("{\"ok\":true}", 11, NULL, 0);
	assert_int_equal(bs_ctl_recv(sp[1], &msg, &why), 0);
	assert_int_equal(bs_json_bool(msg.json, "ok"), 1);
	bs_msg_free(&msg);
}

static void test_control_path(void **state)
{
	(void)state;
	unsetenv("BLKSTACK_CONTROL");
	assert_string_equal(bs_control_path(), BS_CONTROL_DEFAULT);
	setenv("BLKSTACK_CONTROL", "", 1);
	assert_string_equal(bs_control_path(), BS_CONTROL_DEFAULT);
	setenv("BLKSTACK_CONTROL", "/tmp/x.sock", 1);
	assert_string_equal(bs_control_path(), "/tmp/x.sock");
	unsetenv("BLKSTACK_CONTROL");
}

#define P(f) cmocka_unit_test_setup_teardown(f, pair_setup, pair_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    P(test_roundtrip),	      P(test_limits),
	    P(test_send_to_closed),   P(test_bad_magic),
	    P(test_bad_lengths),      P(test_truncated_header),
	    P(test_truncated_json),   P(test_truncated_json_empty),
	    P(test_truncated_data),   P(test_truncated_data_empty),
	    P(test_not_an_object),    P(test_nul_in_json),
	    P(test_trailing_garbage), P(test_resync_after_bad_json),
	    P(test_control_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
