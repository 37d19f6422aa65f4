/*
 * control.c - see control.h.
 */
#include "proto/control.h"

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/secmem.h"

const char *bs_control_path(void)
{
	const char *p = getenv("BLKSTACK_CONTROL");

	return p && *p ? p : BS_CONTROL_DEFAULT;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* 0, -ECONNRESET on EOF before the first byte, -EPROTO on EOF midway, or -errno. */
static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return got ? -EPROTO : -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

int bs_ctl_send(int fd, struct json_object *json, const void *data, size_t data_len)
{
	const char *js = json_object_to_json_string_ext(json, JSON_C_TO_STRING_PLAIN);
	size_t jlen = strlen(js);
	unsigned char hdr[BS_CTL_HDR_SIZE];
	uint32_t be;
	int r;

	if (jlen > BS_CTL_JSON_MAX || data_len > BS_CTL_DATA_MAX)
		return -EMSGSIZE;
	memcpy(hdr, BS_CTL_MAGIC, 4);
	be = htobe32((uint32_t)jlen);
	memcpy(hdr + 4, &be, 4);
	be = htobe32((uint32_t)data_len);
	memcpy(hdr + 8, &be, 4);
	r = write_all(fd, hdr, sizeof(hdr));
	if (!r)
		r = write_all(fd, js, jlen);
	if (!r && data_len)
		r = write_all(fd, data, data_len);
	return r;
}

int bs_ctl_recv(int fd, struct bs_msg *msg, const char **why)
{
	unsigned char hdr[BS_CTL_HDR_SIZE];
	uint32_t jlen, dlen, be;
	char *js = NULL;
	struct json_tokener *tok;
	int r;

	memset(msg, 0, sizeof(*msg));
	*why = "";
	r = read_all(fd, hdr, sizeof(hdr));
	if (r) {
		*why = r == -EPROTO ? "truncated header" : "connection closed";
		return r;
	}
	if (memcmp(hdr, BS_CTL_MAGIC, 4)) {
		*why = "bad magic";
		return -EPROTO;
	}
	memcpy(&be, hdr + 4, 4);
	jlen = be32toh(be);
	memcpy(&be, hdr + 8, 4);
	dlen = be32toh(be);
	if (jlen < 2 || jlen > BS_CTL_JSON_MAX) {
		*why = "JSON part too large or empty";
		return -EPROTO;
	}
	if (dlen > BS_CTL_DATA_MAX) {
		*why = "data part too large";
		return -EPROTO;
	}
	js = malloc(jlen + 1);
	if (!js)
		return -ENOMEM;
	r = read_all(fd, js, jlen);
	if (r) {
		free(js);
		*why = "truncated JSON";
		return r == -ECONNRESET ? -EPROTO : r;
	}
	js[jlen] = '\0';
	if (dlen) {
		msg->data = bs_secure_alloc((size_t)dlen + 1);
		if (!msg->data) {
			free(js);
			return -ENOMEM;
		}
		r = read_all(fd, msg->data, dlen);
		if (r) {
			free(js);
			bs_msg_free(msg);
			*why = "truncated data";
			return r == -ECONNRESET ? -EPROTO : r;
		}
		msg->data[dlen] = '\0';
		msg->data_len = dlen;
	}
	if (strlen(js) != jlen) {
		free(js);
		bs_msg_free(msg);
		*why = "NUL byte in JSON";
		return -EPROTO;
	}
	tok = json_tokener_new_ex(32);
	if (!tok) {
		free(js);
		bs_msg_free(msg);
		return -ENOMEM;
	}
	msg->json = json_tokener_parse_ex(tok, js, (int)jlen);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != (size_t)jlen || !msg->json ||
	    !json_object_is_type(msg->json, json_type_object)) {
		json_tokener_free(tok);
		free(js);
		bs_msg_free(msg);
		*why = "not a JSON object";
		return -EPROTO;
	}
	json_tokener_free(tok);
	free(js);
	return 0;
}

void bs_msg_free(struct bs_msg *msg)
{
	if (msg->json)
		json_object_put(msg->json);
	bs_secure_free(msg->data);
	memset(msg, 0, sizeof(*msg));
}

const char *bs_json_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int bs_json_bool(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
		return 0;
	return json_object_get_boolean(v);
}

int bs_json_u64(struct json_object *o, const char *key, unsigned long long *out)
{
	struct json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -ENOENT;
	x = json_object_get_int64(v);
	if (x < 0)
		return -EINVAL;
	*out = (unsigned long long)x;
	return 0;
}
