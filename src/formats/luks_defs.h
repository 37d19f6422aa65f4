/*
 * luks_defs.h - constants of the LUKS on-disk formats, named as the specifications name them.
 *
 * LUKS1: "LUKS On-Disk Format Specification", version 1.2.3 (C. Fruhwirth), sections 2.1 (the
 * partition header, table 1), 2.4 (AF-splitter), 3.1 (defaults).  Values marked "cryptsetup"
 * are not in the specification but are what cryptsetup 2.6 writes and requires (key slot
 * alignment, minimum iteration counts), so that headers interoperate.
 *
 * LUKS2: "LUKS2 On-Disk Format Specification", version 1.1.1 (M. Broz), sections 2 (binary
 * header, table 1), 3 (JSON area: keyslots, segments, digests, tokens, config) and 3.x limits;
 * again values marked "cryptsetup" are cryptsetup 2.6 defaults and limits.
 */
#ifndef BS_FORMATS_LUKS_DEFS_H
#define BS_FORMATS_LUKS_DEFS_H

/* ---- both versions -------------------------------------------------------------------- */

#define LUKS_MAGIC		 "LUKS\xba\xbe" /* LUKS1 2.1; LUKS2 table 1 (primary) */
#define LUKS_MAGIC_L		 6
#define LUKS_SECTOR_SIZE	 512u  /* both specifications count offsets in 512-byte sectors */
#define LUKS_STRIPES		 4000u /* LUKS1 3.1: AF stripes; LUKS2 3.2.2 af.stripes */
#define LUKS_SALTSIZE		 32u   /* LUKS1 table 1; LUKS2 kdf salt (cryptsetup) */
#define LUKS_SLOT_ITERATIONS_MIN 1000u /* cryptsetup: PBKDF2 minimum (NIST SP 800-132) */
#define LUKS_MKD_ITERATIONS_MIN	 1000u /* cryptsetup: volume key digest minimum */
#define LUKS_MKD_ITERATIONS_MS	 125u  /* cryptsetup: time given to the volume key digest */
#define LUKS_ALIGN_KEYSLOTS	 4096u /* cryptsetup: key slot areas start 4 KiB aligned */
#define LUKS_DATA_ALIGNMENT	 (1u << 20) /* cryptsetup: default data alignment, 1 MiB */

/* ---- LUKS1 (table 1: the phdr, all integers big-endian) -------------------------------- */

#define LUKS1_VERSION	  1
#define LUKS_CIPHERNAME_L 32
#define LUKS_CIPHERMODE_L 32
#define LUKS_HASHSPEC_L	  32
#define LUKS_DIGESTSIZE	  20
#define UUID_STRING_L	  40
#define LUKS_NUMKEYS	  8
#define LUKS_KEY_DISABLED 0x0000DEADu
#define LUKS_KEY_ENABLED  0x00AC71F3u

#define LUKS1_OFF_MAGIC		  0
#define LUKS1_OFF_VERSION	  6
#define LUKS1_OFF_CIPHER_NAME	  8
#define LUKS1_OFF_CIPHER_MODE	  40
#define LUKS1_OFF_HASH_SPEC	  72
#define LUKS1_OFF_PAYLOAD_OFFSET  104
#define LUKS1_OFF_KEY_BYTES	  108
#define LUKS1_OFF_MK_DIGEST	  112
#define LUKS1_OFF_MK_DIGEST_SALT  132
#define LUKS1_OFF_MK_DIGEST_ITER  164
#define LUKS1_OFF_UUID		  168
#define LUKS1_OFF_KEYBLOCK	  208
#define LUKS1_KEYBLOCK_SIZE	  48 /* active, iterations, salt[32], key material offset, stripes */
#define LUKS1_KB_OFF_ACTIVE	  0
#define LUKS1_KB_OFF_ITERATIONS	  4
#define LUKS1_KB_OFF_SALT	  8
#define LUKS1_KB_OFF_KEY_MATERIAL 40
#define LUKS1_KB_OFF_STRIPES	  44
#define LUKS1_PHDR_SIZE		  592  /* the fields of table 1 */
#define LUKS1_PHDR_DISK_SIZE	  1024 /* cryptsetup: the phdr padded to 1 KiB */
#define LUKS1_MAX_KEY_BYTES	  512u /* keys longer than this are refused here */

/* ---- LUKS2 (section 2, table 1: the binary header, integers big-endian) ----------------- */

#define LUKS2_VERSION	     2
#define LUKS2_MAGIC_1ST	     "LUKS\xba\xbe"
#define LUKS2_MAGIC_2ND	     "SKUL\xba\xbe"
#define LUKS2_MAGIC_L	     6
#define LUKS2_LABEL_L	     48
#define LUKS2_CHECKSUM_ALG_L 32
#define LUKS2_SALT_L	     64
#define LUKS2_UUID_L	     40
#define LUKS2_CHECKSUM_L     64
#define LUKS2_HDR_BIN_LEN    4096 /* the binary header; the JSON area follows it */

#define LUKS2_OFF_MAGIC	     0
#define LUKS2_OFF_VERSION    6
#define LUKS2_OFF_HDR_SIZE   8
#define LUKS2_OFF_SEQID	     16
#define LUKS2_OFF_LABEL	     24
#define LUKS2_OFF_CSUM_ALG   72
#define LUKS2_OFF_SALT	     104
#define LUKS2_OFF_UUID	     168
#define LUKS2_OFF_SUBSYSTEM  208
#define LUKS2_OFF_HDR_OFFSET 256
#define LUKS2_OFF_CSUM	     448

/* Section 2: hdr_size (binary header + JSON area) is one of these; the secondary header
 * starts right after the primary, at hdr_size. */
#define LUKS2_HDR_16K_LEN    0x4000u
#define LUKS2_HDR_OFFSET_MAX 0x400000u /* 4 MiB */
#define LUKS2_HDR2_OFFSETS                                                                         \
	{                                                                                          \
		0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000   \
	}

/* Section 3 limits (cryptsetup's): object keys are decimal numbers below these. */
#define LUKS2_KEYSLOTS_MAX	 32
#define LUKS2_TOKENS_MAX	 32
#define LUKS2_SEGMENT_MAX	 32
#define LUKS2_DIGEST_MAX	 32
#define LUKS2_MAX_KEYSLOTS_SIZE	 0x8000000u /* 128 MiB */
#define LUKS2_DEFAULT_HDR_SIZE	 0x1000000u /* cryptsetup: 16 MiB of metadata + key slots */
#define LUKS2_KEYSLOT_ALIGN	 4096u	    /* key slot areas and keyslots_size */
#define LUKS2_MAX_SECTOR_SIZE	 4096u	    /* segment sector_size: 512..4096, a power of 2 */
#define LUKS2_MAX_KEY_BYTES	 512u	    /* keys longer than this are refused here */
#define LUKS2_ARGON2_MAX_MEMORY	 (4u << 20) /* KiB: cryptsetup's 4 GiB limit */
#define LUKS2_ARGON2_MIN_MEMORY	 32u	    /* KiB: cryptsetup's hard minimum */
#define LUKS2_ARGON2_MIN_TIME	 4u	    /* cryptsetup's minimum time cost */
#define LUKS2_ARGON2_MAX_THREADS 4u	    /* cryptsetup's maximum parallel cost at format */
#define LUKS2_ARGON2_MAX_CPUS	 16u	    /* accepted when reading */

/* Keyslot priorities (section 3.2: "priority", optional, default normal). */
#define LUKS2_PRIORITY_IGNORE 0
#define LUKS2_PRIORITY_NORMAL 1
#define LUKS2_PRIORITY_PREFER 2

/* cryptsetup 2.6 defaults. */
#define LUKS_DEFAULT_CIPHER	"aes-xts-plain64"
#define LUKS_DEFAULT_KEYBITS	256 /* doubled for XTS, which takes two keys */
#define LUKS_DEFAULT_HASH	"sha256"
#define LUKS_DEFAULT_ITER_TIME	2000u /* ms */
#define LUKS2_DEFAULT_MEMORY_KB (1u << 20)
#define LUKS2_DEFAULT_PARALLEL	4u

#endif
