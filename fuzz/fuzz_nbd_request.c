/*
 * fuzz_nbd_request.c - the NBD request-header parser against random limits and headers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/nbd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nbd_export_limits lim;
	struct nbd_request req;
	uint32_t err;
	enum nbd_parse_result r;

	if (size < NBD_REQUEST_SIZE + 10)
		return 0;
	memcpy(&lim.size, data + NBD_REQUEST_SIZE, 8);
	lim.min_block = 512;
	lim.max_payload = BS_NBD_MAX_REQUEST;
	lim.readonly = data[NBD_REQUEST_SIZE + 8] & 1;
	lim.structured = data[NBD_REQUEST_SIZE + 9] & 1;
	r = nbd_parse_request(data, &lim, &req, &err);
	if (r == NBD_PARSE_OK && (req.type == NBD_CMD_READ || req.type == NBD_CMD_WRITE)) {
		/* An accepted ranged request must lie inside the export. */
		if (req.offset > lim.size || req.length > lim.size - req.offset ||
		    req.length > lim.max_payload)
			abort();
	}
	if (r == NBD_PARSE_ERROR && err == 0)
		abort();
	return 0;
}
