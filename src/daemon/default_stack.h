/*
 * default_stack.h - the stack `make run` serves: built from files under a directory.
 */
#ifndef BS_DAEMON_DEFAULT_STACK_H
#define BS_DAEMON_DEFAULT_STACK_H

#include "util/strbuf.h"

/*
 * Creates (if missing) the backing files under DIR and the devices of the default stack.
 * Appends a description of what was built, and how to reach it, to INFO.
 */
int bs_default_stack_build(const char *dir, struct strbuf *info, struct strbuf *err);

#endif
