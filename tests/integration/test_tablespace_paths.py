"""Where a tablespace goes: manifest.json records each tablespace's location, and
walship rebuild creates and fills that directory, possibly as root.  A location
read from the repository must be an absolute, normalised path as PostgreSQL
records it; walship backup records hand-made pg_tblspc links that way, and
refuses (before storing anything) one it cannot."""

import json
import os

from pgcluster import describe, make_pg_dir, tree_listing, write_pg_file
from test_backup import archiving_cluster, backup, backup_files, backups_dir
from test_rebuild import rebuild


def listing_outside_repo(tmp, repo):
    """Every file under tmp but the repository's (where a rebuild may keep a lease)."""
    skip = os.path.relpath(repo.root, tmp) + "/"
    return {k: v for k, v in tree_listing(tmp).items() if not (k + "/").startswith(skip)}


def cluster_with_tablespace(ws, work, clusters):
    pg, repo = archiving_cluster(ws, work, clusters)
    tsdir = make_pg_dir(work / "ts1", 0o700)
    pg.sql(f"CREATE TABLESPACE ts1 LOCATION '{tsdir}'")
    pg.sql("CREATE TABLE in_ts TABLESPACE ts1 AS SELECT g FROM generate_series(1, 100) g")
    oid = pg.scalar("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")
    return pg, repo, tsdir, oid


def test_rebuild_refuses_a_tablespace_location_that_is_not_absolute(ws, work, clusters, tmp):
    pg, repo, tsdir, oid = cluster_with_tablespace(ws, work, clusters)
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    pg.wait_archived(pg.switch_wal())
    pg.stop()
    (bid,) = [p.name for p in backups_dir(repo).iterdir()]
    path = backups_dir(repo) / bid / "manifest.json"
    mode = os.stat(path).st_mode & 0o777
    original = json.loads(path.read_text())
    ts_before = tree_listing(tsdir)

    # Each would land beside the working directory or in it (all inside this test's tmp).
    for bad in ("relative-ts", "../escaped-ts", f"{tsdir}/../dotdot-ts", f"{tsdir}/"):
        meta = json.loads(json.dumps(original))
        for t in meta["tablespaces"]:
            if t["oid"] == oid:
                t["location"] = bad
        write_pg_file(path, json.dumps(meta, indent=2) + "\n", mode)
        before = listing_outside_repo(tmp, repo)
        dest = tmp / "rebuilt"
        rc, out, err = rebuild(ws, repo, dest, f"--backup={bid}")
        assert rc != 0, f"{bad}: " + describe(rc, out, err)
        assert f'backup "{bid}" is skipped' in err, f"{bad}: " + describe(rc, out, err)
        assert f"tablespace {oid} has a location that is not an absolute, normalised path" in err, err
        assert not dest.exists(), f"{bad}: rebuild created {dest}"
        for name in ("relative-ts", "escaped-ts", "dotdot-ts"):
            assert not (ws.work / name).exists() and not (tmp / name).exists(), f"{bad}: {name} was created"
        assert listing_outside_repo(tmp, repo) == before, f"{bad}: rebuild changed files under {tmp}"
        assert tree_listing(tsdir) == ts_before


def test_backup_records_hand_made_tablespace_links_as_postgresql_does(ws, work, clusters):
    pg, repo, tsdir, oid = cluster_with_tablespace(ws, work, clusters)
    link = pg.data / "pg_tblspc" / str(oid)

    # Re-pointed by hand with a trailing slash: the same directory, recorded without it.
    pg.stop()
    os.unlink(link)
    os.symlink(f"{tsdir}//", link)
    pg.start()
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    (bid,) = [p.name for p in backups_dir(repo).iterdir()]
    meta = json.loads((backups_dir(repo) / bid / "manifest.json").read_text())
    assert [t["location"] for t in meta["tablespaces"] if t["oid"] == oid] == [str(tsdir)]

    # A relative link cannot be recorded: refused before anything is stored.
    pg.stop()
    os.unlink(link)
    os.symlink(os.path.relpath(tsdir, link.parent), link)
    pg.start()
    assert pg.scalar("SELECT count(*) FROM in_ts") == 100
    stored = backup_files(repo)
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 1, describe(rc, out, err)
    assert f'tablespace {oid} is at "{os.path.relpath(tsdir, link.parent)}", not an absolute path' in err, err
    assert f"make pg_tblspc/{oid} a symbolic link to the tablespace's absolute path" in err, err
    assert backup_files(repo) == stored, "the refused backup stored objects"
