/*
 * init.c - walship init: the only command that creates a repository, so that
 * an unmounted volume is never mistaken for a new, empty archive.
 */
#include "cmd/init.h"

#include <inttypes.h>
#include <stdio.h>

#include "pg/cluster.h"
#include "repo/repo.h"

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

int cmd_init(const Config *cfg, const char *pgdata, bool encrypt, WsError *err)
{
	ClusterInfo ci;
	Repo *repo = NULL;
	int rc = check_encryption(cfg, encrypt, err);
	if (rc != 0)
		return rc;
	if ((rc = cluster_read(pgdata, &ci, err)) != 0)
		return rc;
	rc = repo_create(cfg, ci.control.sysid, ci.pg_major, ci.control.seg_size, &repo, err);
	if (rc != 0)
		return rc;
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
	repo_free(repo);
	return 0;
}
