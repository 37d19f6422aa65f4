/*
 * fuzz_control.c - the control-protocol frame reader on hostile bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	struct bs_msg msg;
	const char *why;

	if (size > 1 << 16 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 0;
	if (write(sv[1], data, size) != (ssize_t)size)
		abort();
	close(sv[1]);
	while (bs_ctl_recv(sv[0], &msg, &why) == 0) {
		if (!msg.json)
			abort();
		bs_json_str(msg.json, "op");
		bs_msg_free(&msg);
	}
	close(sv[0]);
	return 0;
}
