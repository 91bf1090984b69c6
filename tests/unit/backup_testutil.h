/*
 * backup_testutil.h - what the list and verify tests build their epochs
 * from: a backup's manifest.json (epoch "15-1", PostgreSQL 15, 16 MiB
 * segments, system identifier TEST_SYSID, WAL names derived from the LSNs),
 * runs of segment numbers and timeline paths.  Uses cmocka's asserts:
 * include it after <cmocka.h>.
 */
#ifndef WALSHIP_TESTS_BACKUP_TESTUTIL_H
#define WALSHIP_TESTS_BACKUP_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pg/history.h"

#include "repo/backupmeta.h"
#include "util/mem.h"
#include "pg/pgmajor.h"

#define TEST_SYSID 7301234567890123456ull

/* The names the list, catalogue and verify tests share: segment size, system identifier, three
 * backups in time order, and the history file of timeline 2. */
#define SEG16  (16u * 1024 * 1024)
#define SYSID  TEST_SYSID
#define ID_A   "20261125T190001Z"
#define ID_B   "20261126T080000Z"
#define ID_C   "20261126T090000Z"
#define HIST_2 "1\t0/5000100\tno recovery target specified\n"

/* Start and stop share the stop time's minute (the start at second 00). */
static inline BackupMeta *test_backup_meta(const char *id, uint32_t tli, uint64_t start, uint64_t stop,
					   const char *stop_time)
{
	BackupMeta *m = backup_meta_new();
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->label = xasprintf("walship backup %s", id);
	snprintf(m->epoch, sizeof(m->epoch), "15-1");
	m->sysid = TEST_SYSID;
	m->server_version_num = 150020;
	m->pg_major = PG_MAJOR(15);
	m->seg_size = 16u * 1024 * 1024;
	m->timeline = tli;
	m->start_lsn = start;
	m->stop_lsn = stop;
	snprintf(m->start_time, sizeof(m->start_time), "%.17s00Z", stop_time);
	snprintf(m->stop_time, sizeof(m->stop_time), "%s", stop_time);
	backup_meta_set_wal_names(m);
	return m;
}

/* A complete backup as walship list shows it: test_backup_meta with a base.tar of 22.5 MiB and a manifest. */
static inline BackupMeta *test_listed_backup(const char *id, uint32_t tli, uint64_t start, uint64_t stop,
					     const char *stop_time)
{
	/* Only the stop time is shown in windows. */
	BackupMeta *m = test_backup_meta(id, tli, start, stop, stop_time);
	BackupTablespaceInfo *t = backup_meta_add_tablespace(m, true, 0, NULL);
	t->obj.size = 23592960; /* 22.5 MiB */
	t->obj.stored_size = 3250586;
	memset(t->obj.sha256, 0x11, 32);
	m->has_manifest = true;
	snprintf(m->manifest.name, sizeof(m->manifest.name), "backup_manifest");
	m->manifest.size = 0;
	m->manifest.stored_size = 0;
	memset(m->manifest.sha256, 0x22, 32);
	return m;
}

/* Append the segment numbers first..last to buf (n entries so far); returns buf. */
static inline uint64_t *test_seg_range(uint64_t *buf, uint64_t first, uint64_t last, size_t *n)
{
	for (uint64_t s = first; s <= last; s++)
		buf[(*n)++] = s;
	return buf;
}

/* Timeline tli's path: from its .history text, or a lone timeline when history is NULL. */
static inline TimelinePath *test_path_of(uint32_t tli, const char *history)
{
	WsError err;
	TimelinePath *p = NULL;
	if (history == NULL)
		return history_single(tli);
	assert_int_equal(history_parse(history, strlen(history), tli, &p, &err), 0);
	return p;
}

#endif
