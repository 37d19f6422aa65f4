/*
 * control.h - framing of the control protocol between blkstack (CLI) and blkstackd.
 *
 * Every message, request or reply, is one frame on a unix stream socket:
 *
 *     offset  size  field
 *     0       4     magic "BKS1"
 *     4       4     json_len, big-endian, 2 .. BS_CTL_JSON_MAX
 *     8       4     data_len, big-endian, 0 .. BS_CTL_DATA_MAX
 *     12      ...   json_len bytes: one JSON object (UTF-8, not NUL-terminated)
 *     ...     ...   data_len bytes: the data blob
 *
 * The JSON object carries everything that is not secret.  Text that may carry key material
 * (table lines, target messages, tables printed with --showkeys) travels in the data blob,
 * which both ends keep in locked memory and wipe.  See docs/control-protocol.md.
 */
#ifndef BS_PROTO_CONTROL_H
#define BS_PROTO_CONTROL_H

#include <json-c/json.h>
#include <stddef.h>

#define BS_CTL_MAGIC	"BKS1"
#define BS_CTL_JSON_MAX (1u << 20)
#define BS_CTL_DATA_MAX (4u << 20)
#define BS_CTL_HDR_SIZE 12

#define BS_CONTROL_DEFAULT "/run/blkstack/control.sock"
#define BS_NBD_DEFAULT	   "/run/blkstack/nbd.sock"

struct bs_msg {
	struct json_object *json; /* an object; owned */
	char *data;		  /* secure memory, NUL-terminated, may be NULL */
	size_t data_len;
};

/* The control socket path: $BLKSTACK_CONTROL or the default. */
const char *bs_control_path(void);

/* Sends one frame; returns 0 or -errno. */
int bs_ctl_send(int fd, struct json_object *json, const void *data, size_t data_len);
/*
 * Receives one frame.  Returns 0, -ECONNRESET at a clean end of stream, -EPROTO for a
 * malformed frame (WHY says what was wrong) or another -errno.
 */
int bs_ctl_recv(int fd, struct bs_msg *msg, const char **why);
void bs_msg_free(struct bs_msg *msg);

/* Small accessors that treat a missing or mistyped field as absent. */
const char *bs_json_str(struct json_object *o, const char *key);
int bs_json_bool(struct json_object *o, const char *key); /* 0 when absent */
int bs_json_u64(struct json_object *o, const char *key, unsigned long long *out);

#endif
