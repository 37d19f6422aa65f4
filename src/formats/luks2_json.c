/*
 * luks2_json.c - the JSON area of LUKS2 (specification section 3): parsing, complete
 * checking, and the builders for new objects.
 *
 * luks2_json_check() walks the whole tree before anything in it is used: every object has
 * the members of its type with the right JSON types, numbers in range, sizes and offsets as
 * strings of decimal digits (as the specification says), object keys as decimal numbers,
 * references between objects resolved, key slot areas inside the keyslots area and apart,
 * segments apart and clear of the metadata.  What it learns goes into struct luks2_meta;
 * the tree itself is kept (and modified in place) so that members this code does not know
 * survive a rewrite.  Mandatory requirements (reencryption in progress, ...) are refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/luks_int.h"

/* ---- parsing ---------------------------------------------------------------------------- */

int luks2_json_parse(const char *area, size_t len, struct json_object **out, struct strbuf *err)
{
	size_t n = strnlen(area, len);
	struct json_tokener *tok;
	struct json_object *j;
	enum json_tokener_error e;

	*out = NULL;
	if (n == len)
		return luks_err(err, -EINVAL, "JSON area is not terminated by a NUL byte");
	if (n == 0 || area[0] != '{')
		return luks_err(err, -EINVAL, "JSON area does not start with a JSON object");
	if (n > INT32_MAX)
		return luks_err(err, -EINVAL, "JSON area too large");
	tok = json_tokener_new();
	if (!tok)
		return luks_err(err, -ENOMEM, "out of memory");
	j = json_tokener_parse_ex(tok, area, (int)n);
	e = json_tokener_get_error(tok);
	if (!j || e != json_tokener_success) {
		json_object_put(j);
		json_tokener_free(tok);
		if (e == json_tokener_continue)
			return luks_err(err, -EINVAL, "JSON metadata is truncated");
		return luks_err(err, -EINVAL, "JSON metadata is not valid JSON (%s)",
				json_tokener_error_desc(e));
	}
	if (json_tokener_get_parse_end(tok) != n) {
		json_object_put(j);
		json_tokener_free(tok);
		return luks_err(err, -EINVAL, "text after the JSON object in the JSON area");
	}
	json_tokener_free(tok);
	*out = j;
	return 0;
}

const char *luks2_json_text(struct json_object *j)
{
	return json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
						     JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* ---- checking helpers ------------------------------------------------------------------- */

/* An object key "0".."MAX-1" in canonical decimal form; -1 otherwise. */
static int key_id(const char *k, int max)
{
	int v = 0;

	if (!*k || (k[0] == '0' && k[1]) || strlen(k) > 3)
		return -1;
	for (const char *p = k; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v < max ? v : -1;
}

/* A member of type T, or NULL. */
static struct json_object *member(struct json_object *o, const char *key, json_type t)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, t))
		return NULL;
	return v;
}

/* A non-empty string member without embedded NULs. */
static const char *str_member(struct json_object *o, const char *key)
{
	struct json_object *v = member(o, key, json_type_string);
	const char *s;

	if (!v)
		return NULL;
	s = json_object_get_string(v);
	if (!*s || strlen(s) != (size_t)json_object_get_string_len(v) ||
	    !luks_printable(s, SIZE_MAX))
		return NULL;
	return s;
}

/* Decimal digits only, fitting 64 bits. */
static int parse_dec(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s || strlen(s) > 20)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

static int dec_member(struct json_object *o, const char *key, uint64_t *out)
{
	return parse_dec(str_member(o, key), out);
}

static int int_member(struct json_object *o, const char *key, int64_t min, int64_t max,
		      int64_t *out)
{
	struct json_object *v = member(o, key, json_type_int);
	int64_t x;

	if (!v)
		return -1;
	x = json_object_get_int64(v);
	if (x < min || x > max)
		return -1;
	*out = x;
	return 0;
}

static bool has(struct json_object *o, const char *key)
{
	return json_object_object_get_ex(o, key, NULL);
}

static int copy_str(char *dst, size_t n, const char *s)
{
	if (!s || strlen(s) >= n)
		return -1;
	strcpy(dst, s);
	return 0;
}

static int string_array(struct json_object *o, const char *key, bool optional)
{
	struct json_object *a;

	if (!has(o, key))
		return optional ? 0 : -1;
	a = member(o, key, json_type_array);
	if (!a)
		return -1;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *e = json_object_array_get_idx(a, i);

		if (!json_object_is_type(e, json_type_string) ||
		    !luks_printable(json_object_get_string(e), SIZE_MAX) ||
		    strlen(json_object_get_string(e)) != (size_t)json_object_get_string_len(e))
			return -1;
	}
	return 0;
}

/* An array of references ("0", "1", ...) to ids set in VALID; the mask of them, or -1. */
static int64_t ref_array(struct json_object *o, const char *key, uint32_t valid, int max)
{
	struct json_object *a = member(o, key, json_type_array);
	int64_t mask = 0;

	if (!a)
		return -1;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		int id;

		if (!json_object_is_type(e, json_type_string))
			return -1;
		id = key_id(json_object_get_string(e), max);
		if (id < 0 || !(valid & (1u << id)))
			return -1;
		mask |= (int64_t)1 << id;
	}
	return mask;
}

/* ---- sections --------------------------------------------------------------------------- */

static int check_config(struct json_object *c, uint64_t hdr_size, struct luks2_meta *m,
			struct strbuf *err)
{
	struct json_object *req, *mand;

	if (dec_member(c, "json_size", &m->json_size))
		return luks_err(err, -EINVAL, "config: json_size missing or not a decimal string");
	if (m->json_size != hdr_size - LUKS2_HDR_BIN_LEN)
		return luks_err(err, -EINVAL,
				"config: json_size %llu does not match the header size %llu",
				(unsigned long long)m->json_size, (unsigned long long)hdr_size);
	if (dec_member(c, "keyslots_size", &m->keyslots_size))
		return luks_err(err, -EINVAL,
				"config: keyslots_size missing or not a decimal string");
	if (m->keyslots_size % LUKS2_KEYSLOT_ALIGN || m->keyslots_size > LUKS2_MAX_KEYSLOTS_SIZE)
		return luks_err(err, -EINVAL, "config: invalid keyslots_size %llu",
				(unsigned long long)m->keyslots_size);
	if (string_array(c, "flags", true))
		return luks_err(err, -EINVAL, "config: flags is not an array of strings");
	if (!has(c, "requirements"))
		return 0;
	req = member(c, "requirements", json_type_object);
	if (!req)
		return luks_err(err, -EINVAL, "config: requirements is not an object");
	if (string_array(req, "mandatory", true))
		return luks_err(err, -EINVAL,
				"config: requirements.mandatory is not an array of strings");
	mand = member(req, "mandatory", json_type_array);
	if (mand && json_object_array_length(mand)) {
		const char *what = json_object_get_string(json_object_array_get_idx(mand, 0));

		return luks_err(err, -ENOTSUP, "LUKS2 requirement \"%s\" is not supported%s", what,
				!strncmp(what, "online-reencrypt", 16) ||
					!strcmp(what, "offline-reencrypt")
				    ? " (a reencryption is in progress; finish it with cryptsetup)"
				    : "");
	}
	return 0;
}

static int check_segment(const char *k, struct json_object *s, struct luks2_segment *g,
			 struct strbuf *err)
{
	const char *type, *size;
	struct json_object *integ;
	int64_t v;

	if (!json_object_is_type(s, json_type_object))
		return luks_err(err, -EINVAL, "segment %s is not an object", k);
	type = str_member(s, "type");
	if (!type || copy_str(g->type, sizeof(g->type), type))
		return luks_err(err, -EINVAL, "segment %s: type missing or invalid", k);
	if (dec_member(s, "offset", &g->offset))
		return luks_err(err, -EINVAL, "segment %s: offset missing or not a decimal string",
				k);
	size = str_member(s, "size");
	if (size && !strcmp(size, "dynamic"))
		g->size = 0;
	else if (parse_dec(size, &g->size) || g->size == 0)
		return luks_err(err, -EINVAL,
				"segment %s: size missing, zero or not a decimal string", k);
	if (g->offset % LUKS_SECTOR_SIZE || g->size % LUKS_SECTOR_SIZE)
		return luks_err(err, -EINVAL, "segment %s: offset or size not 512-byte aligned", k);
	if (g->size && g->offset > UINT64_MAX - g->size)
		return luks_err(err, -EINVAL, "segment %s: offset + size overflows", k);
	if (string_array(s, "flags", true))
		return luks_err(err, -EINVAL, "segment %s: flags is not an array of strings", k);
	if (has(s, "flags"))
		g->nflags = (unsigned)json_object_array_length(member(s, "flags", json_type_array));
	if (strcmp(type, "crypt"))
		return 0;
	g->crypt = true;
	if (dec_member(s, "iv_tweak", &g->iv_tweak))
		return luks_err(err, -EINVAL,
				"segment %s: iv_tweak missing or not a decimal string", k);
	if (copy_str(g->cipher, sizeof(g->cipher), str_member(s, "encryption")))
		return luks_err(err, -EINVAL, "segment %s: encryption missing or invalid", k);
	if (int_member(s, "sector_size", LUKS_SECTOR_SIZE, LUKS2_MAX_SECTOR_SIZE, &v) ||
	    (v & (v - 1)))
		return luks_err(err, -EINVAL,
				"segment %s: sector_size missing or not 512, 1024, 2048 or 4096",
				k);
	g->sector_size = (uint32_t)v;
	if (g->size % g->sector_size)
		return luks_err(err, -EINVAL, "segment %s: size not a multiple of sector_size", k);
	if (has(s, "integrity")) {
		integ = member(s, "integrity", json_type_object);
		if (!integ || !str_member(integ, "type") ||
		    !str_member(integ, "journal_encryption") ||
		    !str_member(integ, "journal_integrity"))
			return luks_err(err, -EINVAL, "segment %s: invalid integrity object", k);
		if (copy_str(g->integrity_type, sizeof(g->integrity_type),
			     str_member(integ, "type")))
			return luks_err(err, -EINVAL, "segment %s: integrity type too long", k);
		g->integrity = true;
		g->integrity_journal = strcmp(str_member(integ, "journal_encryption"), "none") ||
				       strcmp(str_member(integ, "journal_integrity"), "none");
	}
	return 0;
}

static int check_segments(struct json_object *segs, struct luks2_meta *m, struct strbuf *err)
{
	uint32_t seen = 0;
	int r;

	json_object_object_foreach(segs, k, v)
	{
		int id = key_id(k, LUKS2_SEGMENT_MAX);

		if (id < 0 || (seen & (1u << id)))
			return luks_err(err, -EINVAL, "segments: invalid or repeated key \"%s\"",
					k);
		seen |= 1u << id;
		r = check_segment(k, v, &m->seg[id], err);
		if (r)
			return r;
		m->seg[id].used = true;
		m->nsegments++;
	}
	if (!m->nsegments)
		return luks_err(err, -EINVAL, "segments: no data segment");
	if (seen != (m->nsegments == 32 ? UINT32_MAX : (1u << m->nsegments) - 1))
		return luks_err(err, -EINVAL, "segments: keys are not 0..%u", m->nsegments - 1);
	for (unsigned i = 0; i < m->nsegments; i++) {
		const struct luks2_segment *a = &m->seg[i];

		if (!a->size && i + 1 != m->nsegments)
			return luks_err(
			    err, -EINVAL,
			    "segments: only the last segment may have size \"dynamic\"");
		for (unsigned j = 0; j < m->nsegments; j++) {
			const struct luks2_segment *b = &m->seg[j];

			if (i != j && a->offset >= b->offset &&
			    (!b->size || a->offset < b->offset + b->size))
				return luks_err(err, -EINVAL, "segments %u and %u overlap", i, j);
		}
	}
	return 0;
}

static int check_kdf(const char *k, struct json_object *kdf, struct luks2_keyslot *ks,
		     struct strbuf *err)
{
	const char *type = str_member(kdf, "type");
	int64_t v;
	size_t n;

	if (!type)
		return luks_err(err, -EINVAL, "keyslot %s: kdf type missing", k);
	if (bs_pbkdf_type_parse(type, &ks->kdf))
		return luks_err(err, -EINVAL, "keyslot %s: unsupported kdf \"%s\"", k, type);
	if (ks->kdf == BS_PBKDF2) {
		if (json_object_object_length(kdf) != 4 ||
		    copy_str(ks->kdf_hash, sizeof(ks->kdf_hash), str_member(kdf, "hash")) ||
		    !luks_hash_size(ks->kdf_hash) ||
		    int_member(kdf, "iterations", 1, UINT32_MAX, &v))
			return luks_err(err, -EINVAL,
					"keyslot %s: pbkdf2 needs exactly type, salt, a known hash "
					"and iterations",
					k);
		ks->iterations = (uint32_t)v;
	} else {
		if (json_object_object_length(kdf) != 5 ||
		    int_member(kdf, "time", 1, UINT32_MAX, &v))
			return luks_err(err, -EINVAL,
					"keyslot %s: %s needs exactly type, salt, time, memory and "
					"cpus",
					k, type);
		ks->iterations = (uint32_t)v;
		if (int_member(kdf, "cpus", 1, LUKS2_ARGON2_MAX_CPUS, &v))
			return luks_err(err, -EINVAL,
					"keyslot %s: kdf cpus missing or out of range", k);
		ks->cpus = (uint32_t)v;
		if (int_member(kdf, "memory", 8 * (int64_t)ks->cpus, LUKS2_ARGON2_MAX_MEMORY, &v))
			return luks_err(err, -EINVAL,
					"keyslot %s: kdf memory missing or out of range", k);
		ks->memory = (uint32_t)v;
	}
	if (!str_member(kdf, "salt") ||
	    luks_b64_decode(str_member(kdf, "salt"), ks->salt, sizeof(ks->salt), &n) ||
	    n != LUKS_SALTSIZE)
		return luks_err(err, -EINVAL, "keyslot %s: kdf salt is not %u bytes of base64", k,
				LUKS_SALTSIZE);
	return 0;
}

static int check_keyslot(const char *k, struct json_object *s, struct luks2_keyslot *ks,
			 struct strbuf *err)
{
	struct json_object *kdf, *af, *area;
	const char *type, *t;
	int64_t v;

	if (!json_object_is_type(s, json_type_object))
		return luks_err(err, -EINVAL, "keyslot %s is not an object", k);
	type = str_member(s, "type");
	if (!type)
		return luks_err(err, -EINVAL, "keyslot %s: type missing", k);
	if (!strcmp(type, "reencrypt"))
		return luks_err(err, -ENOTSUP,
				"keyslot %s: reencryption key slots are not supported", k);
	if (strcmp(type, "luks2"))
		return luks_err(err, -EINVAL, "keyslot %s: unsupported type \"%s\"", k, type);
	if (int_member(s, "key_size", 1, LUKS2_MAX_KEY_BYTES, &v))
		return luks_err(err, -EINVAL, "keyslot %s: key_size missing or out of range", k);
	ks->key_size = (uint32_t)v;
	ks->priority = LUKS2_PRIORITY_NORMAL;
	if (has(s, "priority")) {
		if (int_member(s, "priority", LUKS2_PRIORITY_IGNORE, LUKS2_PRIORITY_PREFER, &v))
			return luks_err(err, -EINVAL, "keyslot %s: invalid priority", k);
		ks->priority = (int)v;
	}
	kdf = member(s, "kdf", json_type_object);
	af = member(s, "af", json_type_object);
	area = member(s, "area", json_type_object);
	if (!kdf || !af || !area)
		return luks_err(err, -EINVAL, "keyslot %s: kdf, af or area missing", k);
	if (check_kdf(k, kdf, ks, err))
		return -EINVAL;
	t = str_member(af, "type");
	if (!t || strcmp(t, "luks1"))
		return luks_err(err, -EINVAL, "keyslot %s: unsupported af type \"%s\"", k,
				t ? t : "");
	if (copy_str(ks->af_hash, sizeof(ks->af_hash), str_member(af, "hash")) ||
	    !luks_hash_size(ks->af_hash))
		return luks_err(err, -EINVAL, "keyslot %s: af hash missing or unknown", k);
	if (int_member(af, "stripes", LUKS_STRIPES, LUKS_STRIPES, &v))
		return luks_err(err, -EINVAL, "keyslot %s: af stripes must be %u", k, LUKS_STRIPES);
	ks->stripes = (uint32_t)v;
	t = str_member(area, "type");
	if (!t || strcmp(t, "raw"))
		return luks_err(err, -EINVAL, "keyslot %s: unsupported area type \"%s\"", k,
				t ? t : "");
	if (copy_str(ks->area_cipher, sizeof(ks->area_cipher), str_member(area, "encryption")))
		return luks_err(err, -EINVAL, "keyslot %s: area encryption missing or invalid", k);
	if (int_member(area, "key_size", 1, LUKS2_MAX_KEY_BYTES, &v))
		return luks_err(err, -EINVAL, "keyslot %s: area key_size missing or out of range",
				k);
	ks->area_key_size = (uint32_t)v;
	if (dec_member(area, "offset", &ks->area_offset) ||
	    dec_member(area, "size", &ks->area_size))
		return luks_err(err, -EINVAL,
				"keyslot %s: area offset or size missing or not a decimal string",
				k);
	if (ks->area_size < luks_af_sectors(ks->key_size, ks->stripes) * LUKS_SECTOR_SIZE)
		return luks_err(err, -EINVAL,
				"keyslot %s: area of %llu bytes is too small for its key material",
				k, (unsigned long long)ks->area_size);
	if (ks->area_offset > UINT64_MAX - ks->area_size)
		return luks_err(err, -EINVAL, "keyslot %s: area offset + size overflows", k);
	return 0;
}

static int check_keyslots(struct json_object *slots, uint64_t hdr_size, struct luks2_meta *m,
			  struct strbuf *err)
{
	uint64_t lo = 2 * hdr_size, hi = lo + m->keyslots_size;
	uint32_t seen = 0;
	int r;

	json_object_object_foreach(slots, k, v)
	{
		int id = key_id(k, LUKS2_KEYSLOTS_MAX);

		if (id < 0 || (seen & (1u << id)))
			return luks_err(err, -EINVAL, "keyslots: invalid or repeated key \"%s\"",
					k);
		seen |= 1u << id;
		r = check_keyslot(k, v, &m->ks[id], err);
		if (r)
			return r;
		m->ks[id].used = true;
		m->ks[id].digest = -1;
	}
	for (int i = 0; i < LUKS2_KEYSLOTS_MAX; i++) {
		const struct luks2_keyslot *a = &m->ks[i];

		if (!a->used)
			continue;
		if (a->area_offset < lo || a->area_offset + a->area_size > hi)
			return luks_err(err, -EINVAL,
					"keyslot %d: area [%llu, %llu) is outside the keyslots "
					"area [%llu, %llu)",
					i, (unsigned long long)a->area_offset,
					(unsigned long long)(a->area_offset + a->area_size),
					(unsigned long long)lo, (unsigned long long)hi);
		for (int j = 0; j < i; j++) {
			const struct luks2_keyslot *b = &m->ks[j];

			if (b->used && a->area_offset < b->area_offset + b->area_size &&
			    b->area_offset < a->area_offset + a->area_size)
				return luks_err(err, -EINVAL, "keyslots %d and %d: areas overlap",
						j, i);
		}
	}
	return 0;
}

static uint32_t used_mask_ks(const struct luks2_meta *m)
{
	uint32_t mask = 0;

	for (int i = 0; i < LUKS2_KEYSLOTS_MAX; i++)
		if (m->ks[i].used)
			mask |= 1u << i;
	return mask;
}

static int check_digests(struct json_object *digs, struct luks2_meta *m, struct strbuf *err)
{
	uint32_t seg_mask = m->nsegments == 32 ? UINT32_MAX : (1u << m->nsegments) - 1;
	uint32_t seen = 0, ks_mask = used_mask_ks(m);

	json_object_object_foreach(digs, k, v)
	{
		int id = key_id(k, LUKS2_DIGEST_MAX);
		struct luks2_digest *d;
		const char *type;
		int64_t x, ksm, sgm;

		if (id < 0 || (seen & (1u << id)))
			return luks_err(err, -EINVAL, "digests: invalid or repeated key \"%s\"", k);
		seen |= 1u << id;
		d = &m->dig[id];
		if (!json_object_is_type(v, json_type_object))
			return luks_err(err, -EINVAL, "digest %s is not an object", k);
		type = str_member(v, "type");
		if (!type || strcmp(type, "pbkdf2"))
			return luks_err(err, -EINVAL, "digest %s: unsupported type \"%s\"", k,
					type ? type : "");
		ksm = ref_array(v, "keyslots", ks_mask, LUKS2_KEYSLOTS_MAX);
		sgm = ref_array(v, "segments", seg_mask, LUKS2_SEGMENT_MAX);
		if (ksm < 0 || sgm < 0)
			return luks_err(err, -EINVAL,
					"digest %s: keyslots or segments missing or naming what "
					"does not exist",
					k);
		d->keyslots = (uint32_t)ksm;
		d->segments = (uint32_t)sgm;
		if (copy_str(d->hash, sizeof(d->hash), str_member(v, "hash")) ||
		    !luks_hash_size(d->hash))
			return luks_err(err, -EINVAL, "digest %s: hash missing or unknown", k);
		if (int_member(v, "iterations", 1, UINT32_MAX, &x))
			return luks_err(err, -EINVAL, "digest %s: iterations missing or invalid",
					k);
		d->iterations = (uint32_t)x;
		if (!str_member(v, "salt") ||
		    luks_b64_decode(str_member(v, "salt"), d->salt, sizeof(d->salt),
				    &d->salt_len) ||
		    !d->salt_len)
			return luks_err(err, -EINVAL, "digest %s: salt missing or invalid", k);
		if (!str_member(v, "digest") ||
		    luks_b64_decode(str_member(v, "digest"), d->digest, sizeof(d->digest),
				    &d->digest_len) ||
		    !d->digest_len)
			return luks_err(err, -EINVAL, "digest %s: digest missing or invalid", k);
		d->used = true;
		for (int i = 0; i < LUKS2_KEYSLOTS_MAX; i++) {
			if (!(d->keyslots & (1u << i)))
				continue;
			if (m->ks[i].digest >= 0)
				return luks_err(err, -EINVAL, "keyslot %d is in two digests", i);
			m->ks[i].digest = id;
		}
	}
	return 0;
}

static int check_tokens(struct json_object *toks, struct luks2_meta *m, struct strbuf *err)
{
	uint32_t seen = 0, ks_mask = used_mask_ks(m);

	json_object_object_foreach(toks, k, v)
	{
		int id = key_id(k, LUKS2_TOKENS_MAX);

		if (id < 0 || (seen & (1u << id)))
			return luks_err(err, -EINVAL, "tokens: invalid or repeated key \"%s\"", k);
		seen |= 1u << id;
		if (!json_object_is_type(v, json_type_object) || !str_member(v, "type") ||
		    ref_array(v, "keyslots", ks_mask, LUKS2_KEYSLOTS_MAX) < 0)
			return luks_err(err, -EINVAL,
					"token %s: needs a type and keyslots naming existing key "
					"slots",
					k);
		m->ntokens++;
	}
	return 0;
}

int luks2_json_check(struct json_object *j, uint64_t hdr_size, uint64_t dev_size,
		     struct luks2_meta *m, struct strbuf *err)
{
	struct json_object *slots, *toks, *segs, *digs, *cfg;
	uint64_t meta_end;
	size_t text;
	int r;

	memset(m, 0, sizeof(*m));
	if (!json_object_is_type(j, json_type_object))
		return luks_err(err, -EINVAL, "JSON metadata is not an object");
	slots = member(j, "keyslots", json_type_object);
	toks = member(j, "tokens", json_type_object);
	segs = member(j, "segments", json_type_object);
	digs = member(j, "digests", json_type_object);
	cfg = member(j, "config", json_type_object);
	if (!slots || !toks || !segs || !digs || !cfg)
		return luks_err(err, -EINVAL,
				"JSON metadata lacks one of keyslots, tokens, segments, digests, "
				"config (objects)");
	r = check_config(cfg, hdr_size, m, err);
	if (!r)
		r = check_segments(segs, m, err);
	if (!r)
		r = check_keyslots(slots, hdr_size, m, err);
	if (!r)
		r = check_digests(digs, m, err);
	if (!r)
		r = check_tokens(toks, m, err);
	if (r)
		return r;
	for (unsigned i = 0; i < m->nsegments; i++) {
		bool found = false;

		for (int d = 0; d < LUKS2_DIGEST_MAX; d++)
			if (m->dig[d].used && (m->dig[d].segments & (1u << i)))
				found = true;
		if (m->seg[i].crypt && !found)
			return luks_err(err, -EINVAL, "segment %u has no digest", i);
	}
	meta_end = 2 * hdr_size + m->keyslots_size;
	for (unsigned i = 0; i < m->nsegments; i++)
		if (m->seg[i].offset && m->seg[i].offset < meta_end)
			return luks_err(err, -EINVAL,
					"segment %u at offset %llu overlaps the metadata and "
					"keyslots areas (%llu bytes)",
					i, (unsigned long long)m->seg[i].offset,
					(unsigned long long)meta_end);
	if (dev_size && meta_end > dev_size)
		return luks_err(err, -EINVAL,
				"device too small for the LUKS2 metadata and keyslots areas (%llu "
				"bytes)",
				(unsigned long long)meta_end);
	text = strlen(luks2_json_text(j));
	if (text >= m->json_size)
		return luks_err(err, -ENOSPC, "JSON metadata does not fit its area (%zu bytes)",
				text);
	return 0;
}

/* ---- builders --------------------------------------------------------------------------- */

struct json_object *luks2_json_u64(uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%llu", (unsigned long long)v);
	return json_object_new_string(s);
}

static void add(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}

struct json_object *luks2_json_keyslot(const struct luks2_keyslot *ks)
{
	struct json_object *o = json_object_new_object(), *af = json_object_new_object();
	struct json_object *area = json_object_new_object(), *kdf = json_object_new_object();
	char *salt = luks_b64_encode(ks->salt, LUKS_SALTSIZE);

	add(o, "type", json_object_new_string("luks2"));
	add(o, "key_size", json_object_new_int((int32_t)ks->key_size));
	add(af, "type", json_object_new_string("luks1"));
	add(af, "stripes", json_object_new_int((int32_t)ks->stripes));
	add(af, "hash", json_object_new_string(ks->af_hash));
	add(o, "af", af);
	add(area, "type", json_object_new_string("raw"));
	add(area, "offset", luks2_json_u64(ks->area_offset));
	add(area, "size", luks2_json_u64(ks->area_size));
	add(area, "encryption", json_object_new_string(ks->area_cipher));
	add(area, "key_size", json_object_new_int((int32_t)ks->area_key_size));
	add(o, "area", area);
	add(kdf, "type", json_object_new_string(bs_pbkdf_type_name(ks->kdf)));
	if (ks->kdf == BS_PBKDF2) {
		add(kdf, "hash", json_object_new_string(ks->kdf_hash));
		add(kdf, "iterations", json_object_new_int64(ks->iterations));
	} else {
		add(kdf, "time", json_object_new_int64(ks->iterations));
		add(kdf, "memory", json_object_new_int64(ks->memory));
		add(kdf, "cpus", json_object_new_int64(ks->cpus));
	}
	add(kdf, "salt", json_object_new_string(salt ? salt : ""));
	add(o, "kdf", kdf);
	free(salt);
	return o;
}

static struct json_object *id_array(uint32_t mask)
{
	struct json_object *a = json_object_new_array();
	char s[12];

	for (int i = 0; i < 32; i++)
		if (mask & (1u << i)) {
			snprintf(s, sizeof(s), "%d", i);
			json_object_array_add(a, json_object_new_string(s));
		}
	return a;
}

struct json_object *luks2_json_digest(const struct luks2_digest *d)
{
	struct json_object *o = json_object_new_object();
	char *salt = luks_b64_encode(d->salt, d->salt_len);
	char *dig = luks_b64_encode(d->digest, d->digest_len);

	add(o, "type", json_object_new_string("pbkdf2"));
	add(o, "keyslots", id_array(d->keyslots));
	add(o, "segments", id_array(d->segments));
	add(o, "hash", json_object_new_string(d->hash));
	add(o, "iterations", json_object_new_int64(d->iterations));
	add(o, "salt", json_object_new_string(salt ? salt : ""));
	add(o, "digest", json_object_new_string(dig ? dig : ""));
	free(salt);
	free(dig);
	return o;
}

/* Removes the string ID from array A if present. */
static void array_remove(struct json_object *a, const char *id)
{
	for (size_t i = json_object_array_length(a); i-- > 0;) {
		struct json_object *e = json_object_array_get_idx(a, i);

		if (json_object_is_type(e, json_type_string) &&
		    !strcmp(json_object_get_string(e), id))
			json_object_array_del_idx(a, i, 1);
	}
}

void luks2_json_unassign(struct json_object *j, int slot)
{
	static const char *const sections[] = {"digests", "tokens"};
	char id[12];

	snprintf(id, sizeof(id), "%d", slot);
	for (size_t s = 0; s < 2; s++) {
		struct json_object *sec = member(j, sections[s], json_type_object);

		if (!sec)
			continue;
		json_object_object_foreach(sec, k, v)
		{
			struct json_object *a = member(v, "keyslots", json_type_array);

			(void)k;
			if (a)
				array_remove(a, id);
		}
	}
}

void luks2_json_assign(struct json_object *j, int slot, int digest)
{
	struct json_object *digs = member(j, "digests", json_type_object), *d, *a;
	char id[12], dk[12];

	snprintf(id, sizeof(id), "%d", slot);
	if (!digs)
		return;
	{
		json_object_object_foreach(digs, k, v)
		{
			(void)k;
			a = member(v, "keyslots", json_type_array);
			if (a)
				array_remove(a, id);
		}
	}
	if (digest < 0)
		return;
	snprintf(dk, sizeof(dk), "%d", digest);
	d = member(digs, dk, json_type_object);
	a = d ? member(d, "keyslots", json_type_array) : NULL;
	if (a)
		json_object_array_add(a, json_object_new_string(id));
}
