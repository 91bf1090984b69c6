"""The server's archive settings as walship check and walship backup see them
(pg/archcheck.c, shared by both): backup stops within seconds, with check's
message, when archive_command archives elsewhere (cp, walship-push into
another repository) or archive_mode is off; a check warning (a repository
that cannot be read from the command) stays a warning; a role that may only
stream a backup gets the same checks over the replication connection; while
archiving lags, backup says every 5 seconds which WAL file it waits for and
what pg_stat_archiver says.  On a Debian cluster (pg_createcluster,
configuration in /etc) an archive_mode = off written to postgresql.auto.conf
is named with its file and line, and after a promotion made while archiving
was off, check names the new timeline's missing history file (and backup
stops on it) until it is pushed by hand."""

import re
import time

from pgcluster import RepoView, check_run, describe, run, wait_for


def dsn(pg):
    return f"host={pg.dir} port={pg.port} user=postgres dbname=postgres"


def backup(ws, repo, pg, *opts):
    cmd = [ws.walship, f"--config={ws.config}", "backup", f"--repo={repo}", "-d", dsn(pg), *opts]
    start = time.monotonic()
    rc, out, err = run(cmd, cwd=ws.work, timeout=200)
    return rc, out, err, time.monotonic() - start


def check(ws, repo, pg, *opts):
    cmd = [ws.walship, f"--config={ws.config}", "check", f"--repo={repo}", "-d", dsn(pg), *opts]
    return run(cmd, cwd=ws.work, timeout=120)


def set_archive_command(pg, value):
    pg.sql("ALTER SYSTEM SET archive_command = '" + value.replace("'", "''") + "'")
    pg.sql("SELECT pg_reload_conf()")
    wait_for(lambda: pg.scalar("SHOW archive_command") == value, 30, "archive_command was not reloaded")


def backups_left(repo):
    root = repo.root / repo.epoch / "backups"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def auto_conf_line(pg, name):
    """The line number of name's setting in postgresql.auto.conf."""
    lines = (pg.data / "postgresql.auto.conf").read_text().splitlines()
    return next(i + 1 for i, line in enumerate(lines) if line.startswith(name))


def test_backup_fails_fast_when_archive_command_archives_elsewhere(ws, work, clusters, tmp):
    pg = clusters.new("primary").initdb()
    repo = ws.init(work / "repo", pg.data)
    pg.configure(archive_mode=True, archive_command=f"cp %p {tmp}/somewhere/%f")
    pg.start()

    # cp into a directory: check's message and hint, in seconds, not after --wal-timeout (300 s).
    rc, out, err, took = backup(ws, repo.root, pg)
    assert rc == 1, describe(rc, out, err)
    assert took < 30, took
    assert f'error: archive_command does not call walship-push: "cp %p {tmp}/somewhere/%f"' in err, err
    assert re.search(r"\(set in \S+/postgresql\.conf line \d+\)", err), err
    assert f"hint: Set archive_command = 'walship-push --repo={repo.root} %p %f' in {pg.data}/postgresql.conf" in err
    assert backups_left(repo) == [] and out == ""

    # walship-push into another repository, set by ALTER SYSTEM: both repositories and the line named.
    other = ws.init(work / "other", pg.data)
    set_archive_command(pg, ws.archive_command(other.root))
    rc, out, err, took = backup(ws, repo.root, pg)
    assert rc == 1, describe(rc, out, err)
    assert took < 30, took
    line = auto_conf_line(pg, "archive_command")
    assert (f'error: archive_command stores WAL in repository "{other.root}", not in "{repo.root}" '
            f"(set in {pg.data}/postgresql.auto.conf line {line})") in err, err
    assert f"--repo={repo.root}" in err and f"walship backup with --repo={other.root}" in err
    assert backups_left(repo) == []

    # A repository check cannot read from the command is a warning for check, and so for backup.
    set_archive_command(pg, f"R={repo.root}; " + ws.archive_command("$R").replace("'--repo=$R'", '"--repo=$R"'))
    rc, out, err, _ = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    assert "warning: cannot tell which repository archive_command's walship-push uses" in err
    assert re.search(r'backup "\S+" complete', out), out


def test_backup_by_a_replication_only_role_checks_over_the_replication_connection(ws, work, clusters, tmp):
    pg = clusters.new("primary").initdb()
    repo = ws.init(work / "repo", pg.data)
    pg.configure(archive_mode=True, archive_command=f"cp %p {tmp}/somewhere/%f")
    pg.start()
    # A role that may stream a base backup but may not connect to a database.
    pg.sql("CREATE ROLE replicator LOGIN REPLICATION")
    pg.sql("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
    role_dsn = f"host={pg.dir} port={pg.port} user=replicator dbname=postgres"
    cmd = [ws.walship, f"--config={ws.config}", "backup", f"--repo={repo.root}", "-d", role_dsn]
    rc, out, err = run(cmd, cwd=ws.work, timeout=120)
    assert rc == 1, describe(rc, out, err)
    # SHOW over the replication connection: the same failure, without the file and line.
    assert f'error: archive_command does not call walship-push: "cp %p {tmp}/somewhere/%f"\n' in err, err

    set_archive_command(pg, ws.archive_command(repo.root))
    rc, out, err = run(cmd + ["-v"], cwd=ws.work, timeout=120)
    assert rc == 0, describe(rc, out, err)
    assert "archive settings are read over the replication connection" in err
    assert re.search(r'backup "\S+" complete', out), out


def test_backup_says_what_it_waits_for_while_archiving_lags(ws, work, clusters):
    pg = clusters.new("primary").initdb()
    repo = ws.init(work / "repo", pg.data)
    # Each file takes 8 s to archive: the checks pass, the wait for the backup's WAL is long.
    pg.configure(archive_mode=True, archive_command="sleep 8 && " + ws.archive_command(repo.root))
    pg.start()

    rc, out, err, took = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    lines = re.findall(r'walship: waiting (\d+) s of 300 for WAL file "([0-9A-F]{24})": pg_stat_archiver: '
                       r'last_archived_wal "[^"]*".*, failed_count (\d+)', err)
    assert lines, f"no progress line while waiting:\n{err}"
    meta = RepoView(repo.root)
    assert all(meta.key_path(wal).is_file() for _, wal, _ in lines)
    assert all(int(s) >= 5 for s, _, _ in lines)
    assert "archiving is failing" not in err


def test_debian_archive_mode_off_in_auto_conf_is_named(ws, work, debian_clusters):
    dc = debian_clusters.new("pitr")
    repo = ws.init(work / "repo", dc.data)
    dc.configure(archive_mode=True, archive_command=ws.archive_command(repo.root))
    dc.start()
    rc, out, err = check(ws, repo.root, dc)
    assert rc == 0, describe(rc, out, err)

    # As walship rebuild leaves it in a copy: archive_mode = 'off' in postgresql.auto.conf.
    dc.sql("ALTER SYSTEM SET archive_mode = off")
    dc.stop()
    dc.start()
    line = auto_conf_line(dc, "archive_mode")
    where = f"(set in {dc.data}/postgresql.auto.conf line {line})"
    rc, out, err = check(ws, repo.root, dc)
    assert rc == 3, describe(rc, out, err)
    assert f"failed: archive_mode = off {where}: the server archives nothing" in out, out
    assert "hint: Run ALTER SYSTEM RESET archive_mode" in out
    assert f"then restart the server (pg_ctlcluster 15 {dc.name} restart)" in out, out
    assert str(dc.conf) not in out  # postgresql.conf (archive_mode = on in conf.d) is not blamed
    # A role that may not see where settings come from is told so.
    dc.sql("CREATE ROLE watcher LOGIN")
    rc, out, err = run([ws.walship, f"--config={ws.config}", "check", f"--repo={repo.root}", "-d",
                        f"host={dc.dir} port={dc.port} user=watcher dbname=postgres"], cwd=ws.work)
    assert 'archive_mode = off (where it is set is not visible to role "watcher"' in out, describe(rc, out, err)

    # backup: the same message, in seconds.
    rc, out, err, took = backup(ws, repo.root, dc)
    assert rc == 1, describe(rc, out, err)
    assert took < 30, took
    assert f"error: archive_mode = off {where}: the server archives nothing" in err, err
    assert backups_left(repo) == []


def test_debian_history_of_a_timeline_promoted_with_archiving_off(ws, work, debian_clusters):
    dc = debian_clusters.new("tli")
    repo = ws.init(work / "repo", dc.data)
    dc.configure(archive_mode=True, archive_command=ws.archive_command(repo.root))
    dc.start()
    # A point-in-time recovery in place while archiving is off (as walship rebuild leaves it in
    # postgresql.auto.conf): timeline 2, its history file never archived.
    dc.sql("ALTER SYSTEM SET archive_mode = off")
    dc.stop()
    (dc.data / "standby.signal").touch()
    check_run(["chown", "postgres:postgres", str(dc.data / "standby.signal")], user=None)
    dc.start()
    dc.promote()
    wait_for(lambda: dc.scalar("SELECT NOT pg_is_in_recovery()"), 60, "the cluster was not promoted")
    assert (dc.data / "pg_wal" / "00000002.history").is_file()
    dc.sql("ALTER SYSTEM RESET archive_mode")
    dc.stop()
    dc.start()
    rc, out, err = check(ws, repo.root, dc)
    assert rc == 3, describe(rc, out, err)
    assert (f'failed: the server is on timeline 2, but its history file "00000002.history" is not in '
            f'repository "{repo.root}"') in out, out
    assert "ok: archive_mode = on" in out and "ok: archive_command calls walship-push" in out
    m = re.search(r"hint: Archive it by hand, as the server's user: (.*)", out)
    assert m and "pg_wal/00000002.history" in m.group(1), out
    assert not RepoView(repo.root).key_path("00000002.history").exists()
    # backup would wait for it until --wal-timeout: it stops at once with check's message.
    rc, out, err, took = backup(ws, repo.root, dc)
    assert rc == 1, describe(rc, out, err)
    assert took < 30, took
    assert 'error: the server is on timeline 2, but its history file "00000002.history" is not in' in err, err
    assert backups_left(repo) == []

    # The hint's command, as written, puts it there; then check passes.
    hint = m.group(1).split()
    assert hint[0] == "walship-push"
    check_run([ws.push_bin, f"--config={ws.config}", *hint[1:]], cwd=dc.data)
    assert RepoView(repo.root).key_path("00000002.history").is_file()
    rc, out, err = check(ws, repo.root, dc)
    assert rc == 0, describe(rc, out, err)
    assert 'ok: timeline 2: its history file "00000002.history" is in repository' in out
    rc, out, err, _ = backup(ws, repo.root, dc)
    assert rc == 0, describe(rc, out, err)
