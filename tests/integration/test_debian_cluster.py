"""Debian and Ubuntu clusters (postgresql-common: pg_createcluster, pg_ctlcluster, the configuration
in /etc/postgresql/15/NAME): an in-place point-in-time recovery keeps archiving on and archives the
new timeline, the recovery targets leave postgresql.auto.conf once recovery has ended whoever
started the server, --cluster=15/NAME names the data directory, and the hints name pg_ctlcluster."""

import re
import time

from pgcluster import PG_BIN, describe, flip_byte, free_port, make_pg_dir, run, tree_listing, wait_for
from test_backup import archiving_cluster, backup
from test_rebuild import rebuild, rows, stop_server


def archiving_debian(ws, work, debian_clusters, tag):
    dc = debian_clusters.new(tag)
    repo = ws.init(work / "repo", dc.data)
    dc.configure(archive_mode=True, archive_command=ws.archive_command(repo.root))
    dc.start()
    assert dc.scalar("SHOW archive_mode") == "on"
    return dc, repo


def rows_before_and_after(dc):
    """100 rows committed before the returned server time, 100 more after it, all archived."""
    dc.sql("CREATE TABLE kept (id int PRIMARY KEY)")
    dc.sql("INSERT INTO kept SELECT generate_series(1, 100)")
    time.sleep(1.2)
    target = dc.scalar("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    time.sleep(1.2)
    dc.sql("INSERT INTO kept SELECT generate_series(101, 200)")
    last = dc.switch_wal()
    dc.wait_archived(last)
    return target


def auto_conf(dc):
    return (dc.data / "postgresql.auto.conf").read_text()


def wait_promoted(dc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if dc.scalar("SELECT pg_is_in_recovery()") is False:
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise AssertionError(f"cluster {dc.spec} was not promoted within {timeout} s\n{dc.log_tail()}")


def walship(ws, *args, timeout=120):
    return run([ws.walship, f"--config={ws.config}", *args], cwd=ws.work, timeout=timeout)


def assert_archiving_after_restore(ws, repo, dc):
    """archive_mode still on, the new timeline's history and WAL in the repository, check clean."""
    assert dc.scalar("SHOW archive_mode") == "on", auto_conf(dc)
    last = dc.switch_wal()
    assert last.startswith("00000002"), last
    dc.wait_archived(last)
    stored = {f.rsplit("/", 1)[-1] for f in repo.files()}
    assert "00000002.history" in stored, sorted(stored)
    assert any(n.startswith(last) for n in stored), (last, sorted(stored))
    rc, out, err = walship(ws, "check", f"--repo={repo.root}", "-d",
                           f"host={dc.dir} port={dc.port} user=postgres dbname=postgres")
    assert rc == 0, describe(rc, out, err)


def test_in_place_pitr_of_a_debian_cluster_keeps_archiving(ws, work, debian_clusters):
    dc, repo = archiving_debian(ws, work, debian_clusters, "inplace")
    rc, out, err = backup(ws, repo.root, dc)
    assert rc == 0, describe(rc, out, err)
    target = rows_before_and_after(dc)
    etc_before = tree_listing(dc.etc)

    dc.stop()
    rc, out, err = rebuild(ws, repo, dc.data, "--force", f"--target-time={target}", "--target-action=promote")
    assert rc == 0, describe(rc, out, err)
    assert f"is the data directory of Debian cluster {dc.spec}" in out, out
    assert "in-place restore of this cluster" in out and "archive_mode is left as configured" in out, out
    assert f"start it with: pg_ctlcluster 15 {dc.name} start" in out, out
    assert "pg_ctl -D" not in out + err, out + err
    # The configuration is in /etc: nothing written in the data directory would be read.
    assert not (dc.data / "postgresql.conf").exists()
    assert "archive_mode" not in auto_conf(dc), auto_conf(dc)
    assert "recovery_target_time" in auto_conf(dc)

    dc.start()  # pg_ctlcluster, as the DBA does
    wait_promoted(dc)
    assert dc.scalar("SELECT count(*) FROM kept") == 100
    # recovery_end_command removed the targets: the next start or rebuild does not meet them.
    text = auto_conf(dc)
    assert not re.search(r"^\s*recovery_target", text, re.M), text
    assert not re.search(r"^\s*recovery_end_command", text, re.M), text
    assert tree_listing(dc.etc) == etc_before
    assert_archiving_after_restore(ws, repo, dc)
    # The next rebuild follows the new timeline: its history is in the repository.
    rc, out, err = rebuild(ws, repo, work / "next", "--dry-run")
    assert rc == 0, describe(rc, out, err)
    assert "timeline: 2 (latest)" in out, out


def test_in_place_rebuild_of_an_initdb_cluster_keeps_archiving(ws, work, clusters):
    """The RHEL/PGDG layout (configuration in the data directory): the same system identifier in
    the old pg_control makes it in place."""
    pg, repo = archiving_cluster(ws, work, clusters)
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    pg.sql("CREATE TABLE kept AS SELECT generate_series(1, 50) AS id")
    pg.wait_archived(pg.switch_wal())
    pg.stop()
    rc, out, err = rebuild(ws, repo, pg.data, "--force", "--start")
    assert rc == 0, describe(rc, out, err)
    assert "in-place restore of this cluster" in out, out
    pg.started = True
    assert pg.scalar("SELECT count(*) FROM kept") == 50
    assert pg.scalar("SHOW archive_mode") == "on"
    last = pg.switch_wal()
    pg.wait_archived(last)
    assert "00000002.history" in {f.rsplit("/", 1)[-1] for f in repo.files()}


def test_a_copy_over_another_clusters_directory_is_a_copy(ws, work, clusters, foreign_datadir):
    pg, repo = archiving_cluster(ws, work, clusters)
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    pg.wait_archived(pg.switch_wal())
    rc, out, err = rebuild(ws, repo, foreign_datadir, "--force", "--dry-run")
    assert rc == 0, describe(rc, out, err)
    assert "a copy (the directory held another cluster): archive_mode = off is written" in out, out


def test_in_place_rebuild_with_start_uses_pg_ctlcluster_and_cluster_names_it(ws, work, debian_clusters):
    dc, repo = archiving_debian(ws, work, debian_clusters, "start")
    rc, out, err = backup(ws, repo.root, dc)
    assert rc == 0, describe(rc, out, err)
    target = rows_before_and_after(dc)

    # Running: refused, with the command that stops a Debian cluster.
    rc, out, err = run([ws.walship, f"--config={ws.config}", "rebuild", f"--repo={repo.root}",
                        f"--cluster=15/{dc.name}", "--force", "--dry-run"], cwd=ws.work, user=None)
    assert rc == 1, describe(rc, out, err)
    assert f"pg_ctlcluster 15 {dc.name} stop" in err, err

    dc.stop()
    rc, out, err = run([ws.walship, f"--config={ws.config}", "rebuild", f"--repo={repo.root}",
                        f"--cluster=15/{dc.name}", "--force", f"--target-time={target}",
                        "--target-action=promote", "--start"], cwd=ws.work, user=None, timeout=300)
    assert rc == 0, describe(rc, out, err)
    assert f"starting the cluster with: pg_ctlcluster 15 {dc.name} start" in out, out
    assert "recovery ended and the server was promoted" in out, out
    assert dc.scalar("SELECT count(*) FROM kept") == 100
    text = auto_conf(dc)
    assert not re.search(r"^\s*recovery_target", text, re.M), text
    dc.started = True
    assert_archiving_after_restore(ws, repo, dc)


def test_cluster_option_errors(ws, work, debian_clusters):
    rc, out, err = walship(ws, "rebuild", f"--repo={work / 'none'}", "--cluster=15/walship-no-such")
    assert rc == 2, describe(rc, out, err)
    assert "no cluster 15/walship-no-such" in err and "pg_lsclusters" in err, err
    rc, out, err = walship(ws, "rebuild", f"--repo={work / 'none'}", "--cluster=main")
    assert rc == 2 and "VERSION/NAME" in err, describe(rc, out, err)
    dc = debian_clusters.new("named")
    rc, out, err = walship(ws, "rebuild", f"--repo={work / 'none'}", f"--cluster={dc.spec}",
                           f"--pgdata={work / 'elsewhere'}")
    assert rc == 2 and "is not the data directory of cluster" in err, describe(rc, out, err)


def test_standby_of_a_debian_primary_streams_and_archives_once_promoted(ws, work, tmp, debian_clusters):
    """A standby rebuilt into a new directory from a backup of a Debian primary: the backup carries
    the configuration from /etc (archive settings, pg_hba.conf), so the standby starts, streams, and
    once promoted archives its new timeline into the repository."""
    dc, repo = archiving_debian(ws, work, debian_clusters, "primary")
    rc, out, err = backup(ws, repo.root, dc)
    assert rc == 0, describe(rc, out, err)
    dc.sql("CREATE TABLE marker (id int)")
    dc.sql("INSERT INTO marker VALUES (1)")
    dc.wait_archived(dc.switch_wal())

    standby = make_pg_dir(tmp / "standby", 0o700)
    port = free_port()
    conninfo = f"host={dc.dir} port={dc.port} user=postgres application_name=walship_standby"
    try:
        rc, out, err = rebuild(ws, repo, standby, "--standby", f"--primary-conninfo={conninfo}", "--start",
                               f"--port={port}", timeout=300)
        assert rc == 0 and "the standby is running" in out, describe(rc, out, err)
        dc.sql("INSERT INTO marker VALUES (2)")
        wait_for(lambda: rows(dc.dir, port, "SELECT count(*) FROM marker")[0][0] == 2, 60,
                 "row 2 did not stream to the standby")
        assert rows(dc.dir, port, "SELECT status FROM pg_stat_wal_receiver") == [("streaming",)]
        assert rows(dc.dir, port, "SHOW archive_mode") == [("on",)]

        rc, out, err = run([PG_BIN / "pg_ctl", "-D", standby, "-w", "-t", "60", "promote"], timeout=90)
        assert rc == 0, describe(rc, out, err)
        wait_for(lambda: rows(dc.dir, port, "SELECT pg_is_in_recovery()")[0][0] is False, 60, "promotion")
        rows(dc.dir, port, "SELECT txid_current()")  # a write, so that the switch completes a segment
        last = rows(dc.dir, port, "SELECT pg_walfile_name(pg_switch_wal())")[0][0]
        assert last.startswith("00000002"), last
        wait_for(lambda: any(f.rsplit("/", 1)[-1].startswith(last) for f in repo.files()), 60,
                 f"{last} of the promoted standby was not archived")
        assert "00000002.history" in {f.rsplit("/", 1)[-1] for f in repo.files()}
    finally:
        stop_server(standby)


def test_a_time_target_on_a_timeline_with_no_later_commit_is_explained(ws, work, clusters, tmp):
    """After an in-place PITR to T, timeline 2 has no commit after T: a copy to the same T along
    timeline 2 cannot stop there, and PostgreSQL ends recovery with FATAL. rebuild says why and
    what to do, not that the WAL ends before T."""
    pg, repo = archiving_cluster(ws, work, clusters)
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    pg.sql("CREATE TABLE kept AS SELECT generate_series(1, 10) AS id")
    time.sleep(1.2)
    target = pg.scalar("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    time.sleep(1.2)
    pg.sql("DROP TABLE kept")
    pg.wait_archived(pg.switch_wal())
    pg.stop()
    rc, out, err = rebuild(ws, repo, pg.data, "--force", f"--target-time={target}", "--target-action=promote",
                           "--start")
    assert rc == 0, describe(rc, out, err)
    pg.started = True
    pg.sql("SELECT pg_logical_emit_message(false, 'walship', 'no commit')")
    last = pg.scalar("SELECT pg_walfile_name(pg_switch_wal())")
    assert last.startswith("00000002"), last
    pg.wait_archived(last)

    copy = make_pg_dir(tmp / "copy", 0o700)
    try:
        rc, out, err = rebuild(ws, repo, copy, f"--target-time={target}", "--target-action=promote", "--start",
                               f"--port={free_port()}")
        assert rc == 1, describe(rc, out, err)
        assert "recovery ended before the target was reached" in err, err
        assert "the timeline it followed has none in the repository" in err, err
        assert "--target-timeline=N" in err, err
    finally:
        stop_server(copy)


def test_a_retried_in_place_rebuild_is_still_in_place(ws, work, clusters):
    """The first attempt empties the directory and fails on a damaged backup: no pg_control is
    left to tell the retry that this is the cluster's own directory. It is still in place, and
    archiving is still kept (the initdb layout, where no /etc/postgresql says so either)."""
    pg, repo = archiving_cluster(ws, work, clusters)
    for _ in range(2):
        rc, out, err = backup(ws, repo.root, pg)
        assert rc == 0, describe(rc, out, err)
        time.sleep(1.1)  # backup ids are to the second
    pg.wait_archived(pg.switch_wal())
    pg.stop()
    ids = sorted(p.name for p in (repo.root / repo.epoch / "backups").iterdir())
    assert len(ids) == 2, ids
    base = repo.root / repo.epoch / "backups" / ids[1] / "base.tar"
    flip_byte(base, base.stat().st_size // 2)

    rc, out, err = rebuild(ws, repo, pg.data, "--force")
    assert rc != 0, describe(rc, out, err)
    assert "in-place restore of this cluster" in out, out
    assert not (pg.data / "global" / "pg_control").exists()

    rc, out, err = rebuild(ws, repo, pg.data, "--force", f"--backup={ids[0]}", "--start")
    assert rc == 0, describe(rc, out, err)
    assert "in-place restore of this cluster" in out, out
    pg.started = True
    assert pg.scalar("SHOW archive_mode") == "on"
    assert not (pg.data / "walship-rebuild.in-place").exists()
