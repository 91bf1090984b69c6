/*
 * pgcontrol.c - the cluster facts walship needs (system identifier, WAL
 * segment and block sizes, version), read from global/pg_control and
 * PG_VERSION without depending on one major version's struct layout.
 *
 * ControlFileData changes between versions, but in 9.6 to 17 it keeps the
 * system identifier and version numbers at the front, the floatFormat marker
 * (the double 1234567.0) at an 8-aligned offset followed by blcksz,
 * relseg_size, xlog_blcksz and xlog_seg_size, and a CRC-32C of everything
 * before it as its last member.  Finding the marker and then the first
 * position where the CRC matches the bytes before it validates the whole
 * struct without knowing its size.
 */
#include "pg/pgcontrol.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg/pgmajor.h"
#include "pg/walname.h"
#include "util/crc32c.h"
#include "util/fsutil.h"
#include "util/mem.h"

/* PostgreSQL writes pg_control as one 8 kB block (PG_CONTROL_FILE_SIZE). */
#define PG_CONTROL_FILE_SIZE 8192
#define MARKER_MIN           16
#define MARKER_MAX           512
#define CRC_MAX              1024

static const double float_format = 1234567.0;

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static bool pow2_between(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

/* "D/name" without doubling a trailing slash of D. */
static char *data_path(const char *datadir, const char *name)
{
	size_t n = strlen(datadir);
	while (n > 1 && datadir[n - 1] == '/')
		n--;
	return xasprintf("%.*s/%s", (int)n, datadir, name);
}

static int control_corrupt(WsError *err, const char *path, const char *why)
{
	if (path != NULL)
		ws_error(err, WS_CORRUPT, "pg_control file \"%s\" is corrupt", path);
	else
		ws_error(err, WS_CORRUPT, "pg_control is corrupt");
	ws_error_detail(err, "%s", why);
	ws_error_hint(err, "The file is damaged, or is not the pg_control of a PostgreSQL 9.6 to 17 cluster "
			   "built for this platform.");
	return WS_CORRUPT;
}

static int control_decode(const unsigned char *buf, size_t len, const char *path, PgControl *out,
			  WsError *err)
{
	size_t marker = 0, crc_at = 0;
	uint32_t crc = CRC32C_INIT;
	PgControl c;

	for (size_t off = MARKER_MIN; off <= MARKER_MAX && off + sizeof(double) <= len; off += 8) {
		if (memcmp(buf + off, &float_format, sizeof(double)) == 0) {
			marker = off;
			break;
		}
	}
	if (marker == 0 || marker + 24 > len)
		return control_corrupt(err, path, "its floatFormat marker (1234567.0) was not found");

	/* The CRC follows the fields read below, so the struct ends at marker + 24 at the earliest. */
	crc = crc32c_update(crc, buf, marker + 24);
	for (size_t at = marker + 24; at <= CRC_MAX && at + 4 <= len; at += 4) {
		if (get32(buf + at) == crc32c_final(crc)) {
			crc_at = at;
			break;
		}
		crc = crc32c_update(crc, buf + at, 4);
	}
	if (crc_at == 0)
		return control_corrupt(err, path, "no CRC-32C in it matches its contents");

	memset(&c, 0, sizeof(c));
	memcpy(&c.sysid, buf, sizeof(c.sysid));
	c.control_version = get32(buf + 8);
	c.catalog_version = get32(buf + 12);
	c.blcksz = get32(buf + marker + 8);
	c.xlog_blcksz = get32(buf + marker + 16);
	c.seg_size = get32(buf + marker + 20);

	if (!wal_segsize_valid(c.seg_size)) {
		char why[128];
		snprintf(why, sizeof(why), "its WAL segment size is %u, not a power of two from 1 MB to 1 GB",
			 c.seg_size);
		return control_corrupt(err, path, why);
	}
	if (!pow2_between(c.xlog_blcksz, 1024, 65536) || !pow2_between(c.blcksz, 1024, 32768)) {
		char why[128];
		snprintf(why, sizeof(why), "its block sizes (data %u, WAL %u) are not valid", c.blcksz,
			 c.xlog_blcksz);
		return control_corrupt(err, path, why);
	}
	*out = c;
	return 0;
}

int pg_control_parse(const unsigned char *buf, size_t len, PgControl *out, WsError *err)
{
	return control_decode(buf, len, NULL, out, err);
}

int pg_control_read(const char *datadir, PgControl *out, WsError *err)
{
	char *path = data_path(datadir, "global/pg_control");
	unsigned char *buf = NULL;
	int fd = -1;
	ssize_t n;
	int rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		rc = ws_error_errno(err, WS_FATAL, e, "could not open file \"%s\"", path);
		if (e == ENOENT || e == ENOTDIR)
			ws_error_hint(err, "Is \"%s\" a PostgreSQL data directory?", datadir);
		goto done;
	}
	buf = xmalloc(PG_CONTROL_FILE_SIZE);
	n = fs_read_full(fd, buf, PG_CONTROL_FILE_SIZE);
	if (n < 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not read file \"%s\"", path);
		goto done;
	}
	rc = control_decode(buf, (size_t)n, path, out, err);

done:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(path);
	return rc;
}

int pg_version_read(const char *datadir, int *major, WsError *err)
{
	char *path = data_path(datadir, "PG_VERSION");
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = fs_read_small(path, 4096, &text, &len, err);
	if (rc != 0) {
		/* Absent means "not a data directory", which no retry will fix. */
		if (rc == WS_NOT_FOUND) {
			if (err != NULL)
				err->cls = WS_FATAL;
			rc = WS_FATAL;
			ws_error_hint(err, "Is \"%s\" a PostgreSQL data directory?", datadir);
		}
		goto done;
	}
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		text[--len] = '\0';

	if (len == strlen(text) && strcmp(text, "9.6") == 0) {
		*major = PG_MAJOR_9_6;
	} else if (len == 2 && isdigit((unsigned char)text[0]) && isdigit((unsigned char)text[1]) &&
		   text[0] == '1' && text[1] <= '7') {
		*major = PG_MAJOR(10 + (text[1] - '0'));
	} else {
		char shown[WALNAME_ESCAPE_MAX + 8];
		walname_escape(text, len, shown, sizeof(shown));
		rc = ws_error(err, WS_FATAL, "unsupported PostgreSQL version \"%s\" in \"%s\"", shown, path);
		ws_error_detail(err, "walship supports PostgreSQL 9.6 and 10 to 17.");
	}

done:
	free(text);
	free(path);
	return rc;
}

const char *pg_major_str(int major, char *buf, size_t size)
{
	if (major < PG_MAJOR(10))
		snprintf(buf, size, "%d.%d", major / 10000, major / 100 % 100);
	else
		snprintf(buf, size, "%d", major / 10000);
	return buf;
}
