/*
 * nbd.h - constants of the NBD protocol and the request-header parser.
 *
 * Names and values follow the protocol specification, doc/proto.md of the NetworkBlockDevice
 * project (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md).  All integers
 * on the wire are big-endian.
 */
#ifndef BS_PROTO_NBD_H
#define BS_PROTO_NBD_H

#include <stdbool.h>
#include <stdint.h>

/* Handshake */
#define NBD_MAGIC	   0x4e42444d41474943ULL /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC	   0x49484156454F5054ULL /* "IHAVEOPT" */
#define NBD_REP_MAGIC	   0x0003e889045565a9ULL
#define NBD_OLDSTYLE_MAGIC 0x00420281861253ULL

/* Handshake flags (server) */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES	(1u << 1)
/* Client flags */
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES	  (1u << 1)

/* Transmission flags */
#define NBD_FLAG_HAS_FLAGS	   (1u << 0)
#define NBD_FLAG_READ_ONLY	   (1u << 1)
#define NBD_FLAG_SEND_FLUSH	   (1u << 2)
#define NBD_FLAG_SEND_FUA	   (1u << 3)
#define NBD_FLAG_ROTATIONAL	   (1u << 4)
#define NBD_FLAG_SEND_TRIM	   (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF	   (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN	   (1u << 8)
#define NBD_FLAG_SEND_RESIZE	   (1u << 9)
#define NBD_FLAG_SEND_CACHE	   (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO	   (1u << 11)

/* Options */
#define NBD_OPT_EXPORT_NAME	  1
#define NBD_OPT_ABORT		  2
#define NBD_OPT_LIST		  3
#define NBD_OPT_PEEK_EXPORT	  4
#define NBD_OPT_STARTTLS	  5
#define NBD_OPT_INFO		  6
#define NBD_OPT_GO		  7
#define NBD_OPT_STRUCTURED_REPLY  8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT  10

/* Option replies */
#define NBD_REP_ACK		    1
#define NBD_REP_SERVER		    2
#define NBD_REP_INFO		    3
#define NBD_REP_META_CONTEXT	    4
#define NBD_REP_FLAG_ERROR	    (1u << 31)
#define NBD_REP_ERR_UNSUP	    (NBD_REP_FLAG_ERROR | 1)
#define NBD_REP_ERR_POLICY	    (NBD_REP_FLAG_ERROR | 2)
#define NBD_REP_ERR_INVALID	    (NBD_REP_FLAG_ERROR | 3)
#define NBD_REP_ERR_PLATFORM	    (NBD_REP_FLAG_ERROR | 4)
#define NBD_REP_ERR_TLS_REQD	    (NBD_REP_FLAG_ERROR | 5)
#define NBD_REP_ERR_UNKNOWN	    (NBD_REP_FLAG_ERROR | 6)
#define NBD_REP_ERR_SHUTDOWN	    (NBD_REP_FLAG_ERROR | 7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8)
#define NBD_REP_ERR_TOO_BIG	    (NBD_REP_FLAG_ERROR | 9)

/* NBD_REP_INFO types */
#define NBD_INFO_EXPORT	     0
#define NBD_INFO_NAME	     1
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE  3

/* Transmission */
#define NBD_REQUEST_MAGIC	   0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC	   0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu
#define NBD_REQUEST_SIZE	   28
#define NBD_SIMPLE_REPLY_SIZE	   16
#define NBD_STRUCTURED_REPLY_SIZE  20

#define NBD_CMD_READ	     0
#define NBD_CMD_WRITE	     1
#define NBD_CMD_DISC	     2
#define NBD_CMD_FLUSH	     3
#define NBD_CMD_TRIM	     4
#define NBD_CMD_CACHE	     5
#define NBD_CMD_WRITE_ZEROES 6
#define NBD_CMD_BLOCK_STATUS 7
#define NBD_CMD_RESIZE	     8

#define NBD_CMD_FLAG_FUA       (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE   (1u << 1)
#define NBD_CMD_FLAG_DF	       (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE   (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

#define NBD_REPLY_FLAG_DONE	    (1u << 0)
#define NBD_REPLY_TYPE_NONE	    0
#define NBD_REPLY_TYPE_OFFSET_DATA  1
#define NBD_REPLY_TYPE_OFFSET_HOLE  2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR	    ((1u << 15) | 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET ((1u << 15) | 2)

/* Error values */
#define NBD_EPERM     1
#define NBD_EIO	      5
#define NBD_ENOMEM    12
#define NBD_EINVAL    22
#define NBD_ENOSPC    28
#define NBD_EOVERFLOW 75
#define NBD_ENOTSUP   95
#define NBD_ESHUTDOWN 108

/* Limits of this server */
#define BS_NBD_MAX_REQUEST (32u << 20) /* largest READ/WRITE payload */
#define BS_NBD_MAX_OPTION  4096u       /* largest option payload we accept */
#define BS_NBD_MAX_NAME	   4096u       /* export names, as the spec allows */

struct nbd_request {
	uint16_t flags;
	uint16_t type;
	uint64_t handle;
	uint64_t offset;
	uint32_t length;
};

enum nbd_parse_result {
	NBD_PARSE_OK,
	NBD_PARSE_BAD_MAGIC, /* protocol is out of sync: drop the connection */
	NBD_PARSE_ERROR,     /* reply with *err; for WRITE the payload must still be skipped */
};

struct nbd_export_limits {
	uint64_t size;	      /* bytes */
	uint32_t min_block;   /* advertised minimum block size */
	uint32_t max_payload; /* largest READ/WRITE */
	bool readonly;
	bool structured; /* structured replies negotiated */
};

/*
 * Decodes one 28-byte request header and checks it against the export.  On NBD_PARSE_ERROR
 * *err is the NBD error to send (EINVAL, EPERM, ENOSPC, EOVERFLOW, ENOTSUP).
 */
enum nbd_parse_result nbd_parse_request(const uint8_t hdr[NBD_REQUEST_SIZE],
					const struct nbd_export_limits *lim,
					struct nbd_request *req, uint32_t *err);

/* Maps an errno value to the closest NBD error. */
uint32_t nbd_errno_to_wire(int err);

#endif
