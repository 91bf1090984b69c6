"""What differs between PostgreSQL majors, checked against the real server of the
major under test (tests/matrix/run runs this file on 13, 15 and 17; make integration
on this host's 15).

- The server is the major the run says (WALSHIP_PG_MAJOR), and the page magic of
  its WAL is the one walship's table holds for that major (src/pg/walpage.c),
  read from a segment the server wrote and walship archived.
- A time target with --target-action=pause and an xid target with shutdown
  stop the server of the major there.
- A standby rebuilt with --standby streams from its primary, then, promoted,
  archives its new timeline (history file and WAL) into the same repository.
- PostgreSQL 17 and later: a server that summarizes WAL (summarize_wal = on) is
  backed up in full (walship takes no incremental backup yet), the stored
  backup passes pg_verifybackup, and rebuilds to exactly the primary's rows.
- The recovery.conf world of 9.6 to 11, which no server here can run: a data
  directory laid out as 11 has it (made from the real cluster of this run, with
  PG_VERSION 11 and a repository whose epoch says 11) goes through rebuild's
  writer and walship-fetch's mode detection.
- With WALSHIP_UPGRADE_FROM (tests/matrix/run's upgrade root, where two majors
  run side by side): a real pg_upgrade from that major to this one, then
  walship upgrade; the old epoch's backup still rebuilds with the old major's
  server, and the upgraded cluster archives into the new epoch.
"""

import io
import json
import os
import tarfile
import time
from pathlib import Path

from pgcluster import (
    PG_BIN,
    PG_MAJOR,
    RepoView,
    check_run,
    describe,
    flip_byte,
    free_port,
    make_pg_dir,
    run,
    wait_for,
    write_pg_file,
    zstd_decompress,
)
from test_backup import archiving_cluster, check_backup, verify_with_pg_verifybackup
from test_prune import copy_repo, take_backup
from test_rebuild import rebuild, rows, stop_server
from test_rebuild_old_majors import doctor_major

# XLOG_PAGE_MAGIC of each major's access/xlog_internal.h (as src/pg/walpage.c has them).
PAGE_MAGIC = {13: 0xD106, 14: 0xD10D, 15: 0xD110, 16: 0xD113, 17: 0xD116}


def test_the_server_is_the_major_under_test_and_its_wal_is_walships(ws, work, clusters):
    pg, repo = archiving_cluster(ws, work, clusters)
    version = int(pg.scalar("SHOW server_version_num"))
    assert version // 10000 == PG_MAJOR, f"the server is {version}, the run says PostgreSQL {PG_MAJOR}"
    assert json.loads((repo.root / "walship.json").read_text())["epochs"][0]["pg_major"] == str(PG_MAJOR)

    pg.sql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g")
    name = pg.switch_wal()
    pg.wait_archived(name)
    segment = zstd_decompress(repo.key_path(name))
    assert len(segment) == 16 * 1024 * 1024
    magic = int.from_bytes(segment[:2], "little")
    assert magic == PAGE_MAGIC[PG_MAJOR], f"page magic {magic:#06x}, expected {PAGE_MAGIC[PG_MAJOR]:#06x}"

    # Fetched back, byte for byte, through the frontend path PostgreSQL's own tools use.
    out = make_pg_dir(work / "fetched")
    rc, o, e = ws.fetch(repo.root, name, out / name, pg.data, "--mode=recovery")
    assert rc == 0, describe(rc, o, e)
    assert (out / name).read_bytes() == segment


# The rows the rebuilt copies must have, exactly.
CONTENT = "SELECT count(*), md5(string_agg(id::text || ':' || v, ',' ORDER BY id)) FROM t"


def fill(pg, first, last):
    pg.sql(f"INSERT INTO t SELECT g, md5(g::text) FROM generate_series({first}, {last}) g")


def rebuilt_content(ws, repo, dest, sockdir, *opts):
    """Rebuild into dest, start it, and return CONTENT's row there."""
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, dest, *opts, "--start", f"--port={port}")
        assert rc == 0, describe(rc, out, err)
        return tuple(rows(sockdir, port, CONTENT)[0])
    finally:
        stop_server(dest)



def test_a_rebuilt_standby_streams_then_is_promoted_and_archives(ws, work, clusters, tmp):
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.sql("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
    fill(pg, 1, 100)
    take_backup(ws, repo.root, pg)
    standby = make_pg_dir(tmp / "standby", 0o700)
    port = free_port()
    app = "walship_matrix_standby"
    conninfo = f"host={pg.dir} port={pg.port} user=postgres application_name={app}"
    try:
        rc, out, err = rebuild(ws, repo, standby, "--standby", f"--primary-conninfo={conninfo}", "--start",
                               f"--port={port}")
        assert rc == 0 and "the standby is running" in out, describe(rc, out, err)
        wait_for(lambda: pg.sql("SELECT state FROM pg_stat_replication WHERE application_name = %s", (app,))
                 == [("streaming",)], 60, "the rebuilt standby does not stream")
        fill(pg, 101, 200)
        want = tuple(pg.sql(CONTENT)[0])
        wait_for(lambda: tuple(rows(pg.dir, port, CONTENT)[0]) == want, 30, "rows did not stream to the standby")

        # Promoted: timeline 2, its history file and WAL archived by the standby itself.
        check_run([PG_BIN / "pg_ctl", "-D", standby, "-w", "-t", "60", "promote"], timeout=90)
        wait_for(lambda: rows(pg.dir, port, "SELECT NOT pg_is_in_recovery()")[0][0], 60, "not promoted")
        name = rows(pg.dir, port, "SELECT pg_walfile_name(pg_switch_wal())")[0][0]
        assert name.startswith("00000002")
        wait_for(lambda: repo.key_path(name).is_file() and repo.key_path("00000002.history").is_file(), 60,
                 lambda: f"the promoted standby did not archive {name} and 00000002.history")
    finally:
        stop_server(standby)


def test_a_time_target_paused_and_an_xid_target_shut_down(ws, work, clusters, tmp):
    """The target actions beyond promote with other kinds of target than test_rebuild.py's (which
    pauses and shuts down at --target-immediate): the server of the major under test stops there."""
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.sql("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
    fill(pg, 1, 100)
    take_backup(ws, repo.root, pg)
    xid = pg.scalar("WITH x AS (INSERT INTO t SELECT g, md5(g::text) FROM generate_series(101, 200) g "
                    "RETURNING 1) SELECT txid_current()::text")
    want = tuple(pg.sql(CONTENT)[0])  # the same at the xid and at the time: nothing is written between
    time.sleep(1.1)
    target = pg.scalar("SELECT clock_timestamp()::text")
    time.sleep(1.1)
    fill(pg, 201, 300)
    last = pg.switch_wal()
    pg.wait_archived(last)

    paused = make_pg_dir(tmp / "paused", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, paused, f"--target-time={target}", "--target-action=pause", "--start",
                               f"--port={port}")
        assert rc == 0 and "recovery reached its target and is paused" in out, describe(rc, out, err)
        assert rows(pg.dir, port, "SELECT pg_is_in_recovery(), pg_is_wal_replay_paused()")[0] == (True, True)
        assert tuple(rows(pg.dir, port, CONTENT)[0]) == want
    finally:
        stop_server(paused)

    down = make_pg_dir(tmp / "down", 0o700)
    rc, out, err = rebuild(ws, repo, down, f"--target-xid={xid}", "--target-action=shutdown", "--start",
                           f"--port={free_port()}")
    try:
        assert rc == 0 and "the server shut down as asked" in out, describe(rc, out, err)
        assert not (down / "postmaster.pid").exists()
        log = (down / "walship-rebuild.log").read_text(errors="replace")
        assert f"recovery stopping after commit of transaction {xid}" in log, log[-3000:]
    finally:
        stop_server(down)

if PG_MAJOR >= 17:
    def test_a_server_that_summarizes_wal_is_backed_up_in_full(ws, work, clusters, tmp):
        pg, repo = archiving_cluster(ws, work, clusters, summarize_wal=True)
        pg.sql("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
        fill(pg, 1, 20000)
        last = pg.switch_wal()
        pg.wait_archived(last)
        wait_for(lambda: pg.scalar("SELECT count(*) FROM pg_available_wal_summaries()") > 0, 60,
                 lambda: "the server summarized no WAL although summarize_wal = on")

        bid = take_backup(ws, repo.root, pg)
        meta, contents = check_backup(repo, bid)
        with tarfile.open(fileobj=io.BytesIO(contents["base.tar"]), mode="r:") as t:
            names = t.getnames()
        manifest = json.loads(contents["backup_manifest"])
        incremental = [n for n in names + [f["Path"] for f in manifest["Files"]]
                       if os.path.basename(n).startswith("INCREMENTAL.")]
        assert not incremental, f"a full backup holds incremental files: {incremental[:5]}"
        assert any(n.startswith("base/") for n in names) and "global/pg_control" in names
        verify_with_pg_verifybackup(work, meta, contents)

        fill(pg, 20001, 20100)
        want = tuple(pg.sql(CONTENT)[0])
        last = pg.switch_wal()
        pg.wait_archived(last)
        assert rebuilt_content(ws, repo, make_pg_dir(tmp / "copy", 0o700), pg.dir) == want


def test_a_recovery_conf_era_data_directory(ws, work, clusters, tmp):
    """PostgreSQL 11's layout, made from this run's real cluster: what rebuild writes and what
    walship-fetch decides there.  No PostgreSQL 11 server runs here, so none starts on it."""
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.sql("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
    fill(pg, 1, 100)
    take_backup(ws, repo.root, pg)
    pg.sql("SELECT pg_create_restore_point('r1')")
    last = pg.switch_wal()
    pg.wait_archived(last)
    old = RepoView(copy_repo(repo.root, work / "pg11"))
    doctor_major(old.root, "11", 110022)

    # A recovery: recovery.conf with the command, the target and its action; no signal file.
    dest = tmp / "r11"
    rc, out, err = rebuild(ws, old, dest, "--target-name=r1", "--target-action=promote")
    assert rc == 0, describe(rc, out, err)
    assert "recovery.conf written" in out, out
    conf = (dest / "recovery.conf").read_text()
    for line in ("recovery_target_name = 'r1'", "recovery_target_action = 'promote'",
                 "recovery_target_timeline = "):
        assert line in conf, f"{line!r} not in recovery.conf:\n{conf}"
    assert "--mode=recovery" in conf and "standby_mode" not in conf, conf
    assert not (dest / "recovery.signal").exists() and not (dest / "standby.signal").exists()
    auto = (dest / "postgresql.auto.conf").read_text() if (dest / "postgresql.auto.conf").exists() else ""
    assert "restore_command" not in auto and "recovery_target" not in auto, auto

    # A standby: standby_mode = 'on' in recovery.conf.
    sdest = tmp / "s11"
    rc, out, err = rebuild(ws, old, sdest, "--standby")
    assert rc == 0, describe(rc, out, err)
    sconf = (sdest / "recovery.conf").read_text()
    assert "standby_mode = 'on'" in sconf and "--mode=standby" in sconf, sconf
    assert not (sdest / "standby.signal").exists()

    # walship-fetch's automatic mode in that layout (PG_VERSION 11, as 11's directory has it):
    # recovery.conf's standby_mode makes a standby (an error answers 1, so the standby retries);
    # without it, an error aborts recovery (200); a standby.signal of 12's world counts for nothing.
    name = last
    flip_byte(old.key_path(name), 100)
    for d, extra, standby, expected in ((dest, None, False, 200), (sdest, None, True, 1),
                                       (dest, "standby.signal", False, 200)):
        write_pg_file(d / "PG_VERSION", b"11\n")
        if extra:
            write_pg_file(d / extra, b"")
        rc, out, err = ws.fetch(old.root, name, "pg_wal/RECOVERYXLOG", d)
        assert rc == expected, f"{d.name} (standby={standby}, {extra}): " + describe(rc, out, err)
        assert not (d / "pg_wal" / "RECOVERYXLOG").exists()


UPGRADE_FROM = os.environ.get("WALSHIP_UPGRADE_FROM")

if UPGRADE_FROM:
    OLD_BIN = Path(f"/usr/lib/postgresql/{UPGRADE_FROM}/bin")

    def test_pg_upgrade_then_walship_upgrade(ws, work, clusters, tmp):
        old = clusters.new("old", bindir=OLD_BIN).initdb()
        repo = ws.init(work / "repo", old.data)
        old.configure(archive_mode=True, archive_command=ws.archive_command(repo.root))
        old.start()
        assert int(old.scalar("SHOW server_version_num")) // 10000 == int(UPGRADE_FROM)
        old.sql("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
        fill(old, 1, 1000)
        old_backup = take_backup(ws, repo.root, old)
        fill(old, 1001, 1100)
        old_content = tuple(old.sql(CONTENT)[0])
        last = old.switch_wal()
        old.wait_archived(last)
        old.stop()
        old_epoch = repo.epoch

        new = clusters.new("new").initdb()
        check_run([PG_BIN / "pg_upgrade", "-b", OLD_BIN, "-B", PG_BIN, "-d", old.data, "-D", new.data,
                   "-p", free_port(), "-P", free_port(), "-s", new.dir], cwd=new.dir, timeout=600)

        # Until walship upgrade, the upgraded cluster's pushes are refused; then they go to a new epoch.
        seg = sorted(p.name for p in (new.data / "pg_wal").iterdir() if len(p.name) == 24)[-1]
        rc, out, err = ws.push(repo.root, f"pg_wal/{seg}", seg, new.data)
        assert rc == 1 and "another cluster" in err, describe(rc, out, err)
        rc, out, err = run([ws.walship, f"--config={ws.config}", "upgrade", f"--repo={repo.root}",
                            f"--pgdata={new.data}"], cwd=ws.work)
        assert rc == 0, describe(rc, out, err)
        new_epoch = repo.epoch
        assert new_epoch != old_epoch and new_epoch.startswith(f"{PG_MAJOR}-"), (old_epoch, new_epoch)
        assert f'added epoch "{new_epoch}"' in out, out

        new.configure(archive_mode=True, archive_command=ws.archive_command(repo.root))
        new.start()
        assert tuple(new.sql(CONTENT)[0]) == old_content, "pg_upgrade lost rows"
        fill(new, 1101, 1200)
        new_content = tuple(new.sql(CONTENT)[0])
        take_backup(ws, repo.root, new)
        last = new.switch_wal()
        new.wait_archived(last)
        assert repo.key_path(last, epoch=new_epoch).is_file()

        # The old epoch's backup, with the old major's server; the newest, with this major's.
        assert rebuilt_content(ws, repo, make_pg_dir(tmp / "old-copy", 0o700), old.dir,
                               f"--backup={old_backup}") == old_content
        assert rebuilt_content(ws, repo, make_pg_dir(tmp / "new-copy", 0o700), new.dir) == new_content

