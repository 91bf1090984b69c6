"""walship prune against real PostgreSQL (15 here, 13 and 17 in tests/matrix/run): backups on two timelines while
the parent timeline goes on being written (a promoted copy archives timeline
2 into the same repository, the old primary keeps archiving timeline 1);
prune with --keep-backups and --keep-days removes exactly the older backups
and the WAL no kept backup needs, and every kept backup still rebuilds to the
end of its window with the rows of that moment; --dry-run removes nothing and
names the same set; the lock keeps a prune and a backup apart; the refusals
(no complete backup, an unreadable manifest) remove nothing; a missing
.history keeps its timeline's WAL; prune killed with SIGKILL at random
moments leaves a repository whose listed backups are whole and that the next
prune finishes; and the same on S3."""

import json
import os
import random
import re
import shutil
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from pgcluster import (
    chown_pg,
    describe,
    free_port,
    make_pg_dir,
    popen,
    run,
    wait_for,
    write_pg_file,
    zstd_decompress,
)
from test_backup import archiving_cluster, backup
from test_rebuild import rebuild, stop_server

TRIALS = 30
SEED = int(os.environ.get("WALSHIP_TEST_SEED") or random.randrange(1 << 30))
ROWS = "SELECT src, id FROM ev ORDER BY src, id"
# A killed prune's lock on "another machine" expires after this (test-only setting of lock.c).
TEST_ENV = {"WALSHIP_TEST_LOCK_EXPIRY": "2"}


def prune(ws, repo_root, *opts, env=None, config=None):
    cmd = [ws.walship, f"--config={config or ws.config}", "prune", f"--repo={repo_root}", *opts]
    return run(cmd, cwd=ws.work, env={**TEST_ENV, **(env or {})}, timeout=120)


def walship_cmd(ws, repo_root, *args):
    return run([ws.walship, f"--config={ws.config}", *args, f"--repo={repo_root}"], cwd=ws.work, env=TEST_ENV)


def rows_at(host, port):
    with psycopg.connect(host=str(host), port=port, user="postgres", dbname="postgres", autocommit=True,
                         connect_timeout=10) as conn:
        return conn.execute(ROWS).fetchall()


def take_backup(ws, root, pg=None, dsn=None):
    rc, out, err = backup(ws, root, pg, dsn=dsn)
    assert rc == 0, describe(rc, out, err)
    m = re.search(r'backup "([^"]+)" complete', out)
    assert m, out
    return m.group(1)


def age_backup(repo, bid, days):
    """Make a backup look as if taken `days` ago (manifest.json is plain JSON on local disk)."""
    path = repo.root / repo.epoch / "backups" / bid / "manifest.json"
    meta = json.loads(path.read_text())
    t = (datetime.now(timezone.utc) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta["start_time"] = meta["stop_time"] = t
    path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def manifest(root, epoch, bid):
    return json.loads((Path(root) / epoch / "backups" / bid / "manifest.json").read_text())


def copy_repo(src, dst):
    """A copy of a local repository owned by postgres, object mtimes kept."""
    shutil.copytree(src, dst)
    chown_pg(dst, recursive=True)
    return dst


def seg_no(name):
    return int(name[8:16], 16) * 256 + int(name[16:24], 16)


def wal_segments(root, epoch):
    """{(tli, segno)} of every segment file under <epoch>/wal/ of a local repository."""
    out = set()
    for p in (Path(root) / epoch / "wal").glob("*/*"):
        if re.fullmatch(r"[0-9A-F]{24}", p.name):
            out.add((int(p.name[:8], 16), seg_no(p.name)))
    return out


def files(root):
    out = set()
    for dirpath, _, names in os.walk(root):
        for n in names:
            if not n.startswith("."):
                out.add(os.path.relpath(os.path.join(dirpath, n), root))
    return out


def check_listed_backups_whole(ws, root):
    """Every backup walship list shows has its objects and the WAL from start_wal to stop_wal."""
    rc, out, err = walship_cmd(ws, root, "list", "--json")
    assert rc == 0, describe(rc, out, err)
    listing = json.loads(out)
    ids = []
    for ep in listing["epochs"]:
        segs = wal_segments(root, ep["id"])
        for b in ep["backups"]:
            ids.append(b["id"])
            bdir = Path(root) / ep["id"] / "backups" / b["id"]
            objs = [t["object"] for t in b["tablespaces"]]
            if b.get("backup_manifest"):
                objs.append(b["backup_manifest"]["object"])
            for o in objs:
                assert (bdir / o).is_file(), f"listed backup {b['id']} lacks {o}"
            tli = b["timeline"]
            for n in range(seg_no(b["start_wal"]), seg_no(b["stop_wal"]) + 1):
                assert (tli, n) in segs, f"listed backup {b['id']} lacks WAL segment {n:X} of timeline {tli}"
        for w in ep["timelines"]:
            assert not w["unusable_backups"], f"unusable backups in the listing: {w}"
    return ids


def verify_if_written(ws, root, after_kill=False):
    """walship verify finds nothing wrong; after a kill, at most the remains of a backup whose
    manifest.json was removed first (no longer offered: the next prune removes the rest)."""
    rc, out, err = walship_cmd(ws, root, "verify")
    if rc == 1 and "not written yet" in err:
        return  # the command is still a placeholder
    if after_kill and rc == 3:
        problems = [line for line in err.splitlines() if line.startswith("walship: problem:")]
        assert problems and all("has no manifest.json" in p for p in problems), describe(rc, out, err)
        return
    assert rc == 0, describe(rc, out, err)


def rebuild_and_compare(ws, repo, tmp, name, bid, want, *opts, host):
    dest = make_pg_dir(tmp / f"rb-{name}", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, dest, f"--backup={bid}", *opts, "--start", f"--port={port}")
        assert rc == 0 and "server was promoted" in out, f"{name}: " + describe(rc, out, err)
        got = rows_at(host, port)
        assert got == want, f"{name}: rebuilt rows differ ({len(got)} rows, expected {len(want)})"
    finally:
        stop_server(dest)
    shutil.rmtree(dest, ignore_errors=True)


class State:
    pass


def build_two_timelines(ws, work, clusters, tmp):
    """B1, B2 on timeline 1; a copy promoted to timeline 2 from the archive (B3 on it); the old
    primary keeps writing timeline 1 (B4 on it after the fork); WAL in between everywhere."""
    s = State()
    pg, repo = archiving_cluster(ws, work, clusters)
    s.pg, s.repo = pg, repo
    pg.sql("CREATE TABLE ev (src text, id int, PRIMARY KEY (src, id))")

    def primary_rows(a, b):
        pg.sql(f"INSERT INTO ev SELECT 'p', g FROM generate_series({a}, {b}) g")
        return pg.switch_wal()

    primary_rows(1, 10)
    s.b1 = take_backup(ws, repo.root, pg)
    # Enough WAL before B2 that a prune has real work to be killed in.
    for i in range(25):
        primary_rows(100 + i * 2, 101 + i * 2)
    s.b2 = take_backup(ws, repo.root, pg)
    last = primary_rows(31, 40)
    pg.wait_archived(last)

    # Timeline 2: a copy rebuilt from the archive, promoted, archiving into the same repository.
    s.copy = make_pg_dir(tmp / "copy", 0o700)
    s.copy_port = free_port()
    rc, out, err = rebuild(ws, repo, s.copy, "--archive=keep", "--start", f"--port={s.copy_port}")
    assert rc == 0 and "on timeline 2" in out, describe(rc, out, err)
    dsn = f"host={pg.dir} port={s.copy_port} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        def copy_rows(a, b):
            conn.execute(f"INSERT INTO ev SELECT 'c', g FROM generate_series({a}, {b}) g")
            return conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]

        copy_rows(1, 10)
        s.b3 = take_backup(ws, repo.root, dsn=dsn)
        copy_rows(11, 20)
        name = copy_rows(21, 30)
        wait_for(lambda: (conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or "")
                 >= name, 60, "the copy did not archive timeline 2")

    # The parent timeline goes on.
    primary_rows(41, 50)
    s.b4 = take_backup(ws, repo.root, pg)
    primary_rows(51, 60)
    last = primary_rows(61, 70)
    pg.wait_archived(last)
    s.primary_rows = rows_at(pg.dir, pg.port)
    s.copy_rows = rows_at(pg.dir, s.copy_port)
    assert repo.key_path("00000002.history").is_file()

    # Ten, six, four and two days old: with --keep-days=5, B1 goes, B2 stays as the newest before the window.
    for bid, days in [(s.b1, 10), (s.b2, 6), (s.b3, 4), (s.b4, 2)]:
        age_backup(repo, bid, days)
    return s


def test_prune_two_timelines_dry_run_lock_and_kills(ws, work, clusters, tmp):
    t0 = time.monotonic()
    s = build_two_timelines(ws, work, clusters, tmp)
    repo, pg = s.repo, s.pg
    epoch = repo.epoch
    try:
        t_built = time.monotonic()
        pristine = copy_repo(repo.root, work / "pristine")
        before = files(repo.root)
        m = {b: manifest(repo.root, epoch, b) for b in (s.b1, s.b2, s.b3, s.b4)}
        hist = zstd_decompress(repo.key_path("00000002.history")).decode().split()
        fork_hi, fork_lo = hist[1].split("/")
        fork = ((int(fork_hi, 16) << 32) | int(fork_lo, 16)) // (16 << 20)

        # A lock held by a live process elsewhere: prune and backup both refuse, nothing changes.
        now = int(time.time())
        lock = {"purpose": "backup", "host": "elsewhere.example", "pid": 4242, "token": "f" * 32,
                "started": now, "started_at": "2026-11-25T12:00:00Z", "heartbeat": now, "heartbeat_at": ""}
        write_pg_file(repo.root / "walship.lock", json.dumps(lock).encode(), 0o640)
        rc, out, err = prune(ws, repo.root, "--keep-backups=1", env={"WALSHIP_TEST_LOCK_EXPIRY": "300"})
        assert rc == 1 and "is locked by walship backup on elsewhere.example (pid 4242)" in err, \
            describe(rc, out, err)
        rc, out, err = backup(ws, repo.root, pg)
        assert rc == 1 and "is locked by walship backup on elsewhere.example" in err, describe(rc, out, err)
        (repo.root / "walship.lock").unlink()
        assert files(repo.root) == before

        # --dry-run: the plan, nothing removed.
        opts = ["--keep-backups=1", "--keep-days=5"]
        rc, out, err = prune(ws, repo.root, *opts, "--dry-run", "--json")
        assert rc == 0, describe(rc, out, err)
        dry = json.loads(out)
        assert files(repo.root) == before, "--dry-run removed something"
        assert dry["dry_run"] is True and dry["backups_removed"] == [s.b1], dry
        assert sorted(dry["kept_backups"]) == sorted([s.b2, s.b3, s.b4]), dry
        assert dry["wal_removed"] > 0 and dry["bytes_freed"] > 0, dry
        print(f"prune plan: {dry}")
        rc, out, err = prune(ws, repo.root, *opts, "--dry-run")
        assert rc == 0 and out.startswith(f"would remove 1 backup ({s.b1}), {dry['wal_removed']} WAL files"), out

        # The real thing: the same set.
        rc, out, err = prune(ws, repo.root, *opts, "--json")
        assert rc == 0, describe(rc, out, err)
        done = json.loads(out)
        assert done["dry_run"] is False
        for k in ("backups_removed", "wal_removed", "bytes_freed", "kept_backups"):
            assert done[k] == dry[k], f"{k}: dry run said {dry[k]}, prune did {done[k]}"
        after = files(repo.root)
        assert "walship.lock" not in after
        assert not any(f.startswith(f"{epoch}/backups/{s.b1}/") for f in after)
        for b in (s.b2, s.b3, s.b4):
            assert f"{epoch}/backups/{b}/manifest.json" in after
        assert f"{epoch}/wal/00000002.history" in after
        segs = wal_segments(repo.root, epoch)
        b2_start = seg_no(m[s.b2]["start_wal"])
        assert not any(tli == 1 and n < b2_start for tli, n in segs), "timeline 1 WAL before B2 remains"
        assert all((1, n) in segs for n in range(b2_start, max(n for t, n in segs if t == 1) + 1))
        assert all((2, n) in segs for n in range(fork, max(n for t, n in segs if t == 2) + 1))
        removed = (before - after)
        assert len([f for f in removed if "/wal/" in f]) == done["wal_removed"]
        reference = after

        # Quiet: nothing printed; a second run removes nothing.
        rc, out, err = prune(ws, repo.root, *opts, "-q")
        assert rc == 0 and out == "" and err == "", describe(rc, out, err)
        assert files(repo.root) == reference
        check_listed_backups_whole(ws, repo.root)
        verify_if_written(ws, repo.root)
        t_pruned = time.monotonic()

        # Every kept backup still rebuilds to the end of its window: B2 along both timelines.
        rebuild_and_compare(ws, repo, tmp, "b2-tl1", s.b2, s.primary_rows, "--target-timeline=1", host=pg.dir)
        rebuild_and_compare(ws, repo, tmp, "b2-tl2", s.b2, s.copy_rows, host=pg.dir)
        rebuild_and_compare(ws, repo, tmp, "b3", s.b3, s.copy_rows, host=pg.dir)
        rebuild_and_compare(ws, repo, tmp, "b4", s.b4, s.primary_rows, "--target-timeline=1", host=pg.dir)
        t_rebuilt = time.monotonic()

        # Kills at random moments, each on a fresh copy of the repository before the prune.
        # prune.c's test-only pause before each removal stretches the removals over most of the run.
        kill_env = {**TEST_ENV, "WALSHIP_TEST_PRUNE_STEP_DELAY": "3000"}
        timing = copy_repo(pristine, work / "timing")
        started = time.monotonic()
        proc = popen([ws.walship, f"--config={ws.config}", "prune", f"--repo={timing}", *opts], env=kill_env,
                     stdout=open(os.devnull, "w"))
        assert proc.wait(timeout=60) == 0
        prune_time = time.monotonic() - started
        assert files(timing) == reference
        shutil.rmtree(timing)
        rng = random.Random(SEED)
        print(f"prune kill trials: WALSHIP_TEST_SEED={SEED}, full prune {prune_time:.3f} s")
        killed_early = midway = 0
        for trial in range(TRIALS):
            root = copy_repo(pristine, work / f"trial-{trial}")
            delay = rng.uniform(0, prune_time)
            proc = popen([ws.walship, f"--config={ws.config}", "prune", f"--repo={root}", *opts],
                         env=kill_env, stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            killed_early += proc.returncode == -signal.SIGKILL
            msg = f"trial {trial} (seed {SEED}, kill after {delay:.3f} s)"
            state = files(root) - {"walship.lock"}
            midway += state != files(pristine) and state != reference
            ids = check_listed_backups_whole(ws, root)
            assert {s.b2, s.b3, s.b4} <= set(ids), f"{msg}: a kept backup vanished: {ids}"
            verify_if_written(ws, root, after_kill=True)
            rc, out, err = prune(ws, root, *opts)
            assert rc == 0, f"{msg}: " + describe(rc, out, err)
            assert files(root) == reference, f"{msg}: the finishing prune left {files(root) ^ reference}"
            verify_if_written(ws, root)
            if trial != TRIALS // 2:
                shutil.rmtree(root)
        print(f"prune kill trials: {killed_early} killed, {midway} of them with part of the work done")
        assert midway >= TRIALS // 3, f"only {midway} of {TRIALS} kills landed while objects were being removed"

        # One killed-and-finished repository: every kept backup rebuilds from it.
        kept = State()
        kept.root = work / f"trial-{TRIALS // 2}"
        view = type(repo)(kept.root)
        rebuild_and_compare(ws, view, tmp, "k-b2", s.b2, s.primary_rows, "--target-timeline=1", host=pg.dir)
        rebuild_and_compare(ws, view, tmp, "k-b3", s.b3, s.copy_rows, host=pg.dir)
        rebuild_and_compare(ws, view, tmp, "k-b4", s.b4, s.primary_rows, "--target-timeline=1", host=pg.dir)
        t_killed = time.monotonic()

        # --keep-backups=1: only B4 (on the parent after the fork): timeline 2 has nothing left to serve.
        rc, out, err = prune(ws, repo.root, "--keep-backups=1")
        assert rc == 0 and out.startswith("removed 2 backups ("), describe(rc, out, err)
        segs = wal_segments(repo.root, epoch)
        b4_start = seg_no(m[s.b4]["start_wal"])
        assert not any(t == 2 for t, _ in segs), "timeline 2 WAL remains with no backup reaching it"
        assert not any(t == 1 and n < b4_start for t, n in segs)
        assert repo.key_path("00000002.history").is_file(), "a .history file was removed"
        assert sorted(p.name for p in (repo.root / epoch / "backups").iterdir() if any(p.iterdir())) == [s.b4]
        rebuild_and_compare(ws, repo, tmp, "only-b4", s.b4, s.primary_rows, "--target-timeline=1", host=pg.dir)
        print(f"timings: build {t_built - t0:.1f} s, prune checks {t_pruned - t_built:.1f} s, "
              f"rebuilds {t_rebuilt - t_pruned:.1f} s, kill trials {t_killed - t_rebuilt:.1f} s, "
              f"last {time.monotonic() - t_killed:.1f} s")

        # Refusals on copies of the original state: an unreadable manifest, and a missing .history.
        bad = copy_repo(pristine, work / "bad-manifest")
        (bad / epoch / "backups" / s.b3 / "manifest.json").write_text("{not json")
        snapshot = files(bad)
        rc, out, err = prune(ws, bad, *opts)
        assert rc == 1 and "could not be read" in err and "Nothing was removed" in err, describe(rc, out, err)
        assert files(bad) == snapshot

        # --min-wal-age: all this WAL is minutes old, so a day keeps all of it; the backup still goes.
        young = copy_repo(pristine, work / "min-wal-age")
        segs_before = wal_segments(young, epoch)
        rc, out, err = prune(ws, young, *opts, "--min-wal-age=1d", "--json")
        assert rc == 0 and json.loads(out)["wal_removed"] == 0, describe(rc, out, err)
        assert json.loads(out)["backups_removed"] == [s.b1] and wal_segments(young, epoch) == segs_before

        nohist = copy_repo(pristine, work / "no-history")
        (nohist / epoch / "wal" / "00000002.history").unlink()
        tl2_before = {x for x in wal_segments(nohist, epoch) if x[0] == 2}
        rc, out, err = prune(ws, nohist, "--keep-backups=1")
        assert rc == 0, describe(rc, out, err)
        assert {x for x in wal_segments(nohist, epoch) if x[0] == 2} == tl2_before, \
            "WAL of a timeline without its .history was removed"
    finally:
        stop_server(s.copy)


def test_prune_refuses_a_repository_without_backups(ws, work, repo, datadir):
    before = files(repo.root)
    rc, out, err = prune(ws, repo.root, "--keep-backups=1")
    assert rc == 1 and "holds no complete backup" in err and "walship backup" in err, describe(rc, out, err)
    assert files(repo.root) == before
    for bad in (["--keep-backups=0"], [], ["--keep-backups=1", "--min-wal-age=5x"],
                ["--keep-backups=1", "--keep-days=-1"], ["--keep-backups=1", "--full"]):
        rc, out, err = prune(ws, repo.root, *bad)
        assert rc == 2, f"{bad}: " + describe(rc, out, err)
    rc, out, err = prune(ws, repo.root, "--keep-backups=1", "--min-wal-age=2h")
    assert rc == 1 and "holds no complete backup" in err, describe(rc, out, err)


def test_prune_on_s3(ws, work, clusters, tmp, s3server, s3bucket):
    prefix = "pr"
    url = s3server.url(s3bucket, prefix)
    write_pg_file(ws.config, s3server.config_text(s3bucket, prefix).encode() + b"\n", 0o600)
    client = s3server.boto3_client()

    def keys():
        out = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3bucket, Prefix=f"{prefix}/"):
            out.extend(o["Key"][len(prefix) + 1:] for o in page.get("Contents", []))
        return set(out)

    pg = clusters.new("primary").initdb()
    rc, out, err = run([ws.walship, f"--config={ws.config}", "init", f"--repo={url}", f"--pgdata={pg.data}"],
                       cwd=ws.work)
    assert rc == 0, describe(rc, out, err)
    pg.configure(archive_mode=True, archive_command=ws.archive_command(url))
    pg.start()
    pg.sql("CREATE TABLE ev (src text, id int, PRIMARY KEY (src, id))")
    pg.sql("INSERT INTO ev SELECT 'p', g FROM generate_series(1, 10) g")
    pg.switch_wal()
    b1 = take_backup(ws, url, pg)
    pg.sql("INSERT INTO ev SELECT 'p', g FROM generate_series(11, 20) g")
    pg.switch_wal()
    b2 = take_backup(ws, url, pg)
    pg.sql("INSERT INTO ev SELECT 'p', g FROM generate_series(21, 30) g")
    last = pg.switch_wal()
    pg.wait_archived(last)
    want = rows_at(pg.dir, pg.port)
    epoch = json.loads(client.get_object(Bucket=s3bucket, Key=f"{prefix}/walship.json")["Body"].read())["epochs"][-1]["id"]
    meta2 = json.loads(client.get_object(Bucket=s3bucket, Key=f"{prefix}/{epoch}/backups/{b2}/manifest.json")
                       ["Body"].read())

    # A live lock on S3 (another host): prune refuses and leaves everything.
    now = int(time.time())
    lock = {"purpose": "prune", "host": "elsewhere.example", "pid": 7, "token": "e" * 32, "started": now,
            "started_at": "", "heartbeat": now, "heartbeat_at": ""}
    client.put_object(Bucket=s3bucket, Key=f"{prefix}/walship.lock", Body=json.dumps(lock).encode())
    before = keys()
    rc, out, err = prune(ws, url, "--keep-backups=1", env={"WALSHIP_TEST_LOCK_EXPIRY": "300"})
    assert rc == 1 and "is locked by walship prune on elsewhere.example" in err, describe(rc, out, err)
    assert keys() == before
    # Expired (2 s test expiry): taken over with a warning.
    time.sleep(3)
    rc, out, err = prune(ws, url, "--keep-backups=1", "--json")
    assert rc == 0 and "taking over the lock" in err, describe(rc, out, err)
    res = json.loads(out)
    assert res["backups_removed"] == [b1] and res["kept_backups"] == [b2], res
    after = keys()
    assert "walship.lock" not in after
    assert not any(k.startswith(f"{epoch}/backups/{b1}/") for k in after)
    start = seg_no(meta2["start_wal"])
    wal = [k.rsplit("/", 1)[1] for k in after if re.search(r"/wal/[0-9A-F]{16}/[0-9A-F]{24}$", k)]
    assert wal and min(seg_no(n) for n in wal) == start, sorted(wal)
    assert len(before - after - {"walship.lock"}) == res["wal_removed"] + len([k for k in before if f"/{b1}/" in k])

    dest = make_pg_dir(tmp / "rb", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, type("R", (), {"root": url})(), dest, f"--backup={b2}", "--start",
                               f"--port={port}")
        assert rc == 0 and "server was promoted" in out, describe(rc, out, err)
        assert rows_at(pg.dir, port) == want
    finally:
        stop_server(dest)


def test_prune_dry_run_verbose_lists_exactly_what_prune_removes(ws, work, clusters):
    """--dry-run -v names every object, one a line, with the totals; a real prune then removes exactly those."""
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.sql("CREATE TABLE ev (src text, id int, PRIMARY KEY (src, id))")
    pg.sql("INSERT INTO ev SELECT 'p', g FROM generate_series(1, 10) g")
    pg.switch_wal()
    b1 = take_backup(ws, repo.root, pg)
    pg.sql("INSERT INTO ev SELECT 'p', g FROM generate_series(11, 20) g")
    pg.switch_wal()
    b2 = take_backup(ws, repo.root, pg)
    pg.wait_archived(pg.switch_wal())
    pg.stop()

    before = files(repo.root)
    rc, out, err = prune(ws, repo.root, "--keep-backups=1", "--dry-run", "-v")
    assert rc == 0, describe(rc, out, err)
    assert files(repo.root) == before, "a dry run removed something"
    listed = [m.group(1) for m in re.finditer(r"^would remove (\S+) \(", out, re.M)]
    assert len(listed) == len(set(listed)), out
    assert any(f"/backups/{b1}/" in k for k in listed) and not any(f"/backups/{b2}/" in k for k in listed), out
    wal = [k for k in listed if "/wal/" in k]
    assert any(re.search(r"/wal/[0-9A-F]{16}/[0-9A-F]{24}$", k) for k in wal), "the WAL before the kept backup\n" + out
    assert re.search(rf"^would remove 1 backup \({b1}\), {len(wal)} WAL files, freeing ", out, re.M), out

    rc, out2, err = prune(ws, repo.root, "--keep-backups=1")
    assert rc == 0, describe(rc, out2, err)
    removed = before - files(repo.root)
    assert removed == set(listed), (
        f"listed but kept: {sorted(set(listed) - removed)}\nremoved but not listed: {sorted(removed - set(listed))}"
    )
