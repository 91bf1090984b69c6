/*
 * init.c - walship init: the only command that creates a repository, so that
 * an unmounted volume is never mistaken for a new, empty archive.
 */
#include "cmd/init.h"

#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/cluster.h"
#include "repo/repo.h"
#include "store/store.h"
#include "util/fsutil.h"
#include "util/log.h"

static bool is_set(const Config *cfg, const char *key)
{
	const char *v = config_get(cfg, key);
	return v != NULL && v[0] != '\0';
}

/* --encrypt and the key settings must agree before anything is created. */
static int check_encryption(const Config *cfg, bool encrypt, WsError *err)
{
	bool file = is_set(cfg, "encryption-key-file");
	bool pass = is_set(cfg, "encryption-passphrase");
	if (encrypt && !file && !pass) {
		ws_error(err, WS_USAGE, "walship init --encrypt needs a key, but no key is configured");
		ws_error_hint(
			err,
			"Make a key file with \"(umask 077; head -c 32 /dev/urandom > "
			"/etc/walship/repo.key)\", "
			"\"chown postgres /etc/walship/repo.key\", and set encryption-key-file to it in the "
			"configuration file; keep a copy in a safe place. Or set "
			"WALSHIP_ENCRYPTION_PASSPHRASE "
			"(slower: every walship-push and walship-fetch derives the key from it).");
		return WS_USAGE;
	}
	if (encrypt && file && pass) {
		ws_error(err, WS_USAGE, "both encryption-key-file and encryption-passphrase are set");
		ws_error_detail(err, "encryption-key-file comes from %s, encryption-passphrase from %s.",
				config_source(cfg, "encryption-key-file"),
				config_source(cfg, "encryption-passphrase"));
		ws_error_hint(err, "Set only the one the repository's key should come from.");
		return WS_USAGE;
	}
	if (!encrypt && (file || pass)) {
		const char *key = file ? "encryption-key-file" : "encryption-passphrase";
		ws_error(err, WS_USAGE, "%s is set, but --encrypt was not given", key);
		ws_error_detail(err, "%s comes from %s.", key, config_source(cfg, key));
		ws_error_hint(err,
			      "Add --encrypt to create an encrypted repository, or remove %s to create an "
			      "unencrypted one.",
			      key);
		return WS_USAGE;
	}
	return 0;
}

/*
 * Run as root for the data directory of another user (postgres), init makes a
 * repository that user's walship-push must write: a local one it creates is
 * given to that user, and otherwise it says what to check.
 */
typedef struct InitOwner {
	bool apply; /* root, for a data directory of another user */
	uid_t uid;
	gid_t gid;
	char name[64];
	const char *path; /* the local repository directory; NULL: a remote store */
	char *missing;    /* the first directory init creates; NULL: the repository directory existed */
} InitOwner;

static void owner_prepare(const Config *cfg, const char *pgdata, InitOwner *o)
{
	struct stat st;
	memset(o, 0, sizeof(*o));
	if (geteuid() != 0 || stat(pgdata, &st) != 0 || st.st_uid == 0)
		return;
	o->apply = true;
	o->uid = st.st_uid;
	o->gid = st.st_gid;
	const struct passwd *pw = getpwuid(st.st_uid);
	if (pw != NULL)
		snprintf(o->name, sizeof(o->name), "%s", pw->pw_name);
	else
		snprintf(o->name, sizeof(o->name), "%u", (unsigned)st.st_uid);
	o->path = store_url_local_path(config_get(cfg, "repo"));
	if (o->path != NULL)
		o->missing = fs_first_missing(o->path);
}

static int owner_apply(const InitOwner *o, const char *display, const char *pgdata, WsError *err)
{
	struct stat st;
	if (!o->apply)
		return 0;
	if (o->path == NULL) {
		log_warning(
			"walship init ran as root: repository \"%s\" was reached with root's configuration "
			"and credentials, but PostgreSQL runs walship-push as %s",
			display, o->name);
		log_hint("Check that %s can write it with its own: sudo -u %s walship check -D %s", o->name,
			 o->name, pgdata);
		return 0;
	}
	if (o->missing != NULL) {
		int rc = fs_chown_tree(o->missing, o->uid, o->gid, err);
		if (rc != 0) {
			ws_error_hint(err, "Repository \"%s\" was created; give it to %s: chown -R %s: %s",
				      display, o->name, o->name, o->missing);
			return rc;
		}
		printf("repository \"%s\" belongs to %s, the owner of the data directory\n", display,
		       o->name);
		return 0;
	}
	if (stat(o->path, &st) == 0 && st.st_uid != o->uid) {
		const struct passwd *pw = getpwuid(st.st_uid);
		char who[64];
		snprintf(who, sizeof(who), "%s", pw != NULL ? pw->pw_name : "another user");
		log_warning(
			"repository directory \"%s\" belongs to %s, not to %s, the owner of data directory "
			"\"%s\": walship-push, which PostgreSQL runs as %s, may not be able to write it",
			o->path, who, o->name, pgdata, o->name);
		log_hint("Give it to %s: chown -R %s: %s", o->name, o->name, o->path);
	}
	return 0;
}

int cmd_init(const Config *cfg, const char *pgdata, bool encrypt, WsError *err)
{
	ClusterInfo ci;
	Repo *repo = NULL;
	int rc = check_encryption(cfg, encrypt, err);
	if (rc != 0)
		return rc;
	if ((rc = cluster_read(pgdata, &ci, err)) != 0)
		return rc;
	InitOwner owner;
	owner_prepare(cfg, pgdata, &owner);
	rc = repo_create(cfg, ci.control.sysid, ci.pg_major, ci.control.seg_size, &repo, err);
	if (rc != 0) {
		free(owner.missing);
		return rc;
	}
	const RepoMeta *meta = repo_meta(repo);
	const RepoEpoch *e = repo_meta_newest(meta);
	char v[16], s[32];
	printf("initialised repository \"%s\" (%s)\n", repo_display(repo), meta->uuid);
	printf("epoch \"%s\": system identifier %" PRIu64 ", PostgreSQL %s, %s WAL segments\n", e->id,
	       e->sysid, pg_major_str(e->pg_major, v, sizeof(v)),
	       cluster_size_str(e->seg_size, s, sizeof(s)));
	if (meta->encryption != NULL)
		printf("encrypted with %s, key from %s\n", CRYPT_CIPHER,
		       meta->encryption->kdf == CRYPT_KDF_KEY_FILE ? "encryption-key-file"
								   : "encryption-passphrase (scrypt)");
	rc = owner_apply(&owner, repo_display(repo), pgdata, err);
	free(owner.missing);
	repo_free(repo);
	return rc;
}
