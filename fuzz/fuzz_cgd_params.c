/*
 * fuzz_cgd_params.c - the NetBSD cgdconfig parameters file parser (formats/cgd.c) on hostile
 * bytes.
 *
 * Input: a whole parameters file.  A refusal must give one line of reason.  A file that parses
 * and checks must write back in cgdconfig's layout, and that text must parse, check and write
 * back identically (the writer and the parser agree); its key must derive (passphrase keygens
 * get a fixed passphrase; only cheap iteration counts are run).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/cgd.h"
#include "util/secmem.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ask(void *arg, char **pass, size_t *len)
{
	(void)arg;
	*pass = bs_secure_strdup("fuzz");
	*len = 4;
	return *pass ? 0 : -1;
}

static bool cheap(const struct cgd_params *p)
{
	for (const struct cgd_keygen *kg = p->keygens; kg; kg = kg->next)
		if ((kg->method == CGD_KG_PBKDF2_SHA1 || kg->method == CGD_KG_PBKDF2_OLD) &&
		    kg->iterations > 64)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf err = STRBUF_INIT, out = STRBUF_SECURE_INIT, again = STRBUF_SECURE_INIT;
	struct cgd_params *p = NULL, *q = NULL;
	uint8_t key[CGD_KEY_MAX_BITS / 8];
	const char *why = NULL;

	if (cgd_params_parse((const char *)data, size, &p, &err)) {
		if (!err.len || strchr(sb_str(&err), '\n'))
			abort();
		goto out;
	}
	if (cgd_params_check(p, &err)) {
		if (!err.len || strchr(sb_str(&err), '\n'))
			abort();
		goto out;
	}
	cgd_params_write(p, &out);
	if (cgd_params_parse(sb_str(&out), out.len, &q, &err) || cgd_params_check(q, &err))
		abort();
	cgd_params_write(q, &again);
	if (out.len != again.len || memcmp(sb_str(&out), sb_str(&again), out.len))
		abort();
	if (!cgd_params_dm_cipher(q))
		abort();
	if (cheap(q) && cgd_params_key(q, ask, NULL, key, &why))
		abort();
out:
	cgd_params_free(p);
	cgd_params_free(q);
	sb_free(&err);
	sb_free(&out);
	sb_free(&again);
	return 0;
}
