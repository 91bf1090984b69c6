/*
 * pgcontrol.h - the few facts walship needs from global/pg_control and PG_VERSION.
 *
 * The layout of ControlFileData changes between major versions; walship reads
 * the fields that do not move (system_identifier at 0, pg_control_version at
 * 8), finds blcksz/xlog_blcksz/xlog_seg_size after the floatFormat marker
 * (the double 1234567.0, present in every version), and verifies the CRC-32C
 * that ends the struct.
 *
 * Memory: pg_major_str writes into and returns the caller's buf.
 */
#ifndef WALSHIP_PG_PGCONTROL_H
#define WALSHIP_PG_PGCONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct PgControl {
	uint64_t sysid;
	uint32_t control_version;
	uint32_t catalog_version;
	uint32_t blcksz;
	uint32_t xlog_blcksz;
	uint32_t seg_size;
} PgControl;

/* Decode and verify a pg_control image; WS_CORRUPT when the CRC or layout is wrong. */
int pg_control_parse(const unsigned char *buf, size_t len, PgControl *out, WsError *err);

/* Read DIR/global/pg_control (DIR may be "."); WS_FATAL if unreadable, WS_CORRUPT if bad. */
int pg_control_read(const char *datadir, PgControl *out, WsError *err);

/*
 * Read DIR/PG_VERSION: "9.6" -> 90600, "15" -> 150000 (pgmajor.h).  Versions
 * outside 9.6..17 are WS_FATAL ("unsupported").
 */
int pg_version_read(const char *datadir, int *major, WsError *err);

/* "9.6" or "15" for a major (90600, 150000: pgmajor.h); returns buf. */
const char *pg_major_str(int major, char *buf, size_t size);

#endif
