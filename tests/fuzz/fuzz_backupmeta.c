/*
 * fuzz_backupmeta.c - a backup's manifest.json (repo/backupmeta.c), from
 * which rebuild, list, verify and prune decide what a backup holds and where
 * its tablespaces go.
 *
 * Input: the text of a manifest.json.  What parses must name only safe
 * places (an id, an epoch and object names usable as one key component,
 * tablespace locations absolute and normalised), and must write back as
 * text that parses to the same values and writes back to the same text.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "repo/backupmeta.h"

static bool same_object(const BackupObject *a, const BackupObject *b)
{
	return strcmp(a->name, b->name) == 0 && a->size == b->size && a->stored_size == b->stored_size &&
	       memcmp(a->sha256, b->sha256, 32) == 0;
}

static bool same_meta(const BackupMeta *a, const BackupMeta *b)
{
	if (a->format != b->format || strcmp(a->id, b->id) != 0 || strcmp(a->label, b->label) != 0 ||
	    strcmp(a->epoch, b->epoch) != 0 || a->sysid != b->sysid ||
	    a->server_version_num != b->server_version_num || a->pg_major != b->pg_major ||
	    a->seg_size != b->seg_size || a->timeline != b->timeline || a->start_lsn != b->start_lsn ||
	    a->stop_lsn != b->stop_lsn || strcmp(a->start_wal, b->start_wal) != 0 ||
	    strcmp(a->stop_wal, b->stop_wal) != 0 || strcmp(a->start_time, b->start_time) != 0 ||
	    strcmp(a->stop_time, b->stop_time) != 0 || a->n_tablespaces != b->n_tablespaces ||
	    a->has_manifest != b->has_manifest ||
	    (a->has_manifest && !same_object(&a->manifest, &b->manifest)))
		return false;
	for (int i = 0; i < a->n_tablespaces; i++) {
		const BackupTablespaceInfo *x = &a->tablespaces[i], *y = &b->tablespaces[i];
		if (x->is_base != y->is_base || x->oid != y->oid || !same_object(&x->obj, &y->obj) ||
		    (x->location == NULL) != (y->location == NULL) ||
		    (x->location != NULL && strcmp(x->location, y->location) != 0))
			return false;
	}
	return true;
}

/* One component of a repository key: no "/", not "." or "..". */
static bool one_component(const char *s)
{
	return s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static void check_places(const BackupMeta *m)
{
	FUZZ_CHECK(backup_id_valid(m->id) && one_component(m->id) && one_component(m->epoch));
	for (int i = 0; i < m->n_tablespaces; i++) {
		const BackupTablespaceInfo *t = &m->tablespaces[i];
		FUZZ_CHECK(one_component(t->obj.name));
		if (t->is_base)
			continue;
		const char *l = t->location;
		size_t n = strlen(l);
		FUZZ_CHECK(l[0] == '/' && n > 1 && l[n - 1] != '/' && strstr(l, "//") == NULL);
		FUZZ_CHECK(strstr(l, "/./") == NULL && strstr(l, "/../") == NULL);
		FUZZ_CHECK(strcmp(l + n - 2, "/.") != 0 && (n < 3 || strcmp(l + n - 3, "/..") != 0));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	BackupMeta *meta = NULL, *again = NULL;
	WsError err;

	if (backup_meta_parse((const char *)data, size, &meta, &err) != 0)
		return 0;
	check_places(meta);
	char *text = backup_meta_serialize(meta, &err);
	FUZZ_CHECK(text != NULL);
	FUZZ_CHECK(backup_meta_parse(text, strlen(text), &again, &err) == 0);
	FUZZ_CHECK(same_meta(meta, again));
	char *text2 = backup_meta_serialize(again, &err);
	FUZZ_CHECK(text2 != NULL && strcmp(text, text2) == 0);
	free(text2);
	free(text);
	backup_meta_free(again);
	backup_meta_free(meta);
	return 0;
}
