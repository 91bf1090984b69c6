"""walship answers "stored" only once the object and its directories are
durable, proven with an LD_PRELOAD shim (tests/preload/fsyncfail.c, built by
`make preload`) that logs every sync, rename and link with its
resolved path, fails chosen syncs with EIO and kills the program right after a
chosen rename:

- EIO on the fsync of a pushed segment's temporary file: exit 1, no object,
  no temporary file; the retry syncs the file before its rename and the
  directories up to the repository root after it.
- EIO on the fsync of the object's directory or of the parent of a directory
  the push created: exit 1 and no object; the retry answers 0 only after
  syncing the object's directory and each one up to the root.
- SIGKILL between the rename and the directory sync: the retry finds the
  object already there and answers 0 only after it fsynced the object and its
  directories (issue 12, defect 3).
- push-parallel: an extra file's record is written only after its object and
  directories were synced; an extra file whose sync fails gets no record.
- walship init's walship.json and walship backup's manifest.json likewise.
- The store contract suite's "exists" check, run on local disk under the shim.
"""

import os
import subprocess
from pathlib import Path

import pytest

from pgcluster import (
    FIRST_SEGMENT,
    describe,
    has_phrase,
    run,
    write_pg_file,
)
from test_backup import archiving_cluster
from test_parallel_push import make_segments, records, spool_conf
from test_sftp import no_sanitizer_report
from test_stores import contract_binary

SEG = f"pg_wal/{FIRST_SEGMENT}"
SYNCS = ("fsync", "fdatasync", "syncfs", "sync_file_range")
MOVES = ("rename", "renameat", "renameat2", "link", "linkat")


class Shim:
    """The shim's settings for one program run, and what it logged."""

    def __init__(self, preload, work):
        self.preload = preload
        self.log = Path(work) / "syncs.log"
        self.clear()

    def clear(self):
        write_pg_file(self.log, b"", 0o666)

    def env(self, eio=(), kill=(), arm=()):
        return self.preload.env("fsyncfail",
                           WALSHIP_FSYNCFAIL_LOG=str(self.log),
                           WALSHIP_FSYNCFAIL_EIO=":".join(str(p) for p in eio),
                           WALSHIP_FSYNCFAIL_KILL=":".join(str(p) for p in kill),
                           WALSHIP_FSYNCFAIL_ARM=":".join(str(p) for p in arm))

    def calls(self):
        """[{op, path, to, ok}] in order: path is the synced file or the rename's source."""
        out = []
        for line in self.log.read_text().splitlines():
            w = line.split()
            if w[1] in ("kill", "arm"):
                out.append({"op": w[1], "path": w[2], "to": w[2], "ok": True})
            elif w[1] in MOVES:
                out.append({"op": w[1], "path": w[2], "to": w[4], "ok": w[6] == "0"})
            else:
                out.append({"op": w[1], "path": w[2], "to": None, "ok": w[4] == "0"})
        return out

    def text(self):
        return self.log.read_text()


@pytest.fixture
def shim(preload, work):
    return Shim(preload, work)


def push(ws, repo, datadir, env, config=None):
    """walship-push of the data directory's first segment into repo."""
    return no_sanitizer_report(ws.push(repo.root, SEG, FIRST_SEGMENT, datadir, config=config, env=env))


def real(p):
    return os.path.realpath(p)


def synced_at(calls, path, after=-1, before=None):
    """Index of the first successful sync of path after index after (and before before), or None."""
    path = real(path)
    for i, c in enumerate(calls):
        if before is not None and i >= before:
            break
        if i > after and c["op"] in SYNCS and c["ok"] and c["path"] == path:
            return i
    return None


def moved_at(calls, to, ok=True):
    """Index of the last rename or link into to that succeeded (ok) or failed, or None."""
    to = real(to)
    found = None
    for i, c in enumerate(calls):
        if c["op"] in MOVES and c["ok"] == ok and c["to"] == to:
            found = i
    return found


def parents(obj, root):
    """The directories above obj's own, up to root (included): each holds the entry of a
    directory a put may have created."""
    out, d = [], Path(obj).parent
    while d != Path(root):
        d = d.parent
        out.append(d)
    return out


def assert_dirs_synced(shim, calls, obj, root, after, before, what):
    """obj's directory synced between after and before, and each directory above it synced
    (at any time: a directory is made once) before before."""
    assert synced_at(calls, Path(obj).parent, after, before) is not None, \
        f"{what}: the directory of {obj} was not fsynced after index {after}\n{shim.text()}"
    for d in parents(obj, root):
        assert synced_at(calls, d, -1, before) is not None, f"{what}: directory {d} was never fsynced\n{shim.text()}"


def assert_put_durably(shim, obj, root, what):
    """The log shows a put of obj: its file fsynced before the rename into obj, its directory
    after it, and every directory above up to root."""
    calls = shim.calls()
    at = moved_at(calls, obj)
    assert at is not None, f"{what}: no rename into {obj}\n{shim.text()}"
    src = calls[at]["path"]
    assert synced_at(calls, src, -1, at) is not None, f"{what}: {src} was not fsynced before its rename\n{shim.text()}"
    assert_dirs_synced(shim, calls, obj, root, at, None, what)


def assert_existing_made_durable(shim, obj, root, what):
    """The log ends with a push that found obj in place (its rename failed) and then fsynced
    obj itself (not a temporary file) and its directories."""
    calls = shim.calls()
    at = moved_at(calls, obj, ok=False)
    assert at is not None, f"{what}: expected a rename that found the object in place\n{shim.text()}"
    done = synced_at(calls, obj, at)
    assert done is not None, f"{what}: the object {obj} found in place was never fsynced\n{shim.text()}"
    assert_dirs_synced(shim, calls, obj, root, at, None, what)


# --------------------------------------------------------------------------
# one push


def test_eio_on_the_objects_fsync_leaves_nothing(ws, repo, datadir, shim):
    env = shim.env(eio=[f"*/.{FIRST_SEGMENT}.tmp.*"])
    rc, out, err = push(ws, repo, datadir, env)
    assert rc == 1, describe(rc, out, err)
    assert has_phrase(err, "Input/output error") and FIRST_SEGMENT in err, describe(rc, out, err)
    assert FIRST_SEGMENT not in repo.objects() and repo.dot_files() == [], repo.files()

    # The log keeps both calls: what the first synced (the new directories) counts.
    rc, out, err = push(ws, repo, datadir, shim.env())
    assert rc == 0, describe(rc, out, err)
    assert_put_durably(shim, repo.key_path(FIRST_SEGMENT), repo.root, "the retried push")


@pytest.mark.parametrize("which", ["object directory", "parent of a new directory"])
def test_eio_on_a_directory_fsync_then_the_retry_syncs_it(ws, repo, datadir, shim, which):
    obj = repo.key_path(FIRST_SEGMENT)
    # The push creates <epoch>/wal/<tli+log>/: its entry lives in <epoch>/wal.
    failing = obj.parent if which == "object directory" else obj.parent.parent
    rc, out, err = push(ws, repo, datadir, shim.env(eio=[failing]))
    assert rc == 1, describe(rc, out, err)
    assert has_phrase(err, "Input/output error") and str(failing) in err, describe(rc, out, err)
    # Taken back: nothing is left that a crash could lose while it was answered as stored.
    assert FIRST_SEGMENT not in repo.objects() and repo.dot_files() == [], repo.files()

    rc, out, err = push(ws, repo, datadir, shim.env())
    assert rc == 0, describe(rc, out, err)
    assert_put_durably(shim, obj, repo.root, f"the retry after EIO on the {which}")


def test_killed_between_rename_and_directory_sync_then_the_retry_syncs(ws, repo, datadir, shim):
    obj = repo.key_path(FIRST_SEGMENT)
    rc, out, err = push(ws, repo, datadir, shim.env(kill=[obj]))
    assert rc == -9, "the shim must kill the push right after its rename\n" + describe(rc, out, err)
    calls = shim.calls()
    at = moved_at(calls, obj)
    assert at is not None and calls[-1]["op"] == "kill", shim.text()
    assert synced_at(calls, obj.parent, at) is None, "the kill point must come before the directory sync"
    assert obj.exists(), "the renamed object must be in place"

    # PostgreSQL retries: the identical object is found; 0 only once it and its directories are durable.
    rc, out, err = push(ws, repo, datadir, shim.env())
    assert rc == 0, describe(rc, out, err)
    assert_existing_made_durable(shim, obj, repo.root, "the push that found the object in place")
    assert repo.dot_files() == [], repo.dot_files()


def test_existing_object_that_cannot_be_synced_is_not_archived(ws, repo, datadir, shim):
    obj = repo.key_path(FIRST_SEGMENT)
    rc, out, err = push(ws, repo, datadir, shim.env(kill=[obj]))
    assert rc == -9, describe(rc, out, err)
    rc, out, err = push(ws, repo, datadir, shim.env(eio=[obj]))
    assert rc == 1, "an identical object that cannot be made durable is not archived\n" + describe(rc, out, err)
    assert has_phrase(err, "Input/output error") and FIRST_SEGMENT in err, describe(rc, out, err)


# --------------------------------------------------------------------------
# parallel push


def test_parallel_push_records_only_what_is_synced(ws, repo, datadir, work, shim):
    spool = work / "spool"
    conf = spool_conf(ws, "p2.conf", spool, 2)
    names = make_segments(datadir, 3)
    failing = names[1]
    env = shim.env(eio=[f"*/.{failing}.tmp.*"])
    rc, out, err = push(ws, repo, datadir, env, config=conf)
    assert rc == 0, describe(rc, out, err)
    recs = records(spool)
    assert set(recs) == {names[0], names[2]}, f"records: {sorted(recs)}\n{err}"
    assert failing not in repo.objects(), "an extra file whose fsync failed was stored"
    assert repo.dot_files() == [], repo.dot_files()

    calls = shim.calls()
    for name in (FIRST_SEGMENT, names[0], names[2]):
        obj = repo.key_path(name)
        at = moved_at(calls, obj)
        assert at is not None, f"no rename into {obj}\n{shim.text()}"
        done = synced_at(calls, calls[at]["path"])
        assert done is not None and done < at, f"{name}: not fsynced before its rename\n{shim.text()}"
        if name == FIRST_SEGMENT:
            continue
        rec_at = moved_at(calls, recs[name][0])
        assert rec_at is not None and rec_at > at, f"{name}: its record was not renamed after the object"
        assert_dirs_synced(shim, calls, obj, repo.root, at, rec_at, f"{name}'s record")


def test_parallel_push_writes_no_record_when_the_directory_sync_fails(ws, repo, datadir, work, shim):
    spool = work / "spool"
    conf = spool_conf(ws, "p2.conf", spool, 2)
    make_segments(datadir, 3)
    wal_dir = repo.key_path(FIRST_SEGMENT).parent
    rc, out, err = push(ws, repo, datadir, shim.env(eio=[wal_dir]), config=conf)
    assert rc == 1, describe(rc, out, err)
    assert records(spool) == {}, "a record was written for a file whose directory was never synced"
    assert repo.objects() == {}, repo.objects()


# --------------------------------------------------------------------------
# init and backup


def test_init_syncs_walship_json(ws, work, datadir, shim):
    root = work / "repo"
    cmd = [ws.walship, f"--config={ws.config}", "init", f"--repo={root}", f"--pgdata={datadir}"]
    rc, out, err = no_sanitizer_report(run(cmd, cwd=work, env=shim.env(eio=[root])))
    assert rc == 1, describe(rc, out, err)
    assert has_phrase(err, "Input/output error"), describe(rc, out, err)
    assert not (root / "walship.json").exists(), "walship.json left although its directory was not synced"

    rc, out, err = no_sanitizer_report(run(cmd, cwd=work, env=shim.env()))
    assert rc == 0, describe(rc, out, err)
    assert_put_durably(shim, root / "walship.json", root, "walship init")


def test_backup_syncs_manifest_json(ws, work, clusters, shim):
    pg, repo = archiving_cluster(ws, work, clusters)
    dsn = f"host={pg.dir} port={pg.port} user=postgres dbname=postgres"
    cmd = [ws.walship, f"--config={ws.config}", "backup", f"--repo={repo.root}", "-d", dsn]
    # The sync of the backup's directory after manifest.json's rename fails: the backup fails and
    # leaves no manifest.json naming the objects it removes.
    backups = repo.root / repo.epoch / "backups"
    env = shim.env(eio=[f"{backups}/*Z"], arm=[f"{backups}/*/manifest.json"])
    rc, out, err = no_sanitizer_report(run(cmd, cwd=ws.work, env=env, timeout=300))
    assert rc == 1, describe(rc, out, err)
    assert has_phrase(err, "Input/output error"), describe(rc, out, err)
    assert not list(backups.glob("*/manifest.json")), "a failed backup left a manifest.json"

    rc, out, err = no_sanitizer_report(run(cmd, cwd=ws.work, env=shim.env(), timeout=300))
    assert rc == 0, describe(rc, out, err)
    manifests = list(backups.glob("*/manifest.json"))
    assert len(manifests) == 1, manifests
    assert_put_durably(shim, manifests[0], repo.root, "walship backup's manifest.json")


# --------------------------------------------------------------------------
# the store contract


def test_store_contract_under_the_shim(tmp, shim):
    """The contract suite on local disk, with the shim's log: a key a no-overwrite put finds
    taken has its directory synced before WS_EXISTS is answered."""
    env = dict(os.environ, **shim.env(), WALSHIP_TEST_SYNC_LOG=str(shim.log), WALSHIP_TEST_LIST_KEYS="50")
    r = subprocess.run([contract_binary()], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"store contract failed under the shim:\n{r.stdout}\n{r.stderr}"
    assert "PASSED" in r.stdout + r.stderr, r.stdout + r.stderr
