"""A real cluster archives through walship-push under a pgbench load; every
archived segment comes back byte for byte, through walship-fetch and through
plain `zstd -d`."""

import os
import pwd

from pgcluster import FIRST_SEGMENT, describe, make_pg_dir, run, sha256_file, zstd_sha256


def test_archive_under_pgbench_load(ws, work, clusters):
    pg = clusters.new("primary").initdb()
    repo = ws.init(work / "repo", pg.data)
    # wal_keep_size keeps the archived segments in pg_wal to compare with.
    pg.configure(archive_mode=True, archive_command=ws.archive_command(repo.root), wal_keep_size="1GB")
    pg.start()

    pg.pgbench("-i", "-s", "5", "-q")
    pg.pgbench("-c", "2", "-j", "2", "-T", "15")
    last = None
    for _ in range(3):
        last = pg.switch_wal()
    pg.wait_archived(last, timeout=180)

    pg_wal = pg.data / "pg_wal"
    done = sorted(p.name[: -len(".done")] for p in (pg_wal / "archive_status").glob("*.done"))
    objects = repo.objects()
    assert len(done) >= 5, f"expected at least 5 archived segments, PostgreSQL reports {done}"
    assert set(objects) == set(done), (
        f"repository objects and archived files differ:\n only in repository: {sorted(set(objects) - set(done))}\n"
        f" only archived: {sorted(set(done) - set(objects))}"
    )
    assert repo.dot_files() == [], f"temporary files left in the repository: {repo.dot_files()}"

    out_dir = make_pg_dir(work / "out")
    for name in done:
        original = pg_wal / name
        assert original.exists(), f"{name} is no longer in pg_wal (wal_keep_size should keep it)"
        want = sha256_file(original)
        assert objects[name] == repo.key_path(name), f"{name} stored at {objects[name]}, not {repo.key_path(name)}"
        assert zstd_sha256(objects[name]) == want, f"zstd -d of the stored {name} differs from pg_wal's copy"

        target = out_dir / name
        rc, out, err = ws.fetch(repo.root, name, target, pg.data, "--mode=recovery")
        assert rc == 0, f"walship-fetch {name} failed\n" + describe(rc, out, err)
        assert sha256_file(target) == want, f"walship-fetch of {name} differs from pg_wal's copy"
        target.unlink()

    assert "walship-push: error" not in pg.log_text(), f"walship-push logged errors:\n{pg.log_tail()}"


def test_init_as_root_gives_the_repository_to_the_data_directory_owner(ws, work, tmp, datadir):
    """root runs walship init for postgres's cluster: the directories init makes and walship.json go to
    postgres, init says so, and walship-push run as postgres stores into it.  A repository directory that
    already existed, owned by root, is left as it is with a warning saying how to fix it."""
    pg_uid = pwd.getpwnam("postgres").pw_uid
    top = tmp / "made-by-root"
    target = top / "sub" / "repo"
    cmd = [ws.walship, f"--config={ws.config}", "init", f"--repo={target}", f"--pgdata={datadir}"]
    rc, out, err = run(cmd, cwd=work, user=None)
    assert rc == 0, describe(rc, out, err)
    assert f'repository "{target}" belongs to postgres, the owner of the data directory' in out, out
    for p in (top, top / "sub", target, target / "walship.json"):
        assert os.lstat(p).st_uid == pg_uid, f"{p} is owned by uid {os.lstat(p).st_uid}, not postgres"
    assert os.lstat(tmp).st_uid == 0, "init changed the owner of a directory it did not make"
    rc, out, err = ws.push(target, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir)
    assert rc == 0, "walship-push as postgres into the repository root made\n" + describe(rc, out, err)

    existing = tmp / "root-owned"
    existing.mkdir(mode=0o755)
    cmd = [ws.walship, f"--config={ws.config}", "init", f"--repo={existing}", f"--pgdata={datadir}"]
    rc, out, err = run(cmd, cwd=work, user=None)
    assert rc == 0, describe(rc, out, err)
    assert (f'warning: repository directory "{existing}" belongs to root, not to postgres, the owner of data '
            f'directory "{datadir}"') in err, err
    assert f"hint: Give it to postgres: chown -R postgres: {existing}" in err, err
    assert os.lstat(existing).st_uid == 0
    rc, out, err = ws.push(existing, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir)
    assert rc == 1, "the warning said postgres cannot write it\n" + describe(rc, out, err)
