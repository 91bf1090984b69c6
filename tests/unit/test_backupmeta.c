/*
 * test_backupmeta.c - a backup's manifest.json: round trip, the derived WAL
 * names, ids and keys, and every kind of invalid field refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/backupmeta.h"
#include "store/store.h"
#include "util/mem.h"
#include "pg/pgmajor.h"

#define SYSID 7301234567890123456ull
#define SEG16 (16u * 1024 * 1024)

static BackupMeta *sample(void)
{
	BackupMeta *m = backup_meta_new();
	snprintf(m->id, sizeof(m->id), "20260101T120000Z");
	m->label = xstrdup("walship backup 20260101T120000Z");
	snprintf(m->epoch, sizeof(m->epoch), "15-1");
	m->sysid = SYSID;
	m->server_version_num = 150020;
	m->pg_major = PG_MAJOR(15);
	m->seg_size = SEG16;
	m->timeline = 3;
	m->start_lsn = 0x2000028;
	m->stop_lsn = 0x1B5000100ull;
	snprintf(m->start_time, sizeof(m->start_time), "2026-01-01T12:00:00Z");
	snprintf(m->stop_time, sizeof(m->stop_time), "2026-01-01T12:03:09Z");
	backup_meta_set_wal_names(m);

	BackupTablespaceInfo *t = backup_meta_add_tablespace(m, false, 16385, "/srv/ts1");
	t->obj.size = 68608;
	t->obj.stored_size = 3950;
	memset(t->obj.sha256, 0xAB, 32);
	t = backup_meta_add_tablespace(m, true, 0, NULL);
	t->obj.size = 23808512;
	t->obj.stored_size = 2997233;
	memset(t->obj.sha256, 0x01, 32);
	m->has_manifest = true;
	snprintf(m->manifest.name, sizeof(m->manifest.name), "backup_manifest");
	m->manifest.size = 137526;
	m->manifest.stored_size = 6017;
	memset(m->manifest.sha256, 0xEF, 32);
	return m;
}

static char *sample_json(void)
{
	WsError err;
	BackupMeta *m = sample();
	char *text = backup_meta_serialize(m, &err);
	if (text == NULL)
		fail_msg("serialize failed: %s", err.msg);
	backup_meta_free(m);
	return text;
}

static void test_roundtrip_keeps_every_field(void **state)
{
	(void)state;
	WsError err;
	BackupMeta *m = sample();
	char *text = backup_meta_serialize(m, &err);
	assert_non_null(text);
	assert_int_equal(text[strlen(text) - 1], '\n');
	/* The documented layout: strings for LSNs, identifier and major; null oid for the main directory. */
	assert_non_null(strstr(text, "\"start_lsn\": \"0/2000028\""));
	assert_non_null(strstr(text, "\"stop_lsn\": \"1/B5000100\""));
	assert_non_null(strstr(text, "\"system_identifier\": \"7301234567890123456\""));
	assert_non_null(strstr(text, "\"major\": \"15\""));
	assert_non_null(strstr(text, "\"oid\": null"));
	assert_non_null(strstr(text, "\"location\": null"));
	assert_non_null(strstr(text, "\"oid\": 16385"));
	assert_non_null(strstr(text, "\"object\": \"16385.tar\""));
	assert_non_null(strstr(text, "\"start_wal\": \"000000030000000000000002\""));
	assert_non_null(strstr(text, "\"stop_wal\": \"0000000300000001000000B5\""));
	assert_non_null(strstr(text, "efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef"));

	BackupMeta *b = NULL;
	int rc = backup_meta_parse(text, strlen(text), &b, &err);
	if (rc != 0)
		fail_msg("parse failed: %s", err.msg);
	assert_int_equal(b->format, 1);
	assert_string_equal(b->id, m->id);
	assert_string_equal(b->label, m->label);
	assert_string_equal(b->epoch, "15-1");
	assert_true(b->sysid == SYSID);
	assert_int_equal(b->server_version_num, 150020);
	assert_int_equal(b->pg_major, PG_MAJOR(15));
	assert_int_equal(b->seg_size, SEG16);
	assert_int_equal(b->timeline, 3);
	assert_true(b->start_lsn == m->start_lsn);
	assert_true(b->stop_lsn == m->stop_lsn);
	assert_string_equal(b->start_wal, m->start_wal);
	assert_string_equal(b->stop_wal, m->stop_wal);
	assert_string_equal(b->start_time, m->start_time);
	assert_string_equal(b->stop_time, m->stop_time);
	assert_int_equal(b->n_tablespaces, 2);
	assert_false(b->tablespaces[0].is_base);
	assert_int_equal(b->tablespaces[0].oid, 16385);
	assert_string_equal(b->tablespaces[0].location, "/srv/ts1");
	assert_string_equal(b->tablespaces[0].obj.name, "16385.tar");
	assert_true(b->tablespaces[0].obj.size == 68608);
	assert_true(b->tablespaces[0].obj.stored_size == 3950);
	assert_memory_equal(b->tablespaces[0].obj.sha256, m->tablespaces[0].obj.sha256, 32);
	assert_true(b->tablespaces[1].is_base);
	assert_null(b->tablespaces[1].location);
	assert_string_equal(b->tablespaces[1].obj.name, "base.tar");
	assert_true(b->tablespaces[1].obj.size == 23808512);
	assert_memory_equal(b->tablespaces[1].obj.sha256, m->tablespaces[1].obj.sha256, 32);
	assert_true(b->has_manifest);
	assert_string_equal(b->manifest.name, "backup_manifest");
	assert_true(b->manifest.size == 137526);
	assert_true(b->manifest.stored_size == 6017);
	assert_memory_equal(b->manifest.sha256, m->manifest.sha256, 32);

	/* Serializing what was parsed gives the same text. */
	char *again = backup_meta_serialize(b, &err);
	assert_non_null(again);
	assert_string_equal(again, text);
	free(again);
	free(text);
	backup_meta_free(b);
	backup_meta_free(m);
}

/* The configuration kept from outside the data directory: round trip; an older manifest has none. */
static void test_config_roundtrip_and_absent(void **state)
{
	(void)state;
	WsError err;
	BackupMeta *m = sample();
	char *old = backup_meta_serialize(m, &err);
	assert_non_null(old);
	assert_null(strstr(old, "\"config\""));
	BackupMeta *b = NULL;
	assert_int_equal(backup_meta_parse(old, strlen(old), &b, &err), 0);
	assert_false(b->has_config);
	assert_int_equal(b->config.n_files, 0);
	backup_meta_free(b);

	m->config.config_file = xstrdup("/etc/postgresql/15/main/postgresql.conf");
	m->config.hba_file = xstrdup("/etc/postgresql/15/main/pg_hba.conf");
	m->config.data_directory = xstrdup("/var/lib/postgresql/15/main");
	BackupConfigFile *f = backup_meta_add_config_file(m, "/etc/postgresql/15/main/postgresql.conf");
	f->size = 30000;
	memset(f->sha256, 0x11, 32);
	f = backup_meta_add_config_file(m, "/etc/postgresql/15/main/conf.d/x.conf");
	f->size = 12;
	memset(f->sha256, 0x22, 32);
	backup_meta_add_config_missing(m, "ident_file", "permission denied");
	snprintf(m->config.obj.name, sizeof(m->config.obj.name), BACKUP_CONFIG_OBJECT);
	m->config.obj.size = 30012;
	m->config.obj.stored_size = 9000;
	memset(m->config.obj.sha256, 0x33, 32);
	char *text = backup_meta_serialize(m, &err);
	if (text == NULL)
		fail_msg("serialize failed: %s", err.msg);
	assert_non_null(strstr(text, "\"object\": \"config-files\""));
	assert_non_null(strstr(text, "\"ident_file\": null"));
	assert_int_equal(backup_meta_parse(text, strlen(text), &b, &err), 0);
	assert_true(b->has_config);
	assert_string_equal(b->config.config_file, m->config.config_file);
	assert_string_equal(b->config.data_directory, m->config.data_directory);
	assert_null(b->config.ident_file);
	assert_int_equal(b->config.n_files, 2);
	assert_string_equal(b->config.files[1].path, "/etc/postgresql/15/main/conf.d/x.conf");
	assert_true(b->config.files[1].size == 12);
	assert_memory_equal(b->config.files[0].sha256, m->config.files[0].sha256, 32);
	assert_int_equal(b->config.n_missing, 1);
	assert_string_equal(b->config.missing[0].what, "ident_file");
	assert_true(b->config.obj.size == 30012);
	char *again = backup_meta_serialize(b, &err);
	assert_string_equal(again, text);
	free(again);
	backup_meta_free(b);

	/* Files that do not add up to the object, or a relative path: refused. */
	m->config.obj.size = 30013;
	assert_null(backup_meta_serialize(m, &err));
	assert_non_null(strstr(err.msg, "add up"));
	m->config.obj.size = 30012;
	free(m->config.files[1].path);
	m->config.files[1].path = xstrdup("conf.d/x.conf");
	assert_null(backup_meta_serialize(m, &err));
	assert_non_null(strstr(err.msg, "absolute path"));
	free(text);
	free(old);
	backup_meta_free(m);
}

static void test_no_manifest_before_13(void **state)
{
	(void)state;
	WsError err;
	BackupMeta *m = sample();
	m->has_manifest = false;
	m->server_version_num = 120017;
	m->pg_major = PG_MAJOR(12);
	char *text = backup_meta_serialize(m, &err);
	assert_non_null(text);
	assert_non_null(strstr(text, "\"backup_manifest\": null"));
	BackupMeta *b = NULL;
	assert_int_equal(backup_meta_parse(text, strlen(text), &b, &err), 0);
	assert_false(b->has_manifest);
	assert_int_equal(b->pg_major, PG_MAJOR(12));
	free(text);
	backup_meta_free(b);
	backup_meta_free(m);
}

static void test_stop_wal_is_segment_of_byte_before_stop(void **state)
{
	(void)state;
	BackupMeta *m = sample();
	m->timeline = 1;
	m->start_lsn = 0x2000028;
	m->stop_lsn = 0x3000000; /* exactly at the start of segment 3: segment 2 holds the last byte */
	backup_meta_set_wal_names(m);
	assert_string_equal(m->start_wal, "000000010000000000000002");
	assert_string_equal(m->stop_wal, "000000010000000000000002");
	m->stop_lsn = 0x3000001;
	backup_meta_set_wal_names(m);
	assert_string_equal(m->stop_wal, "000000010000000000000003");
	/* 64 MiB segments: the segment number is LSN / size. */
	m->seg_size = 64u * 1024 * 1024;
	m->start_lsn = 0x10000000;
	m->stop_lsn = 0x14000028;
	backup_meta_set_wal_names(m);
	assert_string_equal(m->start_wal, "000000010000000000000004");
	assert_string_equal(m->stop_wal, "000000010000000000000005");
	backup_meta_free(m);
}

static void test_ids_and_keys(void **state)
{
	(void)state;
	char id[BACKUP_ID_MAX];
	char key[STORE_KEY_MAX];

	backup_id_format(1767268800, 1, id); /* 2026-01-01 12:00:00 UTC */
	assert_string_equal(id, "20260101T120000Z");
	assert_true(backup_id_valid(id));
	backup_id_format(1767268800, 3, id);
	assert_string_equal(id, "20260101T120000Z-3");
	assert_true(backup_id_valid(id));

	static const char *const bad[] = {
		"",
		"20260101T120000",
		"20260101t120000Z",
		"2026-01-01T12:00:00Z",
		"20260101T120000Z-",
		"20260101T120000Z-1",
		"20260101T120000Z-02",
		"20260101T120000Z-2x",
		"20260101T120000Z/..",
		"../20260101T120000Z",
		"20260101T120000Z-99999999999999999",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (backup_id_valid(bad[i]))
			fail_msg("id \"%s\" was accepted", bad[i]);

	assert_int_equal(backup_key_dir("15-1", "20260101T120000Z", key, sizeof(key)), 0);
	assert_string_equal(key, "15-1/backups/20260101T120000Z/");
	assert_int_equal(backup_key("15-1", "20260101T120000Z", "base.tar", key, sizeof(key)), 0);
	assert_string_equal(key, "15-1/backups/20260101T120000Z/base.tar");
	assert_int_equal(store_key_check(key, NULL), 0);
	assert_int_equal(backup_key("15-1", "20260101T120000Z", "base.tar", key, 20), -1);
}

/* The sample's text with the first occurrence of from replaced by to. */
static char *mutate(const char *from, const char *to)
{
	char *text = sample_json();
	char *at = strstr(text, from);
	if (at == NULL)
		fail_msg("\"%s\" is not in the sample JSON:\n%s", from, text);
	char *out = xasprintf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	free(text);
	return out;
}

static void expect_refused(const char *from, const char *to, int cls, const char *words)
{
	WsError err;
	BackupMeta *m = (BackupMeta *)1;
	char *text = mutate(from, to);
	ws_error_clear(&err);
	int rc = backup_meta_parse(text, strlen(text), &m, &err);
	if (rc != cls)
		fail_msg("replacing %s by %s: expected class %d, got %d (%s)", from, to, cls, rc, err.msg);
	assert_null(m);
	if (strstr(err.msg, words) == NULL)
		fail_msg("replacing %s by %s: message \"%s\" does not say \"%s\"", from, to, err.msg, words);
	free(text);
}

static void test_invalid_fields_refused(void **state)
{
	(void)state;
	static const struct {
		const char *from, *to, *words;
	} cases[] = {
		{"\"format\": 1", "\"format\": 0", "\"format\""},
		{"\"format\": 1", "\"format\": \"1\"", "\"format\""},
		{"\"id\": \"20260101T120000Z\"", "\"id\": \"../../wal\"", "\"id\""},
		{"\"id\": \"20260101T120000Z\"", "\"id\": 7", "\"id\" is not a string"},
		{"\"label\": \"walship backup 20260101T120000Z\",", "", "\"label\" is missing"},
		{"\"epoch\": \"15-1\"", "\"epoch\": \"15\"", "\"epoch\""},
		{"\"system_identifier\": \"7301234567890123456\"", "\"system_identifier\": \"0\"",
		 "\"system_identifier\""},
		{"\"system_identifier\": \"7301234567890123456\"",
		 "\"system_identifier\": 7301234567890123456", "\"system_identifier\""},
		{"\"server_version_num\": 150020", "\"server_version_num\": 140020", "does not match"},
		{"\"major\": \"15\"", "\"major\": \"fifteen\"", "\"major\""},
		{"\"wal_segment_size\": 16777216", "\"wal_segment_size\": 16777215", "\"wal_segment_size\""},
		{"\"timeline\": 3", "\"timeline\": 0", "\"timeline\""},
		{"\"start_lsn\": \"0/2000028\"", "\"start_lsn\": \"0-2000028\"", "\"start_lsn\""},
		{"\"stop_lsn\": \"1/B5000100\"", "\"stop_lsn\": \"0/1000000\"", "\"stop_lsn\""},
		{"\"start_wal\": \"000000030000000000000002\"", "\"start_wal\": \"000000010000000000000002\"",
		 "\"start_wal\""},
		{"\"stop_wal\": \"0000000300000001000000B5\"", "\"stop_wal\": \"0000000300000001000000B6\"",
		 "\"stop_wal\""},
		{"\"start_time\": \"2026-01-01T12:00:00Z\"", "\"start_time\": \"2026-01-01 12:00:00\"",
		 "\"start_time\""},
		{"\"stop_time\": \"2026-01-01T12:03:09Z\"", "\"stop_time\": \"2025-12-31T23:59:59Z\"",
		 "\"stop_time\""},
		{"\"object\": \"16385.tar\"", "\"object\": \"../16385.tar\"", "\"object\""},
		{"\"object\": \"base.tar\"", "\"object\": \"16385.tar\"", "\"object\""},
		{"\"oid\": 16385", "\"oid\": 0", "\"oid\""},
		{"\"oid\": 16385", "\"oid\": null", "has a location"},
		{"\"location\": \"/srv/ts1\"", "\"location\": \"\"", "\"location\""},
		{"\"location\": null", "\"location\": \"/srv/x\"", "has a location"},
		{"\"size\": 68608", "\"size\": -1", "\"size\""},
		{"\"stored_size\": 3950", "\"stored_size\": \"3950\"", "\"stored_size\""},
		{"\"sha256\": \"abab", "\"sha256\": \"ABAB", "\"sha256\""},
		{"\"object\": \"backup_manifest\"", "\"object\": \"base.tar\"", "\"object\""},
		{"\"tablespaces\": [", "\"tablespaces\": 5, \"x\": [", "\"tablespaces\""},
		{"\"backup_manifest\": {", "\"backup_manifest\": 1, \"x\": {", "\"backup_manifest\""},
		/* A second key of the same name must not quietly win. */
		{"\"timeline\": 3", "\"timeline\": 3, \"timeline\": 4", "duplicate"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_refused(cases[i].from, cases[i].to, WS_CORRUPT, cases[i].words);

	/*
	 * Where rebuild creates and fills a tablespace, possibly as root: only an absolute,
	 * normalised path, as PostgreSQL records it.
	 */
	static const char *const locations[] = {
		"srv/ts1",    "./ts1", "../../etc",   "/srv/../etc", "/srv/ts1/",       "/srv//ts1",
		"/srv/./ts1", "/",     "/srv/ts1/..", "/srv/ts\\n1", "/srv/\\u0001ts1",
	};
	for (size_t i = 0; i < sizeof(locations) / sizeof(locations[0]); i++) {
		char *to = xasprintf("\"location\": \"%s\"", locations[i]);
		expect_refused("\"location\": \"/srv/ts1\"", to, WS_CORRUPT,
			       "tablespace 16385 has a location that is not an absolute, normalised path");
		free(to);
	}

	/* No main data directory: the base entry turned into a second tablespace. */
	expect_refused("\"oid\": null,\n      \"location\": null,\n      \"object\": \"base.tar\"",
		       "\"oid\": 16386,\n      \"location\": \"/srv/ts2\",\n      \"object\": \"16386.tar\"",
		       WS_CORRUPT, "no main data directory");
	/* The same tablespace twice. */
	expect_refused("\"oid\": null,\n      \"location\": null,\n      \"object\": \"base.tar\"",
		       "\"oid\": 16385,\n      \"location\": \"/srv/ts2\",\n      \"object\": \"16385.tar\"",
		       WS_CORRUPT, "appears twice");
	/* A newer format is not "corrupt": it needs a newer walship. */
	expect_refused("\"format\": 1", "\"format\": 2", WS_FATAL, "newer");
}

static void test_garbage_refused(void **state)
{
	(void)state;
	WsError err;
	BackupMeta *m = NULL;
	assert_int_equal(backup_meta_parse("", 0, &m, &err), WS_CORRUPT);
	assert_int_equal(backup_meta_parse("[1]", 3, &m, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "not a JSON object"));
	assert_int_equal(backup_meta_parse("{\"format\": 1", 12, &m, &err), WS_CORRUPT);
	assert_null(m);
}

static void test_location_recorded_as_postgresql_records_it(void **state)
{
	(void)state;
	WsError err;
	BackupMeta *m = sample(), *back = NULL;
	/* A link made by hand, with a trailing slash: the same directory, written canonically. */
	BackupTablespaceInfo *t = backup_meta_add_tablespace(m, false, 16390, "/srv//ts9/./");
	assert_string_equal(t->location, "/srv/ts9");
	char *text = backup_meta_serialize(m, &err);
	assert_non_null(text);
	assert_int_equal(backup_meta_parse(text, strlen(text), &back, &err), 0);
	assert_string_equal(back->tablespaces[m->n_tablespaces - 1].location, "/srv/ts9");
	free(text);
	backup_meta_free(back);
	backup_meta_free(m);

	/* One that cannot be is never written. */
	m = sample();
	backup_meta_add_tablespace(m, false, 16390, "ts9");
	ws_error_clear(&err);
	assert_null(backup_meta_serialize(m, &err));
	assert_non_null(strstr(err.msg, "not an absolute, normalised path"));
	backup_meta_free(m);
}

static void test_serialize_refuses_what_would_not_parse(void **state)
{
	(void)state;
	WsError err;
	BackupMeta *m = sample();
	m->stop_lsn = m->start_lsn - 1; /* wal names left from before: inconsistent */
	ws_error_clear(&err);
	assert_null(backup_meta_serialize(m, &err));
	assert_int_equal(err.cls, WS_CORRUPT);
	assert_non_null(strstr(err.msg, "stop_lsn"));
	backup_meta_free(m);

	/* A location that is not UTF-8 cannot be written as JSON. */
	m = sample();
	free(m->tablespaces[0].location);
	m->tablespaces[0].location = xstrdup("/srv/\xff");
	ws_error_clear(&err);
	assert_null(backup_meta_serialize(m, &err));
	assert_int_equal(err.cls, WS_FATAL);
	backup_meta_free(m);
	backup_meta_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_keeps_every_field),
		cmocka_unit_test(test_config_roundtrip_and_absent),
		cmocka_unit_test(test_no_manifest_before_13),
		cmocka_unit_test(test_stop_wal_is_segment_of_byte_before_stop),
		cmocka_unit_test(test_ids_and_keys),
		cmocka_unit_test(test_invalid_fields_refused),
		cmocka_unit_test(test_garbage_refused),
		cmocka_unit_test(test_location_recorded_as_postgresql_records_it),
		cmocka_unit_test(test_serialize_refuses_what_would_not_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
