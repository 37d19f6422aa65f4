/*
 * secmem.h - memory for keys and passphrases.
 *
 * Secrets live in their own anonymous mappings that are locked in RAM (mlock), excluded from
 * core dumps (MADV_DONTDUMP) and not inherited by children (MADV_DONTFORK), and are wiped
 * before they are unmapped.  Use these for every buffer that may ever hold key material,
 * including text that carries a key (a crypt table line).
 */
#ifndef BS_UTIL_SECMEM_H
#define BS_UTIL_SECMEM_H

#include <stddef.h>

/* Zeroed, locked memory; NULL only when the mapping itself fails. */
void *bs_secure_alloc(size_t size);
/*
 * The same without the lock, for secrets too large to lock (Argon2's working memory, which
 * may be gigabytes): out of core dumps and children, wiped on release.
 */
void *bs_secure_alloc_unlocked(size_t size);
/* Wipes and releases; NULL is a no-op. */
void bs_secure_free(void *p);
/* A copy of a C string in secure memory. */
char *bs_secure_strdup(const char *s);
/* The most bytes of secure memory mapped at once since the last reset (for tests). */
size_t bs_secure_peak(void);
void bs_secure_peak_reset(void);
/* Overwrites memory in a way the compiler may not elide. */
void bs_wipe(void *p, size_t n);

#endif
