/*
 * nbd.c - request-header parsing for the NBD server (see nbd.h).
 */
#include "proto/nbd.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return be16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

enum nbd_parse_result nbd_parse_request(const uint8_t hdr[NBD_REQUEST_SIZE],
					const struct nbd_export_limits *lim,
					struct nbd_request *req, uint32_t *err)
{
	uint16_t known =
	    NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_DF | NBD_CMD_FLAG_FAST_ZERO;
	bool ranged;

	if (get32(hdr) != NBD_REQUEST_MAGIC)
		return NBD_PARSE_BAD_MAGIC;
	req->flags = get16(hdr + 4);
	req->type = get16(hdr + 6);
	req->handle = get64(hdr + 8);
	req->offset = get64(hdr + 16);
	req->length = get32(hdr + 24);
	*err = 0;

	if (req->flags & ~known) {
		*err = NBD_EINVAL;
		return NBD_PARSE_ERROR;
	}
	/* FUA goes with any command; the others only with the command they are defined for. */
	if (((req->flags & (NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO)) &&
	     req->type != NBD_CMD_WRITE_ZEROES) ||
	    ((req->flags & NBD_CMD_FLAG_DF) && req->type != NBD_CMD_READ)) {
		*err = NBD_EINVAL;
		return NBD_PARSE_ERROR;
	}
	switch (req->type) {
	case NBD_CMD_READ:
		if ((req->flags & NBD_CMD_FLAG_DF) && !lim->structured) {
			*err = NBD_EINVAL;
			return NBD_PARSE_ERROR;
		}
		ranged = true;
		break;
	case NBD_CMD_WRITE:
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES:
		if (lim->readonly) {
			*err = NBD_EPERM;
			return NBD_PARSE_ERROR;
		}
		if (req->type == NBD_CMD_WRITE_ZEROES && (req->flags & NBD_CMD_FLAG_FAST_ZERO)) {
			/* We do not promise that zeroing is faster than writing. */
			*err = NBD_ENOTSUP;
			return NBD_PARSE_ERROR;
		}
		ranged = true;
		break;
	case NBD_CMD_FLUSH:
		if (req->offset || req->length) {
			*err = NBD_EINVAL;
			return NBD_PARSE_ERROR;
		}
		return NBD_PARSE_OK;
	case NBD_CMD_DISC:
		return NBD_PARSE_OK;
	default:
		*err = NBD_EINVAL;
		return NBD_PARSE_ERROR;
	}
	if (ranged) {
		if ((req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE) &&
		    req->length > lim->max_payload) {
			*err = NBD_EOVERFLOW;
			return NBD_PARSE_ERROR;
		}
		if (req->offset > lim->size || req->length > lim->size - req->offset) {
			*err = req->type == NBD_CMD_READ ? NBD_EINVAL : NBD_ENOSPC;
			return NBD_PARSE_ERROR;
		}
	}
	return NBD_PARSE_OK;
}

uint32_t nbd_errno_to_wire(int err)
{
	/* Negate in unsigned arithmetic: -INT_MIN does not exist. */
	switch (err < 0 ? 0u - (unsigned)err : (unsigned)err) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
	case EACCES:
		return NBD_EPERM;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ENOSPC:
	case EFBIG:
	case EDQUOT:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case ENOTSUP:
		return NBD_ENOTSUP;
	case ESHUTDOWN:
	case ENXIO:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}
