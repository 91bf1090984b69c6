"""walship rebuild of backups of old PostgreSQL major versions, and targets
past the end of the archive.

No PostgreSQL 12 or older runs here (tests/matrix/run has 13, 15 and 17), so
the old versions are copies of a real repository of the major under test
whose walship.json epoch and manifest.json say 12 (or 9.6): every decision tested is made from that metadata and the
repository's listing before anything is written, which is what an old
server's repository would give too (no server is started on them).

- PostgreSQL 12 and older promote at the end of the WAL instead of failing
  when a time, xid or restore-point target is never reached (13 and later
  stop with "recovery ended before configured recovery target was reached"):
  a time after the last archived WAL file was stored is refused before
  anything is written, naming that file and its time; an xid or a restore
  point gets a warning naming them; 15 is unchanged (no refusal, no warning;
  test_rebuild.py shows its failure at start).
- A 9.6 backup's tar stream ends without the end-of-archive blocks (the
  server sends none up to 14): rebuild accepts it, as for 10 to 14, and
  writes recovery.conf."""

import io
import json
import os
import tarfile
import time
from datetime import datetime, timezone

from pgcluster import RepoView, describe, zstd_decompress
from test_backup import archiving_cluster
from test_prune import copy_repo, files, take_backup
from test_rebuild import rebuild
from test_rebuild_more import replace_base_tar


def doctor_major(root, major, version_num):
    """Make a repository's epoch and every backup of it say PostgreSQL major (as walship writes it)."""
    meta = json.loads((root / "walship.json").read_text())
    for ep in meta["epochs"]:
        ep["pg_major"] = major
    (root / "walship.json").write_text(json.dumps(meta, indent=2) + "\n")
    for m in root.glob("*/backups/*/manifest.json"):
        b = json.loads(m.read_text())
        b["pg_version"] = {"server_version_num": version_num, "major": major}
        m.write_text(json.dumps(b, indent=2) + "\n")


def last_wal(view):
    """The newest segment object of timeline 1 and when it was stored, as walship prints it."""
    segs = sorted(p for p in (view.root / view.epoch / "wal").glob("00000001*/*") if len(p.name) == 24)
    stored = datetime.fromtimestamp(int(os.stat(segs[-1]).st_mtime), timezone.utc)
    return segs[-1].name, stored


def test_targets_past_the_end_of_the_archive_on_12_and_older(ws, work, clusters, tmp):
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.sql("CREATE TABLE ev (id int)")
    take_backup(ws, repo.root, pg)
    time.sleep(1.1)
    pg.sql("INSERT INTO ev VALUES (1)")
    xid = pg.scalar("SELECT txid_current()")
    pg.sql("SELECT pg_create_restore_point('after-1')")
    inside = pg.scalar("SELECT clock_timestamp()::text")
    for _ in range(2):
        last = pg.switch_wal()
    pg.wait_archived(last)
    name, stored = last_wal(repo)
    past = (stored.timestamp() + 3600)
    past_text = datetime.fromtimestamp(past, timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")
    stored_text = stored.strftime("%Y-%m-%dT%H:%M:%SZ")
    dest = tmp / "never"

    # PostgreSQL 15: nothing refused or warned before writing (the server itself fails at start).
    for opts in ([f"--target-time={past_text}"], [f"--target-xid={xid}"], ["--target-name=after-1"]):
        rc, out, err = rebuild(ws, repo, dest, *opts, "--dry-run")
        assert rc == 0 and "dry run: nothing was written" in out, f"{opts}: " + describe(rc, out, err)
        assert "past the end" not in err and "cannot tell" not in err, f"{opts}: " + describe(rc, out, err)

    old = RepoView(copy_repo(repo.root, work / "pg12"))
    doctor_major(old.root, "12", 120010)
    before = files(old.root)

    # A time after the last WAL file was stored: refused, nothing written anywhere.
    rc, out, err = rebuild(ws, old, dest, f"--target-time={past_text}", "--target-action=promote")
    assert rc == 2, describe(rc, out, err)
    assert f'recovery target time "{past_text}" is past the end of the WAL in the repository' in err, err
    assert f'The last WAL file recovery can read, "{name}", was stored at {stored_text}' in err, err
    assert "PostgreSQL 12 would replay to the end of the archive and promote" in err and "--target-lsn" in err, err
    assert not dest.exists() and files(old.root) == before, "a refused rebuild wrote something"

    # A time inside the archive is fine.
    rc, out, err = rebuild(ws, old, dest, f"--target-time={inside}", "--dry-run")
    assert rc == 0 and "past the end" not in err, describe(rc, out, err)

    # An xid or a restore point: the archive cannot tell, so a loud warning naming its end.
    for opts, what in (([f"--target-xid={xid}"], f'transaction "{xid}"'),
                       (["--target-name=after-1"], 'restore point "after-1"')):
        rc, out, err = rebuild(ws, old, dest, *opts, "--dry-run")
        assert rc == 0 and "dry run: nothing was written" in out, describe(rc, out, err)
        assert f"walship: warning: walship rebuild cannot tell whether {what} is in the archived WAL" in err, err
        assert f'walship: detail: The last WAL file recovery can read is "{name}", stored at {stored_text}' in err
        assert "PostgreSQL 12 replays to the end of the archive and promotes" in err, err
    assert not dest.exists()


def unterminated(tar_bytes):
    """The tar stream as PostgreSQL 14 and older send it: the members without the two zero blocks."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as t:
        last = t.getmembers()[-1]
    end = last.offset_data + (last.size + 511) // 512 * 512
    assert tar_bytes[end:end + 1024] == bytes(1024)
    return tar_bytes[:end]


def test_a_9_6_backup_without_end_of_archive_blocks_is_rebuilt(ws, work, clusters, tmp):
    pg, repo = archiving_cluster(ws, work, clusters)
    bid = take_backup(ws, repo.root, pg)
    last = pg.switch_wal()
    pg.wait_archived(last)
    old = RepoView(copy_repo(repo.root, work / "pg96"))
    doctor_major(old.root, "9.6", 90624)
    base = zstd_decompress(old.root / old.epoch / "backups" / bid / "base.tar")
    replace_base_tar(old, unterminated(base), tmp)

    dest = tmp / "copy"
    rc, out, err = rebuild(ws, old, dest)
    assert rc == 0, describe(rc, out, err)
    assert "recovery.conf written" in out, out
    conf = (dest / "recovery.conf").read_text()
    assert "restore_command" in conf and "--mode=recovery" in conf, conf
    assert not (dest / "recovery.signal").exists() and (dest / "global" / "pg_control").is_file()
