/*
 * luks.c - the version-independent LUKS API (luks.h): probing, loading, key management
 * dispatch, header restore and the crypt table of an unlocked volume.
 */
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/luks_int.h"
#include "util/parse.h"
#include "util/secmem.h"

int luks_probe(struct bs_bdev *dev)
{
	uint8_t b[8];

	if (bs_bdev_size(dev) < sizeof(b) || bs_bdev_read(dev, b, sizeof(b), 0) ||
	    memcmp(b, LUKS_MAGIC, LUKS_MAGIC_L))
		return 0;
	return b[6] << 8 | b[7];
}

static struct luks_hdr *hdr_new(struct bs_bdev *dev)
{
	struct luks_hdr *h = calloc(1, sizeof(*h));

	if (h)
		h->dev = dev;
	return h;
}

void luks_free(struct luks_hdr *h)
{
	if (!h)
		return;
	json_object_put(h->v2.json);
	bs_wipe(h, sizeof(*h));
	free(h);
}

int luks_load(struct bs_bdev *dev, bool repair, struct luks_hdr **out, struct strbuf *err)
{
	struct luks_hdr *h;
	int v = luks_probe(dev), r;

	*out = NULL;
	if (v != 0 && v != 1 && v != 2)
		return luks_err(err, -EINVAL, "%s: unsupported LUKS version %d", dev->name, v);
	h = hdr_new(dev);
	if (!h)
		return luks_err(err, -ENOMEM, "out of memory");
	if (v == 1) {
		uint8_t buf[LUKS1_PHDR_DISK_SIZE];
		struct strbuf why = STRBUF_INIT;

		h->version = 1;
		if (bs_bdev_size(dev) < sizeof(buf))
			r = luks_err(err, -EINVAL, "Device %s is not a valid LUKS device.",
				     dev->name);
		else if ((r = bs_bdev_read(dev, buf, sizeof(buf), 0)))
			luks_err(err, r, "%s: cannot read the header: %s", dev->name, strerror(-r));
		else if ((r = luks1_parse(buf, bs_bdev_size(dev), &h->v1, &why)))
			luks_err(err, r, "%s: %s", dev->name, sb_str(&why));
		sb_free(&why);
	} else {
		h->version = 2;
		r = luks2_load(h, repair, err);
		if (r == -ENOENT)
			r = luks_err(err, -EINVAL, "Device %s is not a valid LUKS device.",
				     dev->name);
	}
	if (r) {
		luks_free(h);
		return r;
	}
	*out = h;
	return 0;
}

int luks_version(const struct luks_hdr *h)
{
	return h->version;
}

const char *luks_uuid(const struct luks_hdr *h)
{
	return h->version == 1 ? h->v1.uuid : h->v2.uuid;
}

int luks_max_slots(const struct luks_hdr *h)
{
	return h->version == 1 ? LUKS_NUMKEYS : LUKS2_KEYSLOTS_MAX;
}

bool luks_slot_active(const struct luks_hdr *h, int slot)
{
	if (slot < 0 || slot >= luks_max_slots(h))
		return false;
	return h->version == 1 ? h->v1.kb[slot].active == LUKS_KEY_ENABLED
			       : h->v2.meta.ks[slot].used;
}

int luks_active_slots(const struct luks_hdr *h)
{
	int n = 0;

	for (int i = 0; i < luks_max_slots(h); i++)
		n += luks_slot_active(h, i);
	return n;
}

size_t luks_volume_key_size(const struct luks_hdr *h)
{
	int seg;

	if (h->version == 1)
		return h->v1.key_bytes;
	seg = luks2_default_segment(h);
	for (int i = 0; seg >= 0 && i < LUKS2_KEYSLOTS_MAX; i++) {
		const struct luks2_keyslot *k = &h->v2.meta.ks[i];

		if (k->used && k->digest >= 0 && (h->v2.meta.dig[k->digest].segments & (1u << seg)))
			return k->key_size;
	}
	return 0;
}

uint64_t luks_header_area_size(const struct luks_hdr *h)
{
	if (h->version == 1)
		return (luks1_area_end(&h->v1) + 4095) / 4096 * 4096;
	return 2 * h->v2.hdr_size + h->v2.meta.keyslots_size;
}

uint64_t luks_data_offset(const struct luks_hdr *h)
{
	int seg;

	if (h->version == 1)
		return (uint64_t)h->v1.payload_offset * LUKS_SECTOR_SIZE;
	seg = luks2_default_segment(h);
	return seg < 0 ? 0 : h->v2.meta.seg[seg].offset;
}

int luks_segment(const struct luks_hdr *h, struct luks_segment_info *s, struct strbuf *err)
{
	const struct luks2_segment *g;
	int seg, r;

	memset(s, 0, sizeof(*s));
	if (h->version == 1) {
		if (h->v1.cipher_mode[0])
			snprintf(s->cipher, sizeof(s->cipher), "%s-%s", h->v1.cipher_name,
				 h->v1.cipher_mode);
		else
			snprintf(s->cipher, sizeof(s->cipher), "%s", h->v1.cipher_name);
		s->key_bytes = h->v1.key_bytes;
		s->offset = (uint64_t)h->v1.payload_offset * LUKS_SECTOR_SIZE;
		s->sector_size = LUKS_SECTOR_SIZE;
		strcpy(s->dm_cipher, s->cipher);
		return luks_cipher_check(s->cipher, s->key_bytes, err);
	}
	if (h->v2.meta.nsegments != 1)
		return luks_err(err, -EINVAL,
				"LUKS2 headers with %u data segments are not supported",
				h->v2.meta.nsegments);
	seg = luks2_default_segment(h);
	if (seg < 0)
		return luks_err(err, -EINVAL, "LUKS2 data segment is not of type crypt");
	g = &h->v2.meta.seg[seg];
	if (g->integrity && g->integrity_journal)
		return luks_err(err, -EINVAL,
				"LUKS2 integrity with journal encryption or journal integrity is "
				"not supported");
	if (g->integrity && g->size)
		return luks_err(err, -EINVAL,
				"LUKS2 integrity on a data segment of fixed size is not supported");
	if (g->nflags)
		return luks_err(err, -EINVAL,
				"LUKS2 segment flags (reencryption) are not supported");
	snprintf(s->cipher, sizeof(s->cipher), "%s", g->cipher);
	s->key_bytes = luks_volume_key_size(h);
	s->offset = g->offset;
	s->size = g->size;
	s->iv_tweak = g->iv_tweak;
	s->sector_size = g->sector_size;
	if (s->offset % s->sector_size)
		return luks_err(err, -EINVAL, "LUKS2 data offset not aligned to the sector size");
	if (!s->key_bytes)
		return luks_err(err, -EINVAL, "LUKS2 header has no key slot for the data segment");
	if (g->integrity) {
		struct luks_integrity_info ii;

		r = luks_integrity_resolve(s->cipher, g->integrity_type, &ii, err);
		if (!r)
			r = luks_integrity_key_check(s->cipher, g->integrity_type, s->key_bytes,
						     err);
		if (r)
			return r;
		strcpy(s->integrity, g->integrity_type);
		strcpy(s->dm_cipher, ii.dm_cipher);
		s->tag_size = ii.tag_size;
		return 0;
	}
	strcpy(s->dm_cipher, s->cipher);
	r = luks_cipher_check(s->cipher, s->key_bytes, err);
	return r;
}

/* ---- format ----------------------------------------------------------------------------- */

static int format_check(const struct luks_format_opts *o, size_t *key_bytes, struct strbuf *err)
{
	const char *cipher = o->cipher ? o->cipher : LUKS_DEFAULT_CIPHER;
	size_t kb = o->key_bytes;

	if (o->version != 1 && o->version != 2)
		return luks_err(err, -EINVAL, "unknown LUKS version %d", o->version);
	if (!kb) {
		kb = LUKS_DEFAULT_KEYBITS / 8;
		if (strstr(cipher, "-xts-") || strstr(cipher, "xts("))
			kb *= 2;
	}
	if (o->uuid && !luks_uuid_valid(o->uuid))
		return luks_err(err, -EINVAL, "Wrong LUKS UUID format provided.");
	if (o->version == 1 && (o->label || o->subsystem || o->sector_size > LUKS_SECTOR_SIZE ||
				o->metadata_size || o->keyslots_size))
		return luks_err(
		    err, -EINVAL,
		    "labels, sector sizes and metadata sizes need LUKS2 (--type luks2)");
	if (o->keyslot != LUKS_ANY_SLOT &&
	    (o->keyslot < 0 || o->keyslot >= (o->version == 1 ? LUKS_NUMKEYS : LUKS2_KEYSLOTS_MAX)))
		return luks_err(err, -EINVAL, "Key slot %d is invalid.", o->keyslot);
	if (o->integrity) {
		struct luks_integrity_info ii;
		int r;

		if (o->version != 2)
			return luks_err(err, -EINVAL,
					"Integrity option can be used only for LUKS2 "
					"format.");
		r = luks_integrity_resolve(cipher, o->integrity, &ii, err);
		if (r)
			return r;
		kb += ii.integrity_key_bytes; /* the HMAC key follows the cipher key */
		*key_bytes = kb;
		return luks_integrity_key_check(cipher, o->integrity, kb, err);
	}
	*key_bytes = kb;
	return luks_cipher_check(cipher, kb, err);
}

int luks_format_header_size(const struct luks_format_opts *o, uint64_t *bytes, struct strbuf *err)
{
	size_t kb;
	int r = format_check(o, &kb, err);

	if (r)
		return r;
	if (o->version == 1) {
		uint64_t af = luks_af_sectors(kb, LUKS_STRIPES), end = LUKS_ALIGN_KEYSLOTS / 512;

		for (int i = 0; i < LUKS_NUMKEYS; i++)
			end = (end + af + 7) / 8 * 8;
		*bytes = end * LUKS_SECTOR_SIZE;
		if (!o->detached && !o->offset_set)
			*bytes = (*bytes + LUKS_DATA_ALIGNMENT - 1) / LUKS_DATA_ALIGNMENT *
				 LUKS_DATA_ALIGNMENT;
		return 0;
	} else {
		uint64_t hs, ks, off;

		r = luks2_layout(o, &hs, &ks, &off, err);
		if (r)
			return r;
		*bytes = 2 * hs + ks;
		if (!o->detached && off > *bytes)
			*bytes = off;
		return 0;
	}
}

int luks_format(struct bs_bdev *hdr_dev, uint64_t data_size, const struct luks_format_opts *o,
		const void *pass, size_t pass_len, struct luks_hdr **out, int *slot,
		struct strbuf *err)
{
	struct luks_pbkdf_opts slot_pb = o->pbkdf;
	struct bs_pbkdf kdf;
	struct luks_hdr *h;
	uint8_t *vk;
	size_t kb;
	int r, s = -1;

	if (out)
		*out = NULL;
	r = format_check(o, &kb, err);
	if (r)
		return r;
	if (o->integrity && o->detached && (!o->data_dev || o->data_dev->readonly))
		return luks_err(
		    err, -EINVAL,
		    "integrity with a detached header needs the data device (writable)");
	if (hdr_dev->readonly)
		return luks_err(err, -EROFS, "%s is read-only", hdr_dev->name);
	/* the key slot's KDF is settled (and benchmarked) before anything is written */
	r = luks_pbkdf_resolve(&o->pbkdf, o->version, kb, &kdf, err);
	if (r)
		return r;
	slot_pb.type = kdf.type;
	slot_pb.type_set = true;
	slot_pb.iterations = kdf.iterations;
	if (kdf.type != BS_PBKDF2) {
		slot_pb.memory_kb = kdf.memory_kb;
		slot_pb.parallel = kdf.parallel;
	}
	h = hdr_new(hdr_dev);
	vk = bs_secure_alloc(kb);
	if (!h || !vk) {
		luks_free(h);
		bs_secure_free(vk);
		return luks_err(err, -ENOMEM, "out of memory");
	}
	if (o->volume_key)
		memcpy(vk, o->volume_key, kb);
	else if (RAND_bytes(vk, (int)kb) != 1)
		r = luks_err(err, -EIO, "cannot read random bytes");
	h->version = o->version;
	if (!r && o->version == 1)
		r = luks1_format(h, data_size, o, &slot_pb, vk, kb, pass, pass_len, &s, err);
	else if (!r)
		r = luks2_format(h, data_size, o, &slot_pb, vk, kb, pass, pass_len, &s, err);
	if (!r && o->integrity) /* the data segment holds the integrity device */
		r = luks_integrity_format(h, o->detached ? o->data_dev : hdr_dev, vk, kb,
					  !o->integrity_no_wipe, err);
	bs_secure_free(vk);
	if (r) {
		luks_free(h);
		return r;
	}
	if (slot)
		*slot = s;
	if (out)
		*out = h;
	else
		luks_free(h);
	return 0;
}

/* ---- keys ------------------------------------------------------------------------------- */

int luks_unlock(struct luks_hdr *h, int slot, const void *pass, size_t pass_len, uint8_t **vk,
		size_t *vk_len, int *slot_used, struct strbuf *err)
{
	int r;

	*vk = NULL;
	if (slot != LUKS_ANY_SLOT && (slot < 0 || slot >= luks_max_slots(h)))
		return luks_err(err, -EINVAL, "Key slot %d is invalid.", slot);
	if (h->version == 2)
		return luks2_unlock(h, slot, pass, pass_len, vk, vk_len, slot_used, err);
	*vk = bs_secure_alloc(h->v1.key_bytes);
	if (!*vk)
		return luks_err(err, -ENOMEM, "out of memory");
	r = luks1_unlock(h, slot, pass, pass_len, *vk, slot_used, err);
	if (r) {
		bs_secure_free(*vk);
		*vk = NULL;
		return r;
	}
	*vk_len = h->v1.key_bytes;
	return 0;
}

int luks_verify_key(struct luks_hdr *h, const uint8_t *vk, size_t vk_len, struct strbuf *err)
{
	int r = h->version == 1 ? luks1_verify_key(h, vk, vk_len) : luks2_verify_key(h, vk, vk_len);

	return r ? luks_err(err, -EPERM, "Volume key does not match the volume.") : 0;
}

int luks_add_key(struct luks_hdr *h, int slot, const uint8_t *vk, size_t vk_len, const void *pass,
		 size_t pass_len, const struct luks_pbkdf_opts *pb, int *slot_out,
		 struct strbuf *err)
{
	if (h->dev->readonly)
		return luks_err(err, -EROFS, "%s is read-only", h->dev->name);
	if (h->version == 2)
		return luks2_add_key(h, slot, vk, vk_len, pass, pass_len, pb, slot_out, err);
	if (luks1_verify_key(h, vk, vk_len))
		return luks_err(err, -EPERM, "Volume key does not match the volume.");
	return luks1_add_key(h, slot, vk, pass, pass_len, pb, slot_out, err);
}

int luks_change_key(struct luks_hdr *h, int slot, const uint8_t *vk, size_t vk_len,
		    const void *pass, size_t pass_len, const struct luks_pbkdf_opts *pb,
		    int *slot_out, struct strbuf *err)
{
	int r, free_slot = -1;

	if (h->dev->readonly)
		return luks_err(err, -EROFS, "%s is read-only", h->dev->name);
	if (!luks_slot_active(h, slot))
		return luks_err(err, -EINVAL, "Keyslot %d is not active.", slot);
	if (h->version == 2) {
		r = luks2_change_key(h, slot, vk, vk_len, pass, pass_len, pb, err);
		if (!r && slot_out)
			*slot_out = slot;
		return r;
	}
	if (luks1_verify_key(h, vk, vk_len))
		return luks_err(err, -EPERM, "Volume key does not match the volume.");
	for (int i = 0; i < LUKS_NUMKEYS && free_slot < 0; i++)
		if (h->v1.kb[i].active == LUKS_KEY_DISABLED)
			free_slot = i;
	if (free_slot < 0) {
		/* no free slot: the old one is overwritten, as cryptsetup does */
		r = luks1_kill_slot(h, slot, true, err);
		if (!r)
			r = luks1_add_key(h, slot, vk, pass, pass_len, pb, slot_out, err);
		return r;
	}
	r = luks1_add_key(h, free_slot, vk, pass, pass_len, pb, slot_out, err);
	if (!r)
		r = luks1_kill_slot(h, slot, true, err);
	return r;
}

int luks_kill_slot(struct luks_hdr *h, int slot, struct strbuf *err)
{
	if (h->dev->readonly)
		return luks_err(err, -EROFS, "%s is read-only", h->dev->name);
	return h->version == 1 ? luks1_kill_slot(h, slot, true, err)
			       : luks2_kill_slot(h, slot, err);
}

int luks_set_uuid(struct luks_hdr *h, const char *uuid, struct strbuf *err)
{
	char u[37];

	if (uuid && !luks_uuid_valid(uuid))
		return luks_err(err, -EINVAL, "Wrong LUKS UUID format provided.");
	if (h->dev->readonly)
		return luks_err(err, -EROFS, "%s is read-only", h->dev->name);
	if (uuid)
		snprintf(u, sizeof(u), "%s", uuid);
	else
		luks_uuid_generate(u);
	for (char *c = u; *c; c++)
		if (*c >= 'A' && *c <= 'F')
			*c = (char)(*c - 'A' + 'a');
	if (h->version == 1) {
		memset(h->v1.uuid, 0, sizeof(h->v1.uuid));
		strcpy(h->v1.uuid, u);
		return luks1_write(h, err);
	}
	memset(h->v2.uuid, 0, sizeof(h->v2.uuid));
	strcpy(h->v2.uuid, u);
	return luks2_write(h, err);
}

/* ---- dumps ------------------------------------------------------------------------------ */

void luks_dump(const struct luks_hdr *h, const char *devname, struct strbuf *out)
{
	if (h->version == 1)
		luks1_dump(h, devname, out);
	else
		luks2_dump(h, out);
}

void luks_dump_volume_key(const struct luks_hdr *h, const char *devname, const uint8_t *vk,
			  size_t vk_len, struct strbuf *out)
{
	struct luks_segment_info s;
	struct strbuf e = STRBUF_INIT;
	char name[64] = "", mode[64] = "";

	luks_segment(h, &s, &e);
	sb_free(&e);
	if (luks_cipher_split(s.cipher, name, sizeof(name), mode, sizeof(mode)))
		snprintf(name, sizeof(name), "%s", s.cipher);
	sb_printf(out, "LUKS header information for %s\n", devname);
	sb_printf(out, "Cipher name:   \t%s\n", name);
	sb_printf(out, "Cipher mode:   \t%s\n", mode);
	sb_printf(out, "Payload offset:\t%llu\n",
		  (unsigned long long)(luks_data_offset(h) / LUKS_SECTOR_SIZE));
	sb_printf(out, "UUID:          \t%s\n", luks_uuid(h));
	sb_printf(out, "MK bits:       \t%zu\n", vk_len * 8);
	sb_puts(out, "MK dump:\t");
	luks_hexdump(out, vk, vk_len, 16, "\t\t");
}

/* ---- header restore --------------------------------------------------------------------- */

int luks_header_restore(struct bs_bdev *dev, struct bs_bdev *backup, struct strbuf *err)
{
	struct luks_hdr *b = NULL, *cur = NULL;
	struct strbuf e = STRBUF_INIT;
	uint64_t len;
	uint8_t *buf = NULL;
	int r;

	r = luks_load(backup, false, &b, &e);
	if (r) {
		luks_err(err, r, "header backup %s is not usable: %s", backup->name, sb_str(&e));
		goto out;
	}
	len = luks_header_area_size(b);
	if (bs_bdev_size(backup) < len) {
		r = luks_err(err, -EINVAL, "header backup %s is truncated (%llu bytes needed)",
			     backup->name, (unsigned long long)len);
		goto out;
	}
	if (bs_bdev_size(dev) < len) {
		r = luks_err(err, -EINVAL, "Device %s is too small for the header (%llu bytes).",
			     dev->name, (unsigned long long)len);
		goto out;
	}
	sb_reset(&e);
	if (luks_probe(dev) && !luks_load(dev, false, &cur, &e)) {
		if (luks_version(cur) != luks_version(b) ||
		    luks_data_offset(cur) != luks_data_offset(b) ||
		    luks_volume_key_size(cur) != luks_volume_key_size(b)) {
			r = luks_err(
			    err, -EINVAL,
			    "Data offset or key size differs on device and backup, restore "
			    "failed.");
			goto out;
		}
	}
	buf = malloc(len);
	if (!buf) {
		r = luks_err(err, -ENOMEM, "out of memory");
		goto out;
	}
	r = bs_bdev_read(backup, buf, len, 0);
	if (r) {
		luks_err(err, r, "cannot read %s: %s", backup->name, strerror(-r));
		goto out;
	}
	r = bs_bdev_write(dev, buf, len, 0, BS_IO_FUA);
	if (!r)
		r = bs_bdev_flush(dev);
	if (r)
		luks_err(err, r, "cannot write the header to %s: %s", dev->name, strerror(-r));
out:
	free(buf);
	luks_free(b);
	luks_free(cur);
	sb_free(&e);
	return r;
}

/* ---- crypt table ------------------------------------------------------------------------ */

void luks_put_path(struct strbuf *t, const char *path)
{
	for (const char *p = path; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\\' || *p == '\n')
			sb_putc(t, '\\');
		sb_putc(t, *p);
	}
}

/* LUKS2 persistent activation flags (config.flags) and the crypt options they stand for. */
static const struct {
	const char *flag, *option;
} persistent_opts[] = {
    {"allow-discards", "allow_discards"},
    {"same-cpu-crypt", "same_cpu_crypt"},
    {"submit-from-crypt-cpus", "submit_from_crypt_cpus"},
    {"no-read-workqueue", "no_read_workqueue"},
    {"no-write-workqueue", "no_write_workqueue"},
};

static bool persistent(const struct luks_hdr *h, const char *flag)
{
	struct json_object *cfg, *flags;

	if (h->version != 2 || !json_object_object_get_ex(h->v2.json, "config", &cfg) ||
	    !json_object_object_get_ex(cfg, "flags", &flags))
		return false;
	for (size_t i = 0; i < json_object_array_length(flags); i++)
		if (!strcmp(json_object_get_string(json_object_array_get_idx(flags, i)), flag))
			return true;
	return false;
}

int luks_crypt_table(const struct luks_hdr *h, const uint8_t *vk, size_t vk_len,
		     const char *data_path, uint64_t data_size, uint64_t size_sectors,
		     unsigned flags, struct strbuf *table, struct strbuf *err)
{
	struct luks_segment_info s;
	uint64_t len;
	char *hex;
	bool opts[sizeof(persistent_opts) / sizeof(persistent_opts[0])];
	unsigned nopt;
	int r;

	if (!table->secure)
		return luks_err(err, -EINVAL, "the table must be built in locked memory");
	r = luks_segment(h, &s, err);
	if (r)
		return r;
	if (vk_len != s.key_bytes)
		return luks_err(err, -EINVAL, "volume key of %zu bytes, the segment needs %zu",
				vk_len, s.key_bytes);
	if (!s.tag_size != !(flags & LUKS_TABLE_INTEGRITY_DEV))
		return luks_err(err, -EINVAL,
				s.tag_size ? "the volume has integrity: its crypt device goes on "
					     "its integrity device"
					   : "the volume has no integrity device");
	if (s.tag_size) {
		/* on the integrity device, which begins where the segment does */
		s.offset = 0;
		flags &= ~LUKS_TABLE_ATTACHED;
	}
	if (s.offset >= data_size)
		return luks_err(err, -EINVAL,
				"data offset %llu is beyond the end of the data device (%llu "
				"bytes)",
				(unsigned long long)s.offset, (unsigned long long)data_size);
	if (s.size && s.size > data_size - s.offset)
		return luks_err(err, -EINVAL,
				"data segment (%llu bytes at %llu) extends beyond the end of the "
				"data device (%llu bytes)",
				(unsigned long long)s.size, (unsigned long long)s.offset,
				(unsigned long long)data_size);
	if ((flags & LUKS_TABLE_ATTACHED) && s.offset < luks_header_area_size(h))
		return luks_err(err, -EINVAL,
				"data offset %llu lies inside the header (%llu bytes): this header "
				"is meant to be detached (--header)",
				(unsigned long long)s.offset,
				(unsigned long long)luks_header_area_size(h));
	len = s.size ? s.size : data_size - s.offset;
	if (size_sectors) {
		if (size_sectors > (data_size - s.offset) / LUKS_SECTOR_SIZE)
			return luks_err(err, -EINVAL,
					"size %llu sectors is larger than the data area (%llu "
					"sectors)",
					(unsigned long long)size_sectors,
					(unsigned long long)((data_size - s.offset) / 512));
		len = size_sectors * LUKS_SECTOR_SIZE;
		if (len % s.sector_size)
			return luks_err(err, -EINVAL,
					"size is not a multiple of the sector size %u",
					s.sector_size);
	}
	len -= len % s.sector_size;
	if (!len)
		return luks_err(err, -EINVAL, "the data area is empty");
	hex = bs_secure_alloc(2 * vk_len + 1);
	if (!hex)
		return luks_err(err, -ENOMEM, "out of memory");
	bs_hex_encode(vk, vk_len, hex);
	sb_printf(table, "0 %llu crypt %s %s %llu ", (unsigned long long)(len / LUKS_SECTOR_SIZE),
		  s.dm_cipher, hex, (unsigned long long)s.iv_tweak);
	bs_secure_free(hex);
	luks_put_path(table, data_path);
	sb_printf(table, " %llu", (unsigned long long)(s.offset / LUKS_SECTOR_SIZE));
	/* activation options: the caller's, and LUKS2's persistent ones (config.flags) */
	opts[0] = (flags & LUKS_TABLE_DISCARDS) || persistent(h, "allow-discards");
	for (size_t i = 1; i < sizeof(persistent_opts) / sizeof(persistent_opts[0]); i++)
		opts[i] = persistent(h, persistent_opts[i].flag);
	nopt = (s.sector_size != LUKS_SECTOR_SIZE) + !!s.tag_size;
	for (size_t i = 0; i < sizeof(persistent_opts) / sizeof(persistent_opts[0]); i++)
		nopt += opts[i];
	if (nopt)
		sb_printf(table, " %u", nopt);
	for (size_t i = 0; i < sizeof(persistent_opts) / sizeof(persistent_opts[0]); i++)
		if (opts[i])
			sb_printf(table, " %s", persistent_opts[i].option);
	if (s.tag_size)
		sb_printf(table, " integrity:%u:aead", s.tag_size);
	if (s.sector_size != LUKS_SECTOR_SIZE)
		sb_printf(table, " sector_size:%u", s.sector_size);
	return 0;
}

void luks_dm_uuid(const struct luks_hdr *h, const char *name, char *out, size_t outlen)
{
	char u[40];
	size_t n = 0;

	for (const char *p = luks_uuid(h); *p && n < sizeof(u) - 1; p++)
		if (*p != '-')
			u[n++] = *p;
	u[n] = '\0';
	snprintf(out, outlen, "CRYPT-LUKS%d-%s-%s", h->version, u, name);
}
