"""walship check against real servers: it passes on a cluster that archives
into the repository (local disk and S3) and then finds the WAL file it forced
in the repository; it fails (exit 3) with a hint saying what to change for
archive_mode off or always, an archive_command that does not call
walship-push, calls it for another repository or hides its exit status, a
repository of another cluster, a store that answers 403 for a missing key (S3
without s3:ListBucket), and archiving that fails (reported from
pg_stat_archiver after --timeout); it exits 1 when it cannot connect."""

import os
import re
import time

from pgcluster import RepoView, check_run, describe, has_phrase, run, wait_for, write_pg_file


def conninfo(pg):
    return f"host={pg.dir} port={pg.port} user=postgres dbname=postgres"


def check(ws, pg, repo, *opts, config=None, dbname=None, env=None):
    cmd = [ws.walship, f"--config={config or ws.config}", "check", f"--repo={repo}",
           "-d", dbname or conninfo(pg), *opts]
    start = time.monotonic()
    rc, out, err = run(cmd, cwd=ws.work, timeout=120, env=env)
    return rc, out, err, time.monotonic() - start


def archiving(clusters, ws, repo_of, archive_command=None, **settings):
    """A started cluster whose repository repo_of(pg) was initialised from its data directory."""
    pg = clusters.new("pg").initdb()
    repo = repo_of(pg)
    settings = {"archive_mode": True, "archive_command": archive_command or ws.archive_command(repo), **settings}
    pg.configure(**settings)
    pg.start()
    return pg, repo


def local_repo(ws, work):
    def make(pg):
        ws.init(work / "repo", pg.data)
        return work / "repo"
    return make


def set_archive_command(pg, value):
    """ALTER SYSTEM, reload, and wait until a new session sees the value."""
    pg.sql("ALTER SYSTEM SET archive_command = '" + value.replace("'", "''") + "'")
    pg.sql("SELECT pg_reload_conf()")
    wait_for(lambda: pg.scalar("SHOW archive_command") == value, 30, "archive_command was not reloaded")


def switched_file(out):
    m = re.search(r'ok: WAL file "([0-9A-F]{24})" reached repository', out)
    assert m, out
    return m.group(1)


def test_well_set_cluster_passes_and_the_switched_file_is_archived(clusters, ws, work):
    pg, repo = archiving(clusters, ws, local_repo(ws, work))
    rc, out, err, _ = check(ws, pg, repo)
    assert rc == 0, describe(rc, out, err)
    assert "ok: archive_mode = on" in out
    assert f'ok: archive_command calls walship-push %p %f with repository "{repo}"' in out
    assert "belongs to this cluster" in out and 'answers "not found"' in out
    assert "failed" not in out and err == ""
    wal = switched_file(out)
    assert RepoView(repo).key_path(wal).is_file()
    # The file it switched is the one the server completed, and the check left no object behind.
    # (Up to PostgreSQL 14 the statistics collector reports it a moment later.)
    wait_for(lambda: (pg.scalar("SELECT last_archived_wal FROM pg_stat_archiver") or "") >= wal, 10,
             lambda: f"pg_stat_archiver does not show {wal} archived")
    assert not [f for f in RepoView(repo).files() if "check-" in f]

    # The same repository spelled differently (file://, trailing slash) is the same repository.
    rc, out, err, _ = check(ws, pg, f"file://{repo}/")
    assert rc == 0, describe(rc, out, err)


def test_archive_mode_off_fails_with_the_hint(clusters, ws, work):
    pg, repo = archiving(clusters, ws, local_repo(ws, work), archive_mode=False)
    rc, out, err, _ = check(ws, pg, repo)
    assert rc == 3, describe(rc, out, err)
    # Where it was set: postgresql.conf's last archive_mode line (configure appends it).
    lines = (pg.data / "postgresql.conf").read_text().splitlines()
    line = max(i + 1 for i, t in enumerate(lines) if t.startswith("archive_mode"))
    assert f"failed: archive_mode = off (set in {pg.data}/postgresql.conf line {line})" in out, out
    assert (f"hint: Set archive_mode = on in {pg.data}/postgresql.conf and restart the server "
            f"(pg_ctl -D {pg.data} restart)") in out
    # archive_command is still checked, from the configuration files, and nothing is switched.
    assert "ok: archive_command calls walship-push" in out
    assert "skipped: WAL switch" in out
    assert "1 check failed" in out


def test_archive_mode_always_is_refused(clusters, ws, work):
    pg, repo = archiving(clusters, ws, local_repo(ws, work), archive_mode="always")
    rc, out, err, _ = check(ws, pg, repo)
    assert rc == 3, describe(rc, out, err)
    assert re.search(r"failed: archive_mode = always \(set in \S+/postgresql\.conf line \d+\): set it to on", out), out
    assert has_phrase(out, "standbys archive too")


def test_wrong_archive_commands_fail_naming_what_to_change(clusters, ws, work, tmp):
    pg, repo = archiving(clusters, ws, local_repo(ws, work))

    set_archive_command(pg, f"cp %p {tmp}/somewhere/%f")
    rc, out, err, _ = check(ws, pg, repo)
    assert rc == 3, describe(rc, out, err)
    assert f'failed: archive_command does not call walship-push: "cp %p {tmp}/somewhere/%f"' in out
    assert f"hint: Set archive_command = 'walship-push --repo={repo} %p %f'" in out
    assert "skipped: WAL switch" in out

    # walship-push for another (initialised, working) repository: both named.
    other = work / "other"
    ws.init(other, pg.data)
    set_archive_command(pg, ws.archive_command(other))
    rc, out, err, _ = check(ws, pg, repo)
    assert rc == 3, describe(rc, out, err)
    assert f'failed: archive_command stores WAL in repository "{other}", not in "{repo}"' in out
    assert f"--repo={repo}" in out and f"--repo={other}" in out

    # The repository from the configuration file walship-push reads: named as such.
    conf = write_pg_file(work / "push.conf", f"repo = {other}\n", 0o600)
    set_archive_command(pg, f"{ws.push_bin} --config={conf} %p %f")
    rc, out, err, _ = check(ws, pg, repo)
    assert rc == 3, describe(rc, out, err)
    assert f'stores WAL in repository "{other}", not in "{repo}"' in out
    assert f'comes from configuration file "{conf}"' in out
    write_pg_file(conf, f"repo = {repo}/\n", 0o600)
    rc, out, err, _ = check(ws, pg, repo)
    assert rc == 0, describe(rc, out, err)
    assert f'with repository "{repo}/" (from configuration file "{conf}")' in out
    # check's own WALSHIP_REPO (docker exec passes the container's) does not hide the file's repo,
    # which is what the server's walship-push reads.
    rc, out, err, _ = check(ws, pg, repo, env={"WALSHIP_REPO": str(repo)})
    assert rc == 0, describe(rc, out, err)
    assert "cannot tell" not in out + err, out + err
    assert f'with repository "{repo}/" (from configuration file "{conf}")' in out

    # A repository check cannot read from the command: a warning, and the WAL switch decides.
    set_archive_command(pg, f"R={repo}; " + ws.archive_command("$R").replace("'--repo=$R'", '"--repo=$R"'))
    rc, out, err, _ = check(ws, pg, repo)
    assert rc == 0, describe(rc, out, err)
    assert "warning: cannot tell which repository archive_command's walship-push uses" in out
    assert "reached repository" in out

    # A status that never reaches the server, and arguments in the wrong order.
    set_archive_command(pg, ws.archive_command(repo) + " || true")
    rc, out, err, _ = check(ws, pg, repo)
    assert rc == 3, describe(rc, out, err)
    assert "hides walship-push's exit status" in out
    set_archive_command(pg, ws.archive_command(repo).replace("%p %f", "%f %p"))
    rc, out, err, _ = check(ws, pg, repo)
    assert rc == 3, describe(rc, out, err)
    assert 'calls walship-push with "%f %p" instead of "%p %f"' in out


def test_repository_of_another_cluster_fails(clusters, ws, work, foreign_datadir):
    def foreign(pg):
        ws.init(work / "foreign-repo", foreign_datadir)
        return work / "foreign-repo"
    pg, repo = archiving(clusters, ws, foreign)
    rc, out, err, _ = check(ws, pg, repo)
    assert rc == 3, describe(rc, out, err)
    assert f'failed: repository "{repo}" belongs to another cluster' in out
    sysid = pg.scalar("SELECT system_identifier FROM pg_control_system()")
    assert str(sysid) in out
    assert "skipped: WAL switch" in out


def test_failing_archiving_times_out_with_pg_stat_archiver(clusters, ws, work):
    pg, repo = archiving(clusters, ws, local_repo(ws, work))
    # walship-push (the postgres user) can read the epoch's directory but not write in it.
    epoch_dir = repo / RepoView(repo).epoch
    epoch_dir.mkdir(exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(epoch_dir):
        for n in dirnames + filenames:
            os.chown(os.path.join(dirpath, n), 0, 0)
    os.chown(epoch_dir, 0, 0)
    os.chmod(epoch_dir, 0o755)
    rc, out, err, took = check(ws, pg, repo, "--timeout=5")
    assert rc == 3, describe(rc, out, err)
    m = re.search(r'failed: WAL file "([0-9A-F]{24})" did not reach repository "[^"]+" within 5 seconds', out)
    assert m, out
    assert "pg_stat_archiver: archive_command has failed" in out, out
    assert "hint: See the server log for walship-push's messages" in out
    assert 4 <= took < 30, took


def test_cannot_connect_exits_1(ws, work, datadir):
    repo = work / "repo"
    ws.init(repo, datadir)
    rc, out, err, _ = check(ws, None, repo, dbname=f"host={work} port=1 user=postgres connect_timeout=5")
    assert rc == 1, describe(rc, out, err)
    assert "walship: error: could not connect to the server" in err
    assert "hint: Name the server with -d" in err


def test_s3_well_set_then_403_for_missing_keys(clusters, ws, work, s3server, s3bucket):
    write_pg_file(ws.config, s3server.config_text(), 0o600)
    url = s3server.url(s3bucket, "cluster-a")

    def s3repo(pg):
        check_run([ws.walship, f"--config={ws.config}", "init", f"--repo={url}", f"--pgdata={pg.data}"],
                  cwd=work)
        return url
    pg, repo = archiving(clusters, ws, s3repo)
    rc, out, err, _ = check(ws, pg, url)
    assert rc == 0, describe(rc, out, err)
    wal = switched_file(out)
    keys = [o["Key"] for o in s3server.boto3_client().list_objects_v2(Bucket=s3bucket).get("Contents", [])]
    assert any(k.endswith(f"/wal/{wal[:16]}/{wal}") for k in keys), keys

    # Without s3:ListBucket S3 answers 403 for a missing key: restore_command could never see "not found".
    s3server.deny_list_bucket(True)
    rc, out, err, _ = check(ws, pg, url)
    assert rc == 3, describe(rc, out, err)
    assert f'failed: repository "{url}" does not answer "not found" for a missing WAL file' in out
    assert "s3:ListBucket" in out
    assert "skipped: WAL switch" in out
