/*
 * luks.h - LUKS1 and LUKS2 volumes, compatible with cryptsetup 2.6.
 *
 * A header is read from a struct bs_bdev (a host file or block device, a daemon device over
 * NBD, or memory), checked completely before any field is used, and kept as a struct
 * luks_hdr that refers to (but does not own) that bdev; the key management calls update it
 * and write it back there.  LUKS2 metadata stays the JSON tree that was read, modified in
 * place, so keys this code does not know survive a rewrite; every write puts both binary
 * headers with the next sequence number.  A damaged LUKS2 header copy is rebuilt from the
 * good one when the header is loaded with REPAIR.
 *
 * Errors: functions return 0 or a negative errno and put one line (no trailing newline) in
 * ERR saying what was wrong.  -EPERM means the passphrase opens no key slot; -EINVAL a bad
 * header or parameter; -ENOSPC no room for a key slot; -ENOMEM memory, including a KDF that
 * asks for more than this machine has.
 *
 * Secrets (passphrases, volume keys, derived keys, AF material) are only ever held in
 * locked memory (bs_secure_alloc) and wiped; volume keys returned to callers are too.
 */
#ifndef BS_FORMATS_LUKS_H
#define BS_FORMATS_LUKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/pbkdf.h"
#include "engine/bdev.h"
#include "util/strbuf.h"

#define LUKS_ANY_SLOT (-1)

struct luks_hdr;

/* How new key slots derive their keys (cryptsetup's --pbkdf options). */
struct luks_pbkdf_opts {
	enum bs_pbkdf_type type;
	bool type_set;	       /* false: pbkdf2 for LUKS1, argon2id for LUKS2 */
	char hash[32];	       /* "" = sha256 (PBKDF2, AF and digest hash) */
	uint32_t iter_time_ms; /* 0 = 2000 */
	uint32_t iterations;   /* forced iterations / Argon2 time cost; 0 = benchmark */
	uint32_t memory_kb;    /* Argon2 memory cost (limit when benchmarking); 0 = default */
	uint32_t parallel;     /* Argon2 threads; 0 = min(4, CPUs) */
};

struct luks_format_opts {
	int version;	    /* 1 or 2 */
	const char *cipher; /* dm-crypt spec, NULL = aes-xts-plain64 */
	uint32_t key_bytes; /* 0 = 32, or 64 for XTS */
	struct luks_pbkdf_opts pbkdf;
	unsigned sector_size; /* LUKS2 encryption sector size (512..4096); 0 = 512 */
	int keyslot;	      /* LUKS_ANY_SLOT = 0 */
	const char *uuid;     /* NULL = random */
	const char *label;    /* LUKS2 */
	const char *subsystem;
	bool offset_set;	   /* data offset given */
	uint64_t data_offset;	   /* bytes */
	bool detached;		   /* the header device is not the data device */
	uint64_t metadata_size;	   /* LUKS2 header copy size (16 KiB .. 4 MiB), 0 = 16 KiB */
	uint64_t keyslots_size;	   /* LUKS2 keyslots area, 0 = what fits in 16 MiB */
	const uint8_t *volume_key; /* NULL = random */
	/*
	 * LUKS2 authenticated encryption (cryptsetup's --integrity): NULL, or "hmac(sha256)",
	 * "hmac(sha1)", "hmac(sha512)" or "aead" (see luks_integrity_name); key_bytes then counts
	 * the cipher key only, the HMAC key is added.  With a detached header, DATA_DEV is the
	 * (writable) data device, where the integrity device is formatted.
	 */
	const char *integrity;
	bool integrity_no_wipe; /* leave the data area as it is (its sectors fail to read) */
	struct bs_bdev *data_dev;
};

/* The data segment, as a crypt table needs it. */
struct luks_segment_info {
	char cipher[64];
	size_t key_bytes;
	uint64_t offset;   /* bytes into the data device */
	uint64_t size;	   /* bytes; 0 = to the end of the data device */
	uint64_t iv_tweak; /* 512-byte sectors */
	unsigned sector_size;
	char integrity[32]; /* LUKS2 integrity type ("hmac(sha256)", "aead"), "" for none */
	char dm_cipher[96]; /* the crypt table's cipher: CIPHER, or the AEAD specification */
	unsigned tag_size;  /* integrity metadata bytes per sector (with integrity) */
};

/* 0 when DEV has no LUKS magic, else the version in the header (1, 2, or another). */
int luks_probe(struct bs_bdev *dev);

/*
 * Reads and checks the header on DEV.  With REPAIR (and DEV writable) a damaged or stale
 * LUKS2 header copy is rewritten from the good one.
 */
int luks_load(struct bs_bdev *dev, bool repair, struct luks_hdr **out, struct strbuf *err);
void luks_free(struct luks_hdr *h);

/*
 * Bytes the header device must hold for a format with O (for creating detached header
 * files); also checks O.
 */
int luks_format_header_size(const struct luks_format_opts *o, uint64_t *bytes, struct strbuf *err);

/*
 * Formats HDR_DEV: a new volume key (or o->volume_key), the header, one key slot for PASS.
 * DATA_SIZE is the size of the data device in bytes (HDR_DEV's own size unless detached).
 * On success *out (optional) holds the new header and *slot (optional) the key slot used.
 */
int luks_format(struct bs_bdev *hdr_dev, uint64_t data_size, const struct luks_format_opts *o,
		const void *pass, size_t pass_len, struct luks_hdr **out, int *slot,
		struct strbuf *err);

int luks_version(const struct luks_hdr *h);
const char *luks_uuid(const struct luks_hdr *h);
size_t luks_volume_key_size(const struct luks_hdr *h);
int luks_max_slots(const struct luks_hdr *h);
bool luks_slot_active(const struct luks_hdr *h, int slot);
int luks_active_slots(const struct luks_hdr *h);
/* Bytes of header and key slot areas (what a header backup holds). */
uint64_t luks_header_area_size(const struct luks_hdr *h);
/* The data offset in bytes. */
uint64_t luks_data_offset(const struct luks_hdr *h);

/* The single data segment; refuses what this stack cannot activate, saying why. */
int luks_segment(const struct luks_hdr *h, struct luks_segment_info *seg, struct strbuf *err);

/*
 * Recovers the volume key with PASS from SLOT (or any slot).  Returns 0 with *vk (locked
 * memory, *vk_len bytes; free with bs_secure_free) and *slot_used, or -EPERM.
 */
int luks_unlock(struct luks_hdr *h, int slot, const void *pass, size_t pass_len, uint8_t **vk,
		size_t *vk_len, int *slot_used, struct strbuf *err);
/* Checks that VK is this volume's key (the header digest); 0 or -EPERM. */
int luks_verify_key(struct luks_hdr *h, const uint8_t *vk, size_t vk_len, struct strbuf *err);

/* Stores VK in SLOT (or the first free one) under PASS; *slot_out gets the slot. */
int luks_add_key(struct luks_hdr *h, int slot, const uint8_t *vk, size_t vk_len, const void *pass,
		 size_t pass_len, const struct luks_pbkdf_opts *pb, int *slot_out,
		 struct strbuf *err);
/*
 * Replaces the passphrase of the unlocked SLOT: LUKS2 keeps the slot number, LUKS1 moves
 * to the first free slot (as cryptsetup); *slot_out gets the slot that now holds it.
 */
int luks_change_key(struct luks_hdr *h, int slot, const uint8_t *vk, size_t vk_len,
		    const void *pass, size_t pass_len, const struct luks_pbkdf_opts *pb,
		    int *slot_out, struct strbuf *err);
/* Wipes SLOT's key material and removes it from the header. */
int luks_kill_slot(struct luks_hdr *h, int slot, struct strbuf *err);
/* Sets the UUID (NULL: a new random one). */
int luks_set_uuid(struct luks_hdr *h, const char *uuid, struct strbuf *err);

/* Text close to `cryptsetup luksDump`. */
void luks_dump(const struct luks_hdr *h, const char *devname, struct strbuf *out);
/* The --dump-volume-key text. */
void luks_dump_volume_key(const struct luks_hdr *h, const char *devname, const uint8_t *vk,
			  size_t vk_len, struct strbuf *out);

/*
 * Restores the header areas from BACKUP (a bdev holding a header backup) to DEV; refuses a
 * backup that does not check out or whose data offset or key size differ from a valid
 * header already on DEV.
 */
int luks_header_restore(struct bs_bdev *dev, struct bs_bdev *backup, struct strbuf *err);

#define LUKS_TABLE_DISCARDS (1u << 0)
#define LUKS_TABLE_ATTACHED (1u << 1) /* the header is on the data device */
/* DATA_PATH is the segment's integrity device (DATA_SIZE its size): data at its offset 0 */
#define LUKS_TABLE_INTEGRITY_DEV (1u << 2)

/*
 * The crypt table line for the data segment with key VK on DATA_PATH (DATA_SIZE bytes):
 * "0 <sectors> crypt <cipher> <hex key> <iv_tweak> <path> <offset> [opts]", appended to
 * TABLE, which must be a secure strbuf.  SIZE_SECTORS, when not 0, overrides the length.
 * With LUKS_TABLE_ATTACHED the data must not overlap the header (a header meant to be
 * detached, with data at 0, is refused).
 */
int luks_crypt_table(const struct luks_hdr *h, const uint8_t *vk, size_t vk_len,
		     const char *data_path, uint64_t data_size, uint64_t size_sectors,
		     unsigned flags, struct strbuf *table, struct strbuf *err);
/*
 * Authenticated encryption (luks_integrity.c).  A volume whose segment has integrity opens
 * as two devices, as cryptsetup makes them: NAME_dif, an `integrity` device without internal
 * hash over the data segment (dm UUID CRYPT-INTEGRITY-<uuid without dashes>-NAME_dif), and
 * NAME, `crypt` with integrity:<tag size>:aead on top of it.
 *
 * luks_integrity_name() maps cryptsetup's --integrity argument (hmac-sha256, ..., aead) to
 * the LUKS2 name (hmac(sha256), ..., aead); NULL for what is not supported.
 * luks_integrity_table() reads the integrity superblock in the data segment of DATA and
 * appends the integrity table line (on DATA_PATH) to TABLE; *PROVIDED gets its size in
 * 512-byte sectors (what luks_crypt_table then takes as DATA_SIZE / 512 with
 * LUKS_TABLE_INTEGRITY_DEV).  luks_integrity_format() writes the superblock and an empty
 * journal into the data segment of DATA, and with WIPE fills every sector with encrypted,
 * authenticated zeroes under the volume key VK (so that all of it reads back as zeroes).
 */
const char *luks_integrity_name(const char *cli);
int luks_integrity_table(const struct luks_hdr *h, struct bs_bdev *data, const char *data_path,
			 uint64_t *provided, struct strbuf *table, struct strbuf *err);
int luks_integrity_format(const struct luks_hdr *h, struct bs_bdev *data, const uint8_t *vk,
			  size_t vk_len, bool wipe, struct strbuf *err);

/* The dm UUID cryptsetup gives the device: CRYPT-LUKS<v>-<uuid without dashes>-<NAME>. */
void luks_dm_uuid(const struct luks_hdr *h, const char *name, char *out, size_t outlen);

/* Checks a UUID given by a user (8-4-4-4-12 hex digits). */
bool luks_uuid_valid(const char *uuid);

#endif
