/*
 * af.h - the anti-forensic information splitter of LUKS (LUKS1 on-disk format specification,
 * section 2.4): a key is expanded to STRIPES times its size so that erasing any part of the
 * stored material destroys the key.
 */
#ifndef BS_CRYPTO_AF_H
#define BS_CRYPTO_AF_H

#include <stddef.h>

/* Bytes of split material for a key of KEY_LEN bytes. */
size_t bs_af_split_size(size_t key_len, unsigned stripes);

/* Splits KEY into OUT (bs_af_split_size bytes) with random stripes; 0 or -errno. */
int bs_af_split(const void *key, size_t key_len, unsigned stripes, const char *hash, void *out);
/* Recovers KEY from the split material IN; 0 or -errno. */
int bs_af_merge(const void *in, size_t key_len, unsigned stripes, const char *hash, void *key);

#endif
