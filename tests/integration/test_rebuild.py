"""walship rebuild against a real PostgreSQL (15 here, 13 and 17 in tests/matrix/run): a backup plus archived WAL
recreated into a fresh data directory and started to each kind of recovery
target (time, LSN, xid, restore point, immediate, latest), with exactly the
rows committed up to the target; and the refusals that must leave the data
directory untouched (unreachable targets, a missing WAL file, a non-empty or
live data directory), and --dry-run."""

import json
import os
import re
import time

from pgcluster import (
    PG_BIN,
    PG_MAJOR,
    chown_pg,
    describe,
    free_port,
    make_pg_dir,
    popen,
    run,
    tree_listing,
    wait_for,
)
from test_backup import archiving_cluster, backup, lsn

import psycopg


def rebuild(ws, repo, pgdata, *opts, timeout=180):
    """walship rebuild, run as root when the tests are (files then go to the data directory's owner)."""
    cmd = [ws.walship, f"--config={ws.config}", "rebuild", f"--repo={repo.root}", f"--pgdata={pgdata}", *opts]
    return run(cmd, cwd=ws.work, user=None, timeout=timeout)


def stop_server(pgdata):
    if (pgdata / "postmaster.pid").exists():
        run([PG_BIN / "pg_ctl", "-D", pgdata, "-m", "immediate", "-w", "-t", "60", "stop"], timeout=90)


def rows(sockdir, port, query):
    with psycopg.connect(host=str(sockdir), port=port, user="postgres", dbname="postgres", autocommit=True,
                         connect_timeout=10) as conn:
        return conn.execute(query).fetchall()


class Marks:
    """Marker rows committed under pgbench, with what the primary held at each point."""

    def __init__(self):
        self.xid = {}  # marker -> xid of its transaction
        self.count_at_xid = {}  # pgbench_history rows when that transaction committed
        self.lsn = {}  # marker -> an LSN after it (and before the next commit)
        self.time = {}  # marker -> a server time after it
        self.count = {}  # pgbench_history rows at that LSN / time / restore point


def make_marks(pg, n=3):
    m = Marks()
    with pg.connect() as conn:
        for i in range(1, n + 1):
            # The SHARE lock stops every pgbench transaction at its history insert (its
            # last statement), so no commit lands between the count and what follows.
            with conn.transaction():
                conn.execute("LOCK TABLE pgbench_history IN SHARE MODE")
                m.count_at_xid[i] = conn.execute("SELECT count(*) FROM pgbench_history").fetchone()[0]
                conn.execute("INSERT INTO marker VALUES (%s, clock_timestamp())", (i,))
                m.xid[i] = conn.execute("SELECT txid_current()").fetchone()[0]
            with conn.transaction():
                conn.execute("LOCK TABLE pgbench_history IN SHARE MODE")
                m.count[i] = conn.execute("SELECT count(*) FROM pgbench_history").fetchone()[0]
                conn.execute("SELECT pg_create_restore_point(%s)", (f"after-{i}",))
                m.lsn[i] = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
                m.time[i] = conn.execute("SELECT clock_timestamp()::text").fetchone()[0]
                conn.execute("SELECT pg_sleep(0.2)")
            time.sleep(1)
    return m


def check_rebuilt(pg, pgdata, port, want_markers, want_count, what):
    got = [r[0] for r in rows(pg.dir, port, "SELECT id FROM marker ORDER BY id")]
    count = rows(pg.dir, port, "SELECT count(*) FROM pgbench_history")[0][0]
    assert got == want_markers, f"{what}: markers {got}, expected {want_markers}"
    assert count == want_count, f"{what}: pgbench_history has {count} rows, the primary had {want_count}"
    auto = (pgdata / "postgresql.auto.conf").read_text()
    assert not re.search(r"^\s*recovery_target", auto, re.M), f"{what}: target left in postgresql.auto.conf:\n{auto}"


def test_rebuild_to_each_kind_of_target(ws, work, clusters, tmp):
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.sql("CREATE TABLE marker (id int PRIMARY KEY, at timestamptz NOT NULL)")
    pg.pgbench("-i", "-s", "1", "-q")
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)

    bench = popen([PG_BIN / "pgbench", "-h", pg.dir, "-p", pg.port, "-U", "postgres", "-c", "2", "-j", "2",
                   "-T", "6", "postgres"], stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
    try:
        wait_for(lambda: pg.scalar("SELECT count(*) FROM pgbench_history") > 0, 30, "pgbench did not start")
        marks = make_marks(pg)
    finally:
        bench.wait(timeout=60)
    final_count = pg.scalar("SELECT count(*) FROM pgbench_history")
    assert final_count > marks.count[3], "pgbench did not write after the last marker"
    assert marks.count[1] > 0, "pgbench did not write before the first marker"
    last = pg.switch_wal()
    pg.wait_archived(last)

    cases = [
        ("time", [f"--target-time={marks.time[2]}"], [1, 2], marks.count[2]),
        ("lsn", [f"--target-lsn={marks.lsn[1]}"], [1], marks.count[1]),
        ("xid", [f"--target-xid={marks.xid[3]}"], [1, 2, 3], marks.count_at_xid[3]),
        ("name", ["--target-name=after-2"], [1, 2], marks.count[2]),
        ("immediate", ["--target-immediate"], [], 0),
        ("latest", [], [1, 2, 3], final_count),
    ]
    for kind, opts, want_markers, want_count in cases:
        dest = make_pg_dir(tmp / f"r-{kind}", 0o700)
        port = free_port()
        action = ["--target-action=promote"] if opts else []
        try:
            rc, out, err = rebuild(ws, repo, dest, *opts, *action, "--start", f"--port={port}")
            assert rc == 0, f"{kind}: " + describe(rc, out, err)
            assert "server was promoted" in out, f"{kind}: " + describe(rc, out, err)
            st = os.stat(dest / "global" / "pg_control")
            assert st.st_uid == os.stat(dest).st_uid and (os.stat(dest).st_mode & 0o777) == 0o700
            auto = (dest / "postgresql.auto.conf").read_text()
            assert "archive_mode = 'off'" in auto and "--mode=recovery" in auto, auto
            check_rebuilt(pg, dest, port, want_markers, want_count, kind)
        finally:
            stop_server(dest)


def test_rebuild_refusals_and_dry_run(ws, work, clusters, tmp):
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.sql("CREATE TABLE marker (id int PRIMARY KEY, at timestamptz NOT NULL)")
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    meta = json.loads(next((repo.root / repo.epoch / "backups").glob("*/manifest.json")).read_text())
    meta_stop = meta["stop_lsn"]
    names = [pg.switch_wal() for _ in range(3)]
    pg.wait_archived(names[-1])
    dest = tmp / "never"

    def refused(opts, words, code=None):
        rc, out, err = rebuild(ws, repo, dest, *opts)
        assert rc != 0 and (code is None or rc == code), f"{opts}: " + describe(rc, out, err)
        assert words in err, f"{opts}: expected {words!r}\n" + describe(rc, out, err)
        assert not dest.exists(), f"{opts}: the data directory was created"

    refused(["--target-lsn=0/100"], "no backup ends before the recovery target", 2)
    refused([f"--backup={meta['id']}", "--target-lsn=0/100"], f'is before the end of backup "{meta["id"]}"', 2)
    refused(["--target-lsn=FF/0"], "is past the end of the WAL in the repository")
    refused(["--target-time=2000-01-01 00:00:00+00"], "no backup ends before the recovery target", 2)
    refused(["--target-time=2030-01-01 00:00:00"], "has no time zone", 2)
    refused(["--target-timeline=7"], "timeline 7 is not in the repository", 2)
    refused(["--target-action=promote"], "--target-action needs a recovery target", 2)

    # --dry-run: the plan, and nothing written.
    rc, out, err = rebuild(ws, repo, dest, f"--target-lsn={meta_stop}", "--dry-run")
    assert rc == 0, describe(rc, out, err)
    assert re.search(r"^backup: \d{8}T\d{6}Z", out, re.M) and "timeline: 1" in out, out
    assert re.search(r"^wal: 0000000100000000000000[0-9A-F]{2} to ", out, re.M), out
    assert "dry run: nothing was written" in out and not dest.exists(), out

    # A non-empty directory without --force, and a live postmaster.pid even with it.
    used = make_pg_dir(tmp / "used", 0o700)
    (used / "keep").write_text("x")
    before = tree_listing(used)
    rc, out, err = rebuild(ws, repo, used)
    assert rc == 1 and "is not empty" in err and "--force" in err, describe(rc, out, err)
    (used / "postmaster.pid").write_text(f"{os.getpid()}\n{used}\n")
    before = tree_listing(used)
    rc, out, err = rebuild(ws, repo, used, "--force")
    assert rc == 1 and "a server is running" in err, describe(rc, out, err)
    assert tree_listing(used) == before

    # --force replaces the contents, removing a symbolic link without following it.
    (used / "postmaster.pid").unlink()
    outside = make_pg_dir(tmp / "outside", 0o755)
    (outside / "precious").write_text("keep me")
    os.makedirs(used / "pg_tblspc", exist_ok=True)
    os.symlink(outside, used / "pg_tblspc" / "16999")
    rc, out, err = rebuild(ws, repo, used, "--force")
    assert rc == 0, describe(rc, out, err)
    assert (outside / "precious").read_text() == "keep me"
    assert not (used / "keep").exists() and (used / "global" / "pg_control").is_file()
    assert (used / "recovery.signal").is_file() and (used / "pg_wal" / "archive_status").is_dir()

    # Started: a target past the archive's end fails with PostgreSQL's reason and the log's last lines;
    # pause and shutdown are waited for and reported; a standby runs.
    for name, opts, code, words in [
        ("future", ["--target-time=2099-01-01 00:00:00+00", "--target-action=promote"], 1,
         "recovery ended before the target was reached"),
        ("pause", ["--target-immediate"], 0, "recovery reached its target and is paused"),
        ("shutdown", ["--target-immediate", "--target-action=shutdown"], 0, "the server shut down as asked"),
        ("standby", ["--standby"], 0, "the standby is running"),
    ]:
        d = make_pg_dir(tmp / f"s-{name}", 0o700)
        try:
            rc, out, err = rebuild(ws, repo, d, *opts, "--start", f"--port={free_port()}")
            assert rc == code and words in (out if code == 0 else err), f"{name}: " + describe(rc, out, err)
            if code != 0:
                assert "recovery ended before configured recovery target was reached" in err, err
            if name == "standby":
                assert (d / "standby.signal").is_file() and "--mode=standby" in (d / "postgresql.auto.conf").read_text()
                assert "archive_mode" not in (d / "postgresql.auto.conf").read_text()
        finally:
            stop_server(d)

    # A WAL file missing in the middle: latest and a target past it are refused.
    hole = names[1]
    repo.key_path(hole).unlink()
    refused([], f'WAL file "{hole}" is missing')
    refused([f"--target-lsn={lsn_text(lsn(meta_stop) + 3 * 16 * 1024 * 1024)}"], f'"{hole}" is missing')


def lsn_text(v):
    return f"{v >> 32:X}/{v & 0xFFFFFFFF:X}"


def test_rebuild_follows_a_new_timeline_or_stays_before_it(ws, work, clusters, tmp):
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.sql("CREATE TABLE marker (id int PRIMARY KEY, at timestamptz NOT NULL)")
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    pg.sql("INSERT INTO marker VALUES (1, clock_timestamp())")
    time.sleep(1)
    before = pg.scalar("SELECT clock_timestamp()::text")
    time.sleep(1)
    pg.sql("INSERT INTO marker VALUES (2, clock_timestamp())")
    last = pg.switch_wal()
    pg.wait_archived(last)

    # A promoted copy that keeps archiving: timeline 2 goes into the same repository.
    copy = make_pg_dir(tmp / "copy", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, copy, "--archive=keep", "--start", f"--port={port}")
        assert rc == 0 and "on timeline 2" in out, describe(rc, out, err)
        assert "archive_mode" not in (copy / "postgresql.auto.conf").read_text()
        with psycopg.connect(host=str(pg.dir), port=port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute("INSERT INTO marker VALUES (3, clock_timestamp())")
            name = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
            assert name.startswith("00000002"), name
            wait_for(lambda: (conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or "")
                     >= name, 60, "the copy did not archive timeline 2")
    finally:
        stop_server(copy)
    assert repo.key_path("00000002.history").is_file()

    for kind, opts, want, words in [
        ("latest", [], [1, 2, 3], "timeline: 2 (latest)"),
        ("before", [f"--target-time={before}", "--target-action=promote"], [1], "timeline: 2 (latest)"),
        ("tl1", ["--target-timeline=1", "--target-action=promote", f"--target-time={before}"], [1], "timeline: 1\n"),
    ]:
        dest = make_pg_dir(tmp / f"t-{kind}", 0o700)
        port = free_port()
        try:
            rc, out, err = rebuild(ws, repo, dest, *opts, "--start", f"--port={port}")
            assert rc == 0 and words in out, f"{kind}: " + describe(rc, out, err)
            got = [r[0] for r in rows(pg.dir, port, "SELECT id FROM marker ORDER BY id")]
            assert got == want, f"{kind}: markers {got}, expected {want}\n{out}"
        finally:
            stop_server(dest)


def test_rebuild_remaps_a_tablespace_and_leaves_the_original_alone(ws, work, clusters, tmp):
    pg, repo = archiving_cluster(ws, work, clusters)
    tsdir = make_pg_dir(work / "ts1", 0o700)
    pg.sql(f"CREATE TABLESPACE ts1 LOCATION '{tsdir}'")
    pg.sql("CREATE TABLE in_ts TABLESPACE ts1 AS SELECT g FROM generate_series(1, 5000) g")
    oid = pg.scalar("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    pg.sql("INSERT INTO in_ts SELECT g FROM generate_series(5001, 6000) g")
    last = pg.switch_wal()
    pg.wait_archived(last)
    pg.stop()  # a checkpoint would change the original files, not rebuild
    original = tree_listing(tsdir)

    # The original location is the live cluster's: refused, nothing written.
    dest = tmp / "ts-copy"
    rc, out, err = rebuild(ws, repo, dest)
    assert rc == 1 and f'tablespace directory "{tsdir}" (OID {oid}) is not empty' in err, describe(rc, out, err)
    assert "--tablespace-map" in err and not dest.exists()

    newts = tmp / "ts-new"
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, dest, f"--tablespace-map={oid}={newts}", "--start", f"--port={port}")
        assert rc == 0, describe(rc, out, err)
        # PostgreSQL made the link from tablespace_map, then renamed it to tablespace_map.old.
        assert (dest / "tablespace_map.old").read_text() == f"{oid} {newts}\n"
        assert os.readlink(dest / "pg_tblspc" / str(oid)) == str(newts)
        assert rows(pg.dir, port, "SELECT count(*), max(g) FROM in_ts")[0] == (6000, 6000)
        assert rows(pg.dir, port, f"SELECT pg_tablespace_location({oid})")[0][0] == str(newts)
        assert any(p.name.startswith(f"PG_{PG_MAJOR}_") for p in newts.iterdir())
    finally:
        stop_server(dest)
    assert tree_listing(tsdir) == original, "the original tablespace directory changed"


def test_rebuild_refuses_a_corrupted_backup_object(ws, work, clusters, tmp):
    """A changed byte in base.tar's object: rebuild fails naming the object, and the data
    directory is never left looking complete (global/pg_control is written last)."""
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.pgbench("-i", "-s", "1", "-q")
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    obj = next((repo.root / repo.epoch / "backups").glob("*/base.tar"))
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x01
    obj.write_bytes(bytes(data))

    dest = tmp / "corrupt"
    rc, out, err = rebuild(ws, repo, dest)
    assert rc == 1, describe(rc, out, err)
    assert "base.tar" in err and ("corrupt" in err or "mismatch" in err), describe(rc, out, err)
    assert not (dest / "global" / "pg_control").exists(), "a half-rebuilt directory must not be startable"
