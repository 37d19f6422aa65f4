/*
 * nbd_bdev.h - lets the CLI open /dev/mapper/NAME of the running daemon.
 *
 * Offline verbs (luks format, dump, ...) take device paths.  A path /dev/mapper/NAME that is
 * a blkstack device lives inside the daemon; this resolver reaches it over the daemon's NBD
 * unix socket (libnbd), so the same format code works on files and on daemon devices.
 */
#ifndef BS_CLI_NBD_BDEV_H
#define BS_CLI_NBD_BDEV_H

/* Installs the resolver into the engine's bdev layer (bs_bdev_set_resolver). */
void cli_install_nbd_resolver(void);

#endif
