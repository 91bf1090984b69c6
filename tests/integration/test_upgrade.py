"""walship upgrade: after pg_upgrade (a new system identifier), an explicit new
epoch; the new cluster's WAL goes beside the old cluster's, each fetch reads
its own cluster's epoch, and the old cluster can no longer push."""

import json

from pgcluster import FIRST_SEGMENT, PG_MAJOR, describe, has_phrase, make_pg_dir, run, sha256_file, zstd_sha256

SEG = f"pg_wal/{FIRST_SEGMENT}"
# The epochs of the major under test (15 here; 13 and 17 in tests/matrix/run).
E1, E2 = f"{PG_MAJOR}-1", f"{PG_MAJOR}-2"


def upgrade(ws, repo, pgdata):
    return run([ws.walship, f"--config={ws.config}", "upgrade", f"--repo={repo.root}", f"--pgdata={pgdata}"],
               cwd=ws.work)


def epochs(repo):
    with open(repo.root / "walship.json") as f:
        return [(e["id"], e["system_identifier"]) for e in json.load(f)["epochs"]]


def test_upgrade_adds_an_epoch_for_the_new_cluster(ws, repo, datadir, foreign_datadir, work):
    rc, out, err = ws.push(repo.root, SEG, FIRST_SEGMENT, datadir)
    assert rc == 0, describe(rc, out, err)

    # Before the upgrade the new cluster is refused, with the reason.
    rc, out, err = ws.push(repo.root, SEG, FIRST_SEGMENT, foreign_datadir)
    assert rc == 1 and has_phrase(err, "another cluster"), describe(rc, out, err)

    rc, out, err = upgrade(ws, repo, foreign_datadir)
    assert rc == 0, describe(rc, out, err)
    assert has_phrase(out, f'added epoch "{E2}"'), describe(rc, out, err)
    got = epochs(repo)
    assert [e[0] for e in got] == [E1, E2], got
    assert got[0][1] != got[1][1]

    # The new cluster pushes into the second epoch; its segment has the same name as the old one's.
    rc, out, err = ws.push(repo.root, SEG, FIRST_SEGMENT, foreign_datadir)
    assert rc == 0, describe(rc, out, err)
    assert zstd_sha256(repo.key_path(FIRST_SEGMENT, epoch=E2)) == sha256_file(foreign_datadir / SEG)
    assert zstd_sha256(repo.key_path(FIRST_SEGMENT, epoch=E1)) == sha256_file(datadir / SEG)

    # Each data directory fetches its own cluster's segment.
    out_dir = make_pg_dir(work / "out")
    for pgdata in (datadir, foreign_datadir):
        target = out_dir / "RECOVERYXLOG"
        rc, out, err = ws.fetch(repo.root, FIRST_SEGMENT, target, pgdata, "--mode=recovery")
        assert rc == 0, describe(rc, out, err)
        assert sha256_file(target) == sha256_file(pgdata / SEG), f"fetch from {pgdata} got the other epoch's file"
        target.unlink()

    # The old cluster has been superseded: its pushes are refused, not mixed in.
    rc, out, err = ws.push(repo.root, SEG, FIRST_SEGMENT, datadir)
    assert rc == 1 and has_phrase(err, "newer cluster"), describe(rc, out, err)


def test_upgrade_twice_is_a_no_op_and_going_back_is_refused(ws, repo, datadir, foreign_datadir):
    rc, out, err = upgrade(ws, repo, foreign_datadir)
    assert rc == 0, describe(rc, out, err)
    before = (repo.root / "walship.json").read_bytes()
    rc, out, err = upgrade(ws, repo, foreign_datadir)
    assert rc == 0 and has_phrase(out, "up to date"), describe(rc, out, err)
    assert (repo.root / "walship.json").read_bytes() == before

    rc, out, err = upgrade(ws, repo, datadir)
    assert rc == 1 and has_phrase(err, "already has epoch"), describe(rc, out, err)
    assert (repo.root / "walship.json").read_bytes() == before


def test_upgrade_needs_an_initialised_repository(ws, foreign_datadir, work):
    empty = make_pg_dir(work / "empty", 0o755)
    rc, out, err = run([ws.walship, f"--config={ws.config}", "upgrade", f"--repo={empty}",
                        f"--pgdata={foreign_datadir}"], cwd=ws.work)
    assert rc == 1 and has_phrase(err, "not initialised"), describe(rc, out, err)
    assert list(empty.iterdir()) == [], "upgrade must not create a repository"
