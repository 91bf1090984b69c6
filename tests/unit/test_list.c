/*
 * test_list.c - walship list: the whole command over a real local
 * repository, as text and as JSON (the windows it prints are
 * test_catalog.c's).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd/list.h"
#include "pg/lsn.h"
#include "repo/keys.h"
#include "repo/repo.h"
#include "util/mem.h"

#include "backup_testutil.h"
#include "pg/pgmajor.h"

static void test_size_str(void **state)
{
	(void)state;
	char buf[32];
	assert_string_equal(fmt_size(0, buf, sizeof(buf)), "0 B");
	assert_string_equal(fmt_size(1023, buf, sizeof(buf)), "1023 B");
	assert_string_equal(fmt_size(23592960, buf, sizeof(buf)), "22.5 MiB");
	assert_string_equal(fmt_size(3ull << 30, buf, sizeof(buf)), "3.0 GiB");
}

/* ---- the command over a real repository ---- */

typedef struct Repo_fixture {
	char root[64];
	char out[96];
	char errpath[96];
	Config *cfg;
	Repo *repo;
} RepoFixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

typedef struct MemSrc {
	const char *buf;
	size_t len;
	size_t pos;
} MemSrc;

static int mem_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err)
{
	(void)err;
	MemSrc *m = ctx;
	size_t n = m->len - m->pos < cap ? m->len - m->pos : cap;
	memcpy(buf, m->buf + m->pos, n);
	m->pos += n;
	*got = n;
	return 0;
}

/* 2026-11-26T09:00:00Z */
#define WAL_STORED_AT 1795683600

static void put_wal(RepoFixture *f, const char *name, const char *content)
{
	WsError err;
	WalName wn;
	char key[STORE_KEY_MAX];
	MemSrc src = {content, strlen(content), 0};
	assert_int_equal(walname_parse(name, &wn, &err), 0);
	assert_int_equal(repo_key_wal(repo_meta_newest(repo_meta(f->repo)), &wn, key, sizeof(key)), 0);
	assert_int_equal(repo_put_object(f->repo, key, mem_read, &src, src.len, true, NULL, &err), 0);
	/* Archived at WAL_STORED_AT, for list's "archived" time. */
	char *path = xasprintf("%s/repo/%s", f->root, key);
	struct timespec ts[2] = {{WAL_STORED_AT, 0}, {WAL_STORED_AT, 0}};
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	free(path);
}

static void put_plain(RepoFixture *f, const char *key, const char *content)
{
	WsError err;
	MemSrc src = {content, strlen(content), 0};
	assert_int_equal(store_put(repo_store(f->repo), key, mem_read, &src, true, &err), 0);
}

static void put_backup(RepoFixture *f, BackupMeta *m)
{
	WsError err;
	char key[STORE_KEY_MAX];
	char *json = backup_meta_serialize(m, &err);
	assert_non_null(json);
	assert_int_equal(backup_key("15-1", m->id, BACKUP_META_NAME, key, sizeof(key)), 0);
	put_plain(f, key, json);
	free(json);
	backup_meta_free(m);
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	char *buf = xmalloc(1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Run cmd_list with stdout and stderr in files; returns its status, output in *out and *errout. */
static int run_list(RepoFixture *f, bool json, char **out, char **errout, WsError *err)
{
	fflush(stdout);
	fflush(stderr);
	int saved_out = dup(1), saved_err = dup(2);
	int fo = open(f->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int fe = open(f->errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved_out >= 0 && saved_err >= 0 && fo >= 0 && fe >= 0);
	dup2(fo, 1);
	dup2(fe, 2);
	int rc = cmd_list(f->cfg, json, err);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	close(fo);
	close(fe);
	*out = slurp(f->out);
	*errout = slurp(f->errpath);
	return rc;
}

static int repo_setup(void **state)
{
	RepoFixture *f = xcalloc(1, sizeof(*f));
	WsError err;
	strcpy(f->root, "/tmp/walship-test-list-XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	snprintf(f->out, sizeof(f->out), "%s.out", f->root);
	snprintf(f->errpath, sizeof(f->errpath), "%s.err", f->root);
	char *repo = xasprintf("%s/repo", f->root);
	f->cfg = config_new();
	int rc = config_set_option(f->cfg, "repo", repo, &err);
	if (rc == 0)
		rc = repo_create(f->cfg, SYSID, PG_MAJOR(15), SEG16, &f->repo, &err);
	free(repo);
	*state = f;
	return rc == 0 ? 0 : -1;
}

static int repo_teardown(void **state)
{
	RepoFixture *f = *state;
	repo_free(f->repo);
	config_free(f->cfg);
	nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	unlink(f->out);
	unlink(f->errpath);
	free(f);
	return 0;
}

static void test_cmd_list_empty_repository_says_nothing_can_be_rebuilt(void **state)
{
	RepoFixture *f = *state;
	WsError err;
	char *out, *errout;

	put_wal(f, "000000010000000000000001", "wal 1");
	assert_int_equal(run_list(f, false, &out, &errout, &err), 0);
	char *want =
		xasprintf("repository \"%s/repo\" (%s), epochs: 15-1\n", f->root, repo_meta(f->repo)->uuid);
	assert_true(strncmp(out, want, strlen(want)) == 0);
	assert_non_null(strstr(out, "\nbackups (epoch 15-1): none\n"));
	assert_non_null(strstr(out, "\n  timeline 1: 1 segment, 000000010000000000000001\n"));
	assert_non_null(
		strstr(out, "\nrecoverable (epoch 15-1): nothing: no complete backup in this epoch\n"));
	assert_non_null(strstr(out, "\nno complete backups: nothing can be rebuilt yet\n"));
	assert_string_equal(errout, "");
	free(want);
	free(out);
	free(errout);
}

static void test_cmd_list_text_and_json_over_a_real_repository(void **state)
{
	RepoFixture *f = *state;
	WsError err;
	char *out, *errout;
	char key[STORE_KEY_MAX];

	/* Timeline 1 up to the switch, its .partial, timeline 2 with segment 7 missing. */
	for (int s = 1; s <= 4; s++) {
		char name[32];
		wal_segment_name(1, (uint64_t)s, SEG16, name);
		put_wal(f, name, "fake wal");
	}
	put_wal(f, "000000010000000000000005.partial", "partial");
	put_wal(f, "00000002.history", HIST_2);
	put_wal(f, "000000020000000000000005", "wal");
	put_wal(f, "000000020000000000000006", "wal");
	put_wal(f, "000000020000000000000008", "wal");
	put_wal(f, "000000020000000000000009", "wal");
	put_wal(f, "000000010000000000000002.00000028.backup", "START WAL LOCATION: 0/2000028\n");

	put_backup(f, test_listed_backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z"));
	put_backup(f, test_listed_backup(ID_B, 2, 0x8000028, 0x8000100, "2026-11-26T08:00:00Z"));
	/* Streamed but never finished: no manifest.json. */
	put_plain(f, "15-1/backups/" ID_C "/base.tar", "tar");
	/* A damaged manifest.json. */
	put_plain(f, "15-1/backups/20261127T000000Z/manifest.json", "{not json");

	assert_int_equal(run_list(f, false, &out, &errout, &err), WS_CORRUPT);
	char *want = xasprintf("1 problem found in repository \"%s/repo\"", f->root);
	assert_string_equal(err.msg, want);
	free(want);
	assert_non_null(strstr(errout, "error: backup \"20261127T000000Z\" of epoch \"15-1\" is not listed: "
				       "manifest.json of the backup is invalid"));
	assert_null(strstr(out, "20261127T000000Z"));

	const char *expect =
		"epoch 15-1: PostgreSQL 15, system identifier 7301234567890123456, 16 MiB WAL segments\n"
		"backups (epoch 15-1):\n"
		"  id                 start (UTC)           stop (UTC)            timeline   start LSN   "
		"stop LSN    "
		"size       stored\n"
		"  " ID_A "   2026-11-25 19:00:00   2026-11-25 19:00:04   1          0/2000028   0/2000138   "
		"22.5 MiB   3.1 MiB\n"
		"  " ID_B "   2026-11-26 08:00:00   2026-11-26 08:00:00   2          0/8000028   0/8000100   "
		"22.5 MiB   3.1 MiB\n"
		"  note: 1 incomplete backup without manifest.json (in progress, or failed and not "
		"removed): " ID_C "\n"
		"wal (epoch 15-1):\n"
		"  timeline 1: 4 segments, 000000010000000000000001 to 000000010000000000000004\n"
		"  timeline 2: 4 segments, 000000020000000000000005 to 000000020000000000000009, history "
		"file\n"
		"  also: 1 partial segment, 1 backup history file\n"
		"recoverable (epoch 15-1):\n"
		"  timeline 1: from 0/2000138 (backup " ID_A ", 2026-11-25 19:00:04) to 0/5000000 (end of "
		"000000010000000000000004, archived 2026-11-26 09:00:00)\n"
		"  timeline 2: from 0/2000138 (backup " ID_A ", 2026-11-25 19:00:04) to 0/7000000 (end of "
		"000000020000000000000006, archived 2026-11-26 09:00:00); gap: 000000020000000000000007 "
		"missing (1 segment); from 0/8000100 (backup " ID_B ", 2026-11-26 08:00:00) to 0/A000000 "
		"(end of 000000020000000000000009, archived 2026-11-26 09:00:00)\n";
	const char *body = strchr(out, '\n');
	assert_non_null(body);
	assert_string_equal(body + 1, expect);
	free(out);
	free(errout);

	/* JSON: the same facts, parsed back. */
	assert_int_equal(run_list(f, true, &out, &errout, &err), WS_CORRUPT);
	json_error_t jerr;
	json_t *root = json_loads(out, 0, &jerr);
	assert_non_null(root);
	char *repo_path = xasprintf("%s/repo", f->root);
	assert_string_equal(json_string_value(json_object_get(root, "repository")), repo_path);
	free(repo_path);
	assert_int_equal(json_array_size(json_object_get(root, "problems")), 1);
	json_t *ep = json_array_get(json_object_get(root, "epochs"), 0);
	assert_string_equal(json_string_value(json_object_get(ep, "id")), "15-1");
	json_t *backups = json_object_get(ep, "backups");
	assert_int_equal(json_array_size(backups), 2);
	json_t *b0 = json_array_get(backups, 0);
	assert_string_equal(json_string_value(json_object_get(b0, "id")), ID_A);
	assert_string_equal(json_string_value(json_object_get(b0, "stop_lsn")), "0/2000138");
	assert_string_equal(json_string_value(json_object_get(b0, "start_wal")), "000000010000000000000002");
	assert_int_equal(json_integer_value(json_object_get(b0, "timeline")), 1);
	assert_int_equal(json_integer_value(json_object_get(b0, "total_size")), 23592960);
	assert_int_equal(json_array_size(json_object_get(b0, "tablespaces")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(ep, "incomplete_backups"), 0)),
			    ID_C);

	json_t *tls = json_object_get(ep, "timelines");
	assert_int_equal(json_array_size(tls), 2);
	json_t *t2 = json_array_get(tls, 1);
	assert_int_equal(json_integer_value(json_object_get(t2, "timeline")), 2);
	assert_string_equal(json_string_value(json_object_get(t2, "from_lsn")), "0/2000138");
	assert_string_equal(json_string_value(json_object_get(t2, "from_backup")), ID_A);
	assert_string_equal(json_string_value(json_object_get(t2, "from_time")), "2026-11-25T19:00:04Z");
	assert_string_equal(json_string_value(json_object_get(t2, "to_lsn")), "0/A000000");
	assert_string_equal(json_string_value(json_object_get(t2, "to_wal")), "000000020000000000000009");
	assert_string_equal(json_string_value(json_object_get(t2, "to_archived_time")),
			    "2026-11-26T09:00:00Z");
	json_t *gaps = json_object_get(t2, "gaps");
	assert_int_equal(json_array_size(gaps), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(gaps, 0), "first_missing")),
			    "000000020000000000000007");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(gaps, 0), "count")), 1);
	assert_true(json_is_true(json_object_get(json_array_get(gaps, 0), "reachable_after")));
	assert_int_equal(json_array_size(json_object_get(t2, "ranges")), 2);
	json_t *t1 = json_array_get(tls, 0);
	assert_string_equal(json_string_value(json_object_get(t1, "to_wal")), "000000010000000000000004");
	json_t *wal = json_object_get(ep, "wal");
	assert_int_equal(json_integer_value(json_object_get(wal, "partial_segments")), 1);
	json_decref(root);
	free(out);
	free(errout);

	/* With the damaged manifest gone, the listing succeeds. */
	assert_int_equal(backup_key("15-1", "20261127T000000Z", BACKUP_META_NAME, key, sizeof(key)), 0);
	assert_int_equal(store_remove(repo_store(f->repo), key, &err), 0);
	assert_int_equal(run_list(f, false, &out, &errout, &err), 0);
	assert_string_equal(errout, "");
	assert_null(strstr(out, "no complete backups"));
	free(out);
	free(errout);
}

static void test_cmd_list_without_repository_fails(void **state)
{
	(void)state;
	WsError err;
	Config *cfg = config_new();
	assert_int_equal(config_set_option(cfg, "repo", "/nonexistent/walship-test-list", &err), 0);
	assert_int_equal(cmd_list(cfg, false, &err), WS_FATAL);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_str),
		cmocka_unit_test_setup_teardown(test_cmd_list_empty_repository_says_nothing_can_be_rebuilt,
						repo_setup, repo_teardown),
		cmocka_unit_test_setup_teardown(test_cmd_list_text_and_json_over_a_real_repository,
						repo_setup, repo_teardown),
		cmocka_unit_test(test_cmd_list_without_repository_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
