/*
 * control_server.h - the daemon end of the control socket (see docs/control-protocol.md).
 */
#ifndef BS_DAEMON_CONTROL_SERVER_H
#define BS_DAEMON_CONTROL_SERVER_H

#include "util/strbuf.h"

/* Creates the socket (mode 0600) and starts accepting; refuses when a daemon is live there. */
int bs_control_listen(const char *path, struct strbuf *err);
/* Stops accepting and ends every control connection. */
void bs_control_shutdown(void);

#endif
