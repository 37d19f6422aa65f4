/*
 * scratch.c - see scratch.h.
 */
#include "util/scratch.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

#define SCRATCH_DEPTH 16

struct scratch_slot {
	void *buf;
	size_t cap;
};

static _Thread_local struct scratch_slot slots[SCRATCH_DEPTH];
static _Thread_local unsigned depth;

/*
 * Threads we do not own (libfuse's workers come and go) must not leak their buffers: the
 * first buffer a thread takes registers a key whose destructor frees them at thread exit.
 */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_thread_exit(void *unused)
{
	(void)unused;
	bs_scratch_release_thread();
}

static void scratch_key_init(void)
{
	pthread_key_create(&scratch_key, scratch_thread_exit);
}

void *bs_scratch_get(size_t size)
{
	struct scratch_slot *s;

	if (depth >= SCRATCH_DEPTH)
		return NULL;
	if (size == 0)
		size = 1; /* a NULL return always means "not taken": callers then skip the put */
	s = &slots[depth];

	if (s->cap < size) {
		void *n;
		size_t cap = s->cap ? s->cap : 65536;

		while (cap < size)
			cap *= 2;
		if (posix_memalign(&n, 4096, cap))
			return NULL;
		free(s->buf);
		s->buf = n;
		s->cap = cap;
		pthread_once(&scratch_once, scratch_key_init);
		pthread_setspecific(scratch_key, (void *)1);
	}
	depth++;
	return s->buf;
}

void bs_scratch_put(void *buf)
{
	assert(depth > 0 && slots[depth - 1].buf == buf);
	(void)buf;
	depth--;
}

void bs_scratch_release_thread(void)
{
	for (unsigned i = 0; i < SCRATCH_DEPTH; i++) {
		free(slots[i].buf);
		slots[i].buf = NULL;
		slots[i].cap = 0;
	}
	depth = 0;
}
