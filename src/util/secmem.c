/*
 * secmem.c - see secmem.h.
 *
 * Each allocation is its own mapping with a one-page header that records the mapping length.
 * Secrets are few and small, so the page granularity costs nothing that matters.
 */
#include "util/secmem.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/log.h"

struct secmem_hdr {
	size_t maplen;
	size_t size;
};

static atomic_bool warned_mlock;
static atomic_size_t mapped, peak; /* bytes of secure mappings: now, and the most */

void bs_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

static void *secure_map(size_t size, bool lock)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t maplen;
	struct secmem_hdr *h;
	void *m;

	if (size > SIZE_MAX - 2 * page)
		return NULL;
	/* Header page plus the payload rounded up to whole pages. */
	maplen = page + ((size + page - 1) / page) * page;
	if (size == 0)
		maplen += page;
	m = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	if (lock && mlock(m, maplen) != 0 && !atomic_exchange(&warned_mlock, true))
		bs_warn("cannot lock memory for keys (mlock failed); secrets may reach swap");
	madvise(m, maplen, MADV_DONTDUMP);
	madvise(m, maplen, MADV_DONTFORK);
	h = m;
	h->maplen = maplen;
	h->size = size;
	size_t now = atomic_fetch_add(&mapped, maplen) + maplen, was = atomic_load(&peak);

	while (now > was && !atomic_compare_exchange_weak(&peak, &was, now))
		;
	return (char *)m + page;
}

void *bs_secure_alloc(size_t size)
{
	return secure_map(size, true);
}

void *bs_secure_alloc_unlocked(size_t size)
{
	return secure_map(size, false);
}

size_t bs_secure_peak(void)
{
	return atomic_load(&peak);
}

void bs_secure_peak_reset(void)
{
	atomic_store(&peak, atomic_load(&mapped));
}

void bs_secure_free(void *p)
{
	size_t page;
	struct secmem_hdr *h;
	size_t maplen;

	if (!p)
		return;
	page = (size_t)sysconf(_SC_PAGESIZE);
	h = (struct secmem_hdr *)((char *)p - page);
	maplen = h->maplen;
	bs_wipe(p, maplen - page);
	munlock(h, maplen);
	munmap(h, maplen);
	atomic_fetch_sub(&mapped, maplen);
}

char *bs_secure_strdup(const char *s)
{
	size_t n = strlen(s);
	char *d = bs_secure_alloc(n + 1);

	if (d)
		memcpy(d, s, n + 1);
	return d;
}
