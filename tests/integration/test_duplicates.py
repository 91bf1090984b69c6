"""walship-push when a WAL file is already in the repository.

Same content: success with nothing written.  Different content: a segment or
.history file fails with both checksums and the stored object untouched; a
.partial or .backup file is kept beside the first under <name>@<sha prefix>.
"""

import hashlib
import os
import re

from pgcluster import (
    FIRST_SEGMENT,
    WAL_SEG_16M,
    describe,
    has_phrase,
    make_pg_dir,
    pg_copy,
    sha256_file,
    write_pg_file,
    zstd_decompress,
)

HISTORY = b"1\t0/3000000\tno recovery target specified\n"
HISTORY_OTHER = b"1\t0/4000000\tno recovery target specified\n"


def snapshot(path):
    st = os.stat(path)
    return path.read_bytes(), st.st_ino, st.st_mtime_ns


def assert_unchanged(path, before, what):
    assert path.exists(), f"{what}: stored object {path} disappeared"
    data, ino, mtime = snapshot(path)
    assert data == before[0], f"{what}: stored object {path} was changed"
    assert ino == before[1] and mtime == before[2], f"{what}: stored object {path} was rewritten"


def variant_objects(repo, name):
    return {n: p for n, p in repo.objects().items() if n.startswith(name + "@")}


def test_same_segment_twice_succeeds_and_writes_nothing(ws, repo, datadir):
    seg = f"pg_wal/{FIRST_SEGMENT}"
    r = ws.push(repo.root, seg, FIRST_SEGMENT, datadir)
    assert r[0] == 0, "first push failed\n" + describe(*r)
    obj = repo.key_path(FIRST_SEGMENT)
    assert obj.is_file(), f"no object at {obj}; repository holds {repo.files()}"
    assert zstd_decompress(obj) == (datadir / seg).read_bytes(), "stored object does not decode to the segment"

    before = snapshot(obj)
    files_before = repo.files()
    r = ws.push(repo.root, seg, FIRST_SEGMENT, datadir)
    assert r[0] == 0, "pushing the same segment again must succeed\n" + describe(*r)
    assert_unchanged(obj, before, "second push of the same segment")
    assert repo.files() == files_before, "second push of the same segment wrote files"


def test_different_segment_under_same_name_fails_with_both_checksums(ws, repo, datadir, work):
    seg = datadir / "pg_wal" / FIRST_SEGMENT
    r = ws.push(repo.root, seg, FIRST_SEGMENT, datadir)
    assert r[0] == 0, describe(*r)
    obj = repo.key_path(FIRST_SEGMENT)
    before = snapshot(obj)
    files_before = repo.files()
    stored_sha = hashlib.sha256(zstd_decompress(obj)).hexdigest()

    # Change a byte far from the page header: still a valid segment of this
    # cluster, only its content differs.
    other = pg_copy(seg, work / FIRST_SEGMENT,
                    offset=WAL_SEG_16M - 100, data=b"\x01")
    new_sha = sha256_file(other)
    assert new_sha != stored_sha

    rc, out, err = ws.push(repo.root, other, FIRST_SEGMENT, datadir)
    assert rc == 1, "a different segment under a stored name must fail with exit 1\n" + describe(rc, out, err)
    assert stored_sha in err, f"stderr lacks the stored SHA-256 {stored_sha}\n" + describe(rc, out, err)
    assert new_sha in err, f"stderr lacks the new file's SHA-256 {new_sha}\n" + describe(rc, out, err)
    assert_unchanged(obj, before, "differing segment")
    assert repo.files() == files_before, "a refused segment left files in the repository"


def test_differing_partial_is_kept_beside_the_first(ws, repo, datadir, work):
    name = FIRST_SEGMENT + ".partial"
    seg = datadir / "pg_wal" / FIRST_SEGMENT
    first = pg_copy(seg, work / ("a-" + name))
    r = ws.push(repo.root, first, name, datadir)
    assert r[0] == 0, "pushing a .partial failed\n" + describe(*r)
    obj = repo.key_path(name)
    assert obj.is_file(), f"no object at {obj}; repository holds {repo.files()}"
    assert zstd_decompress(obj) == first.read_bytes()
    before = snapshot(obj)

    second = pg_copy(seg, work / ("b-" + name), offset=WAL_SEG_16M - 100, data=b"\x02")
    new_sha = sha256_file(second)
    rc, out, err = ws.push(repo.root, second, name, datadir)
    assert rc == 0, "a differing .partial must be stored beside the first (exit 0)\n" + describe(rc, out, err)
    assert has_phrase(err, "warning"), "a differing .partial must be reported with a warning\n" + describe(rc, out, err)
    assert_unchanged(obj, before, "differing .partial")

    variants = variant_objects(repo, name)
    expected = f"{name}@{new_sha[:16]}"
    assert list(variants) == [expected], f"expected one variant object {expected}, found {sorted(variants)}"
    assert variants[expected].parent == obj.parent, "the variant object is not beside the first"
    assert zstd_decompress(variants[expected]) == second.read_bytes(), "the variant object has the wrong content"

    # Pushing the same differing file again finds it stored: nothing new.
    files_before = repo.files()
    r = ws.push(repo.root, second, name, datadir)
    assert r[0] == 0, "pushing the same differing .partial again must succeed\n" + describe(*r)
    assert repo.files() == files_before, "a repeated push of a stored variant wrote files"


def test_same_partial_twice_makes_no_variant(ws, repo, datadir, work):
    name = FIRST_SEGMENT + ".partial"
    part = pg_copy(datadir / "pg_wal" / FIRST_SEGMENT, work / name)
    for i in range(2):
        rc, out, err = ws.push(repo.root, part, name, datadir)
        assert rc == 0, f"push {i + 1} of the same .partial failed\n" + describe(rc, out, err)
    assert "warning" not in err.lower(), "an identical .partial must not warn\n" + describe(rc, out, err)
    assert not variant_objects(repo, name), f"an identical .partial made a variant: {repo.files()}"
    assert zstd_decompress(repo.key_path(name)) == part.read_bytes()


def test_backup_history_file_duplicates(ws, repo, datadir, work):
    name = "000000010000000000000002.00000028.backup"
    content = (b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
               b"STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n"
               b"CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n"
               b"START TIME: 2024-01-01 00:00:00 UTC\nLABEL: test\nSTART TIMELINE: 1\n"
               b"STOP TIME: 2024-01-01 00:00:01 UTC\nSTOP TIMELINE: 1\n")
    first = write_pg_file(work / ("a-" + name), content)
    for i in range(2):
        r = ws.push(repo.root, first, name, datadir)
        assert r[0] == 0, f"push {i + 1} of a .backup file failed\n" + describe(*r)
    obj = repo.key_path(name)
    assert zstd_decompress(obj) == content
    before = snapshot(obj)

    changed = content.replace(b"LABEL: test", b"LABEL: other")
    second = write_pg_file(work / ("b-" + name), changed)
    rc, out, err = ws.push(repo.root, second, name, datadir)
    assert rc == 0, "a differing .backup must be stored beside the first (exit 0)\n" + describe(rc, out, err)
    assert has_phrase(err, "warning"), describe(rc, out, err)
    assert_unchanged(obj, before, "differing .backup")
    expected = f"{name}@{hashlib.sha256(changed).hexdigest()[:16]}"
    variants = variant_objects(repo, name)
    assert list(variants) == [expected], f"expected {expected}, found {sorted(variants)}"
    assert zstd_decompress(variants[expected]) == changed


def test_history_file_round_trip_and_conflict(ws, repo, datadir, work):
    name = "00000002.history"
    hist = write_pg_file(work / name, HISTORY)
    r = ws.push(repo.root, hist, name, datadir)
    assert r[0] == 0, "pushing a .history file failed\n" + describe(*r)
    obj = repo.key_path(name)
    assert obj.is_file(), f"no object at {obj}; repository holds {repo.files()}"
    assert zstd_decompress(obj) == HISTORY

    r = ws.push(repo.root, hist, name, datadir)
    assert r[0] == 0, "pushing the same .history again must succeed\n" + describe(*r)

    out_dir = make_pg_dir(work / "out")
    target = out_dir / "RECOVERYHISTORY"
    r = ws.fetch(repo.root, name, target, datadir, "--mode=recovery")
    assert r[0] == 0, "fetching the .history file failed\n" + describe(*r)
    assert target.read_bytes() == HISTORY, "the fetched .history differs from the pushed one"

    before = snapshot(obj)
    files_before = repo.files()
    other = write_pg_file(work / ("other-" + name), HISTORY_OTHER)
    rc, out, err = ws.push(repo.root, other, name, datadir)
    assert rc == 1, "a differing .history must fail with exit 1\n" + describe(rc, out, err)
    for sha in (hashlib.sha256(HISTORY).hexdigest(), hashlib.sha256(HISTORY_OTHER).hexdigest()):
        assert sha in err, f"stderr lacks SHA-256 {sha}\n" + describe(rc, out, err)
    assert_unchanged(obj, before, "differing .history")
    assert repo.files() == files_before, "a refused .history left files in the repository"
    assert not re.search(r"00000002\.history@", " ".join(repo.files())), "a .history must never get a variant"
