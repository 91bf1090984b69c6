"""walship verify against a real PostgreSQL (15 here, 13 and 17 in tests/matrix/run): a repository with a backup,
WAL after it and a second timeline (a promoted rebuilt copy archiving into the
same repository) is whole; then each kind of damage is found and named, with
exit code 3: a WAL file deleted in the middle, one the backup itself needs, a
flipped byte (in the content: only --full finds it; in the trailer: both
modes), a missing .history file, a removed base.tar, an interrupted backup
directory and a stray key.  The same on S3 (damage done with boto3), plain
and encrypted."""

import json
import os
import shutil

import pytest

from pgcluster import chown_pg, describe, flip_byte, free_port, make_pg_dir, run, wait_for, write_pg_file
from test_backup import archiving_cluster, backup
from test_rebuild import rebuild, stop_server

import psycopg

EXIT_PROBLEMS = 3


def verify(ws, root, *opts):
    return run([ws.walship, f"--config={ws.config}", "verify", f"--repo={root}", *opts], cwd=ws.work,
               timeout=180)


def problems(ws, root, *opts):
    """verify --json: the exit code and the problems array."""
    rc, out, err = verify(ws, root, "--json", *opts)
    assert rc in (0, EXIT_PROBLEMS), describe(rc, out, err)
    doc = json.loads(out)
    assert (rc == 0) == (doc["problems"] == []), describe(rc, out, err)
    return rc, doc


def seg_after(name, n):
    """The segment n after name on name's timeline (16 MiB segments)."""
    tli, log, seg = int(name[:8], 16), int(name[8:16], 16), int(name[16:], 16) + n
    log, seg = log + seg // 256, seg % 256
    return f"{tli:08X}{log:08X}{seg:08X}"


def meta_of(repo):
    path = next((repo.root / repo.epoch / "backups").glob("*/manifest.json"))
    return json.loads(path.read_text())


class Aside:
    """Moves a file away and back, so each damage is undone before the next."""

    def __init__(self, path, tmp):
        self.path = path
        self.tmp = tmp / ("aside-" + path.name)

    def __enter__(self):
        shutil.move(self.path, self.tmp)
        return self

    def __exit__(self, *exc):
        shutil.move(self.tmp, self.path)


class Flipped:
    """Flips one byte of a file (offset from its end when negative) and back."""

    def __init__(self, path, offset):
        self.path = path
        self.offset = offset if offset >= 0 else os.path.getsize(path) + offset

    def __enter__(self):
        flip_byte(self.path, self.offset)
        return self

    def __exit__(self, *exc):
        flip_byte(self.path, self.offset)


def test_verify_local_repository_with_two_timelines(ws, work, clusters, tmp):
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.sql("CREATE TABLE marker (id int PRIMARY KEY)")
    pg.pgbench("-i", "-s", "1", "-q")
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    for i in range(4):
        pg.sql(f"INSERT INTO marker VALUES ({i})")
        last = pg.switch_wal()
    pg.wait_archived(last)

    # Timeline 2: a rebuilt copy, promoted, archiving into the same repository.
    copy = make_pg_dir(tmp / "copy", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, copy, "--archive=keep", "--start", f"--port={port}")
        assert rc == 0 and "on timeline 2" in out, describe(rc, out, err)
        with psycopg.connect(host=str(pg.dir), port=port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute("INSERT INTO marker VALUES (100)")
            name = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
            assert name.startswith("00000002"), name
            wait_for(lambda: (conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or "")
                     >= name, 60, "the copy did not archive timeline 2")
    finally:
        stop_server(copy)
    # The old primary goes on with timeline 1.
    pg.sql("INSERT INTO marker VALUES (200)")
    pg.wait_archived(pg.switch_wal())
    pg.stop()

    meta = meta_of(repo)
    bid = meta["id"]
    hist = repo.root / repo.epoch / "wal" / "00000002.history"
    assert hist.is_file(), repo.files()

    # Whole: both modes, text and JSON.
    rc, out, err = verify(ws, repo.root)
    assert rc == 0, describe(rc, out, err)
    assert "no problems" in out and "1 backup," in out and "2 timelines" in out, out
    assert err == "", err
    rc, out, err = verify(ws, repo.root, "--full")
    assert rc == 0 and "in full" in out and "no problems" in out, describe(rc, out, err)
    # -q, from cron: a whole repository prints nothing at all.
    rc, out, err = verify(ws, repo.root, "-q")
    assert rc == 0 and out == "" and err == "", describe(rc, out, err)
    rc, doc = problems(ws, repo.root)
    assert rc == 0 and doc["backups"] == 1 and doc["timelines"] == 2 and doc["objects"] > 8, doc
    assert doc["full"] is False and doc["bytes"] > 0, doc

    # A WAL file deleted in the middle (after the backup, before the newest): a gap.
    hole = seg_after(meta["stop_wal"], 2)
    assert repo.key_path(seg_after(meta["stop_wal"], 3)).is_file()
    with Aside(repo.key_path(hole), tmp):
        rc, out, err = verify(ws, repo.root)
        assert rc == EXIT_PROBLEMS, describe(rc, out, err)
        assert f'walship: problem: WAL file "{hole}" is missing on timeline 1' in err, err
        assert bid in err and "1 problem" in out, describe(rc, out, err)
        rc, out, err = verify(ws, repo.root, "-q")
        assert rc == EXIT_PROBLEMS and hole in err and "1 problem" in out, describe(rc, out, err)
        rc, doc = problems(ws, repo.root)
        assert [(p["kind"], p["key"]) for p in doc["problems"]] == \
            [("gap", f"{repo.epoch}/wal/{hole[:16]}/{hole}")], doc

    # One the backup itself needs: the backup cannot be rebuilt.
    with Aside(repo.key_path(meta["start_wal"]), tmp):
        rc, out, err = verify(ws, repo.root)
        assert rc == EXIT_PROBLEMS, describe(rc, out, err)
        assert f'WAL file "{meta["start_wal"]}" is missing on timeline 1 (needed by backup {bid})' in err, err

    # A flipped byte inside a segment's compressed content: only --full reads that far.
    victim = repo.key_path(seg_after(meta["stop_wal"], 1))
    with Flipped(victim, os.path.getsize(victim) // 2):
        rc, out, err = verify(ws, repo.root)
        assert rc == 0, "header-only verify does not read the content\n" + describe(rc, out, err)
        rc, out, err = verify(ws, repo.root, "--full")
        assert rc == EXIT_PROBLEMS and victim.name in err and "corrupt" in err, describe(rc, out, err)
        rc, doc = problems(ws, repo.root, "--full")
        assert [p["kind"] for p in doc["problems"]] == ["corrupt"], doc
        assert doc["problems"][0]["key"].endswith(victim.name), doc
    # ... and in the trailer: both modes.
    with Flipped(victim, -30):
        for opts in ([], ["--full"]):
            rc, out, err = verify(ws, repo.root, *opts)
            assert rc == EXIT_PROBLEMS and victim.name in err, f"{opts}: " + describe(rc, out, err)

    # The history file of timeline 2, which holds WAL.
    with Aside(hist, tmp):
        rc, out, err = verify(ws, repo.root)
        assert rc == EXIT_PROBLEMS, describe(rc, out, err)
        assert 'history file "00000002.history" is missing' in err, err
        rc, doc = problems(ws, repo.root)
        assert ("missing", f"{repo.epoch}/wal/00000002.history") in \
            [(p["kind"], p["key"]) for p in doc["problems"]], doc

    # A backup object.
    base = repo.root / repo.epoch / "backups" / bid / "base.tar"
    with Aside(base, tmp):
        rc, out, err = verify(ws, repo.root)
        assert rc == EXIT_PROBLEMS, describe(rc, out, err)
        assert f"base.tar of backup {bid} is missing" in err, err
        rc, doc = problems(ws, repo.root)
        assert [(p["kind"], p["key"]) for p in doc["problems"]] == \
            [("missing", f"{repo.epoch}/backups/{bid}/base.tar")], doc
    # A byte flipped in its content: --full holds it against its SHA-256.
    with Flipped(base, os.path.getsize(base) // 2):
        rc, out, err = verify(ws, repo.root, "--full")
        assert rc == EXIT_PROBLEMS and "base.tar" in err, describe(rc, out, err)

    # A valid object of other content in its place (backup_manifest's): manifest.json says otherwise.
    saved = base.read_bytes()
    shutil.copyfile(base.parent / "backup_manifest", base)
    try:
        rc, doc = problems(ws, repo.root)
        assert [(p["kind"], p["key"]) for p in doc["problems"]] == \
            [("mismatch", f"{repo.epoch}/backups/{bid}/base.tar")], doc
        assert "base.tar of backup" in doc["problems"][0]["detail"], doc
    finally:
        base.write_bytes(saved)

    # An interrupted backup (no manifest.json) and a key walship never wrote.
    broken = make_pg_dir(repo.root / repo.epoch / "backups" / "20200101T000000Z", 0o750)
    shutil.copy(base, broken / "base.tar")
    chown_pg(broken / "base.tar")
    write_pg_file(repo.root / repo.epoch / "wal" / "notes.txt", b"hello\n", 0o640)
    try:
        rc, out, err = verify(ws, repo.root)
        assert rc == EXIT_PROBLEMS and "2 problems" in out, describe(rc, out, err)
        assert "interrupted backup" in err and "walship prune removes it" in err, err
        rc, doc = problems(ws, repo.root)
        assert sorted((p["kind"], p["key"]) for p in doc["problems"]) == [
            ("orphan", f"{repo.epoch}/backups/20200101T000000Z/"),
            ("orphan", f"{repo.epoch}/wal/notes.txt"),
        ], doc
    finally:
        shutil.rmtree(broken)
        os.unlink(repo.root / repo.epoch / "wal" / "notes.txt")

    # Everything undone: whole again, in full.
    rc, out, err = verify(ws, repo.root, "--full")
    assert rc == 0, describe(rc, out, err)

    # A repository that cannot be read: 1, not 3.
    rc, out, err = verify(ws, work / "nowhere")
    assert rc == 1, describe(rc, out, err)


# --------------------------------------------------------------------------
# S3 (plain and encrypted)

PREFIX = "verify"


@pytest.mark.parametrize("encrypted", [False, True], ids=["s3", "s3-encrypted"])
def test_verify_on_s3(encrypted, s3server, s3bucket, ws, work, clusters, tmp):
    lines = [s3server.config_text(s3bucket, PREFIX)]
    if encrypted:
        key = write_pg_file(work / "repo.key", os.urandom(32).hex().encode() + b"\n", 0o600)
        lines.append(f"encryption-key-file = {key}\n")
    write_pg_file(ws.config, "".join(lines).encode(), 0o600)
    root = s3server.url(s3bucket, PREFIX)
    s3 = s3server.boto3_client()

    pg = clusters.new("primary").initdb()
    rc, out, err = run([ws.walship, f"--config={ws.config}", "init", f"--repo={root}", f"--pgdata={pg.data}",
                        *(["--encrypt"] if encrypted else [])], cwd=ws.work)
    assert rc == 0, describe(rc, out, err)
    pg.configure(archive_mode=True, archive_command=ws.archive_command(root))
    pg.start()
    rc, out, err = backup(ws, root, pg)
    assert rc == 0, describe(rc, out, err)
    for i in range(3):
        pg.sql(f"CREATE TABLE t{i} AS SELECT g FROM generate_series(1, 1000) g")
        last = pg.switch_wal()
    pg.wait_archived(last)
    pg.stop()

    epoch = json.loads(s3.get_object(Bucket=s3bucket, Key=f"{PREFIX}/walship.json")["Body"].read())["epochs"][-1]["id"]
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=s3bucket, Prefix=f"{PREFIX}/")
            for o in page.get("Contents", [])]
    manifest = next(k for k in keys if k.endswith("/manifest.json"))
    if encrypted:
        # An encrypted manifest.json: its stop_wal from walship list instead.
        out = run([ws.walship, f"--config={ws.config}", "list", "--json", f"--repo={root}"], cwd=ws.work)[1]
        stop_wal = json.loads(out)["epochs"][0]["backups"][0]["stop_wal"]
    else:
        stop_wal = json.loads(s3.get_object(Bucket=s3bucket, Key=manifest)["Body"].read())["stop_wal"]

    for opts in ([], ["--full"]):
        rc, out, err = verify(ws, root, *opts)
        assert rc == 0 and "no problems" in out, f"{opts}: " + describe(rc, out, err)

    def wal_key(name):
        return f"{PREFIX}/{epoch}/wal/{name[:16]}/{name}"

    # A WAL file deleted in the middle.
    hole = seg_after(stop_wal, 1)
    assert wal_key(seg_after(stop_wal, 2)) in keys, keys
    saved = s3.get_object(Bucket=s3bucket, Key=wal_key(hole))["Body"].read()
    s3.delete_object(Bucket=s3bucket, Key=wal_key(hole))
    try:
        rc, doc = problems(ws, root)
        assert rc == EXIT_PROBLEMS and [(p["kind"], p["key"]) for p in doc["problems"]] == \
            [("gap", f"{epoch}/wal/{hole[:16]}/{hole}")], doc
    finally:
        s3.put_object(Bucket=s3bucket, Key=wal_key(hole), Body=saved)

    # A flipped byte in the middle of the same object: only --full sees it.
    damaged = bytearray(saved)
    damaged[len(damaged) // 2] ^= 0xFF
    s3.put_object(Bucket=s3bucket, Key=wal_key(hole), Body=bytes(damaged))
    try:
        rc, out, err = verify(ws, root)
        assert rc == 0, describe(rc, out, err)
        rc, doc = problems(ws, root, "--full")
        assert rc == EXIT_PROBLEMS and [(p["kind"], p["key"]) for p in doc["problems"]] == \
            [("corrupt", f"{epoch}/wal/{hole[:16]}/{hole}")], doc
    finally:
        s3.put_object(Bucket=s3bucket, Key=wal_key(hole), Body=saved)

    # Whole again.
    rc, out, err = verify(ws, root, "--full")
    assert rc == 0, describe(rc, out, err)
