/*
 * passphrase.c - see passphrase.h.
 */
#include "cli/passphrase.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/secmem.h"

/* Reads up to a newline (not kept) or EOF; -1 on error, -2 when too long. */
static int read_line(int fd, char *buf, size_t max, size_t *len)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t k = read(fd, &c, 1);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (k == 0 || c == '\n')
			break;
		if (n == max)
			return -2;
		buf[n++] = c;
	}
	buf[n] = '\0';
	*len = n;
	return 0;
}

static int read_tty(const char *prompt, char *buf, size_t *len)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	struct termios old, quiet;
	int r;

	if (fd < 0)
		return -1;
	if (tcgetattr(fd, &old)) {
		close(fd);
		return -1;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	if (write(fd, prompt, strlen(prompt)) < 0 || tcsetattr(fd, TCSAFLUSH, &quiet)) {
		close(fd);
		return -1;
	}
	r = read_line(fd, buf, PASSPHRASE_MAX, len);
	tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0)
		r = r ? r : 0;
	close(fd);
	return r;
}

static int read_key_file(const struct key_source *src, char *buf, size_t *len)
{
	bool std = !strcmp(src->key_file, "-");
	int fd = std ? 0 : open(src->key_file, O_RDONLY | O_CLOEXEC);
	uint64_t skip = src->keyfile_offset;
	size_t max = src->keyfile_size ? (size_t)src->keyfile_size : KEYFILE_MAX;
	size_t n = 0;

	if (fd < 0) {
		cli_error("cannot open key file %s: %s", src->key_file, strerror(errno));
		return -1;
	}
	while (skip) {
		char junk[4096];
		ssize_t k = read(fd, junk, skip < sizeof(junk) ? (size_t)skip : sizeof(junk));

		if (k <= 0) {
			cli_error("key file %s is shorter than --keyfile-offset", src->key_file);
			goto fail;
		}
		skip -= (uint64_t)k;
	}
	while (n < max) {
		ssize_t k = read(fd, buf + n, max - n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			cli_error("cannot read key file %s: %s", src->key_file, strerror(errno));
			goto fail;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (src->keyfile_size && n < src->keyfile_size) {
		cli_error("cannot read %llu bytes from key file %s",
			  (unsigned long long)src->keyfile_size, src->key_file);
		goto fail;
	}
	if (!src->keyfile_size && n == max) {
		char extra;

		if (read(fd, &extra, 1) == 1) {
			cli_error("key file %s is larger than %u bytes", src->key_file,
				  KEYFILE_MAX);
			goto fail;
		}
	}
	if (!std)
		close(fd);
	if (n == 0) {
		cli_error("key file %s is empty", src->key_file);
		return -1;
	}
	*len = n;
	return 0;
fail:
	if (!std)
		close(fd);
	return -1;
}

int get_passphrase(const struct key_source *src, const char *prompt, bool verify, char **out,
		   size_t *len)
{
	char *buf = bs_secure_alloc((src->key_file ? KEYFILE_MAX : PASSPHRASE_MAX) + 1);
	int r;

	if (!buf) {
		cli_error("out of memory");
		return -1;
	}
	if (src->key_file) {
		r = read_key_file(src, buf, len);
	} else if (isatty(0)) {
		r = read_tty(prompt, buf, len);
		if (!r && verify) {
			char *again = bs_secure_alloc(PASSPHRASE_MAX + 1);
			size_t alen = 0;

			if (!again || read_tty("Verify passphrase: ", again, &alen) ||
			    alen != *len || memcmp(again, buf, alen)) {
				bs_secure_free(again);
				bs_secure_free(buf);
				cli_error("passphrases do not match");
				return -1;
			}
			bs_secure_free(again);
		}
		if (r == -2)
			cli_error("passphrase longer than %u characters", PASSPHRASE_MAX);
		else if (r)
			cli_error("cannot read the passphrase from the terminal");
	} else {
		r = read_line(0, buf, PASSPHRASE_MAX, len);
		if (r == -2)
			cli_error("passphrase longer than %u characters", PASSPHRASE_MAX);
		else if (r)
			cli_error("cannot read the passphrase from standard input");
	}
	if (!r && *len == 0 && !src->key_file) {
		cli_error("empty passphrase");
		r = -1;
	}
	if (r) {
		bs_secure_free(buf);
		return -1;
	}
	*out = buf;
	return 0;
}
