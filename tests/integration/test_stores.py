"""The first two issues' scenarios on every remote store: a cluster archives
under pgbench into an SFTP or S3 repository (plain and encrypted), every
segment comes back byte for byte through walship-fetch and, unencrypted, through
an independent reader (the server's file system for SFTP, boto3 for S3) and
stock `zstd -d`; a base backup is rebuilt to a point in time with exactly the
rows of that moment; a rebuilt standby follows the archive alone.  And the
storage contract suite (tests/unit/test_store_contract.c) against each real
server."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from pgcluster import (
    FIRST_SEGMENT,
    PG_BIN,
    check_run,
    describe,
    free_port,
    make_pg_dir,
    popen,
    run,
    sha256_file,
    wait_for,
    write_pg_file,
    zstd_sha256,
)
from test_backup import backup
from test_rebuild import check_rebuilt, make_marks, rebuild, rows, stop_server

PREFIX = "cluster-a"


class Remote:
    """A repository on a remote store, with an independent way to read its objects."""

    def __init__(self, kind, root, server, bucket=None, encrypted=False, server_root=None):
        self.kind = kind
        self.root = root  # the repository URL walship is given
        self.server = server
        self.bucket = bucket
        self.encrypted = encrypted
        self.server_root = server_root  # SFTP: the repository's directory on this machine

    def read(self, key):
        """The stored bytes of key, read without walship."""
        if self.bucket is not None:
            obj = self.server.boto3_client().get_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}")
            return obj["Body"].read()
        return (self.server_root / key).read_bytes()

    def keys(self, prefix=""):
        if self.bucket is not None:
            client = self.server.boto3_client()
            out = []
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                        Prefix=f"{PREFIX}/{prefix}"):
                out.extend(o["Key"][len(PREFIX) + 1:] for o in page.get("Contents", []))
            return sorted(out)
        base = self.server_root
        out = []
        for dirpath, _, files in os.walk(base):
            for n in files:
                rel = os.path.relpath(os.path.join(dirpath, n), base)
                if rel.startswith(prefix):
                    out.append(rel)
        return sorted(out)

    @property
    def epoch(self):
        return json.loads(self.read("walship.json"))["epochs"][-1]["id"]

    def wal_key(self, name):
        return f"{self.epoch}/wal/{name[:16]}/{name}"


@pytest.fixture(params=["sftp", "s3", "s3-encrypted"])
def remote(request, ws, work, tmp):
    kind = request.param
    lines = []
    if kind.startswith("sftp"):
        sshd = request.getfixturevalue("sshd")
        base = make_pg_dir(tmp / "sftp-server", 0o755)
        server_root = base / "repo"
        rem = Remote(kind, sshd.url(str(server_root)), sshd, server_root=server_root)
        lines.append(sshd.config_text(str(server_root)))
    else:
        s3 = request.getfixturevalue("s3server")
        bucket = request.getfixturevalue("s3bucket")
        rem = Remote(kind, s3.url(bucket, PREFIX), s3, bucket=bucket)
        lines.append(s3.config_text(bucket, PREFIX))
    if kind.endswith("-encrypted"):
        key = write_pg_file(work / "repo.key", os.urandom(32).hex().encode() + b"\n", 0o600)
        lines.append(f"encryption-key-file = {key}\n")
        rem.encrypted = True
    write_pg_file(ws.config, "".join(lines).encode(), 0o600)
    return rem


def init(ws, rem, pgdata):
    opts = ["--encrypt"] if rem.encrypted else []
    check_run([ws.walship, f"--config={ws.config}", "init", f"--repo={rem.root}", f"--pgdata={pgdata}", *opts],
              cwd=ws.work)


def archiving_primary(ws, rem, clusters, **settings):
    pg = clusters.new("primary").initdb()
    init(ws, rem, pg.data)
    pg.configure(archive_mode=True, archive_command=ws.archive_command(rem.root), **settings)
    pg.start()
    return pg


def test_archive_under_pgbench(remote, ws, work, clusters):
    pg = archiving_primary(ws, remote, clusters, wal_keep_size="1GB")
    pg.pgbench("-i", "-s", "2", "-q")
    pg.pgbench("-c", "2", "-j", "2", "-T", "5")
    last = None
    for _ in range(2):
        last = pg.switch_wal()
    pg.wait_archived(last, timeout=180)

    pg_wal = pg.data / "pg_wal"
    done = sorted(p.name[: -len(".done")] for p in (pg_wal / "archive_status").glob("*.done"))
    assert len(done) >= 3, f"expected at least 3 archived segments, PostgreSQL reports {done}"
    stored = [k.rsplit("/", 1)[-1] for k in remote.keys(f"{remote.epoch}/wal/")]
    visible = sorted(n for n in stored if not n.startswith("."))
    assert visible == done, f"repository holds {visible}, PostgreSQL archived {done}"

    out_dir = make_pg_dir(work / "out")
    for name in done:
        want = sha256_file(pg_wal / name)
        target = out_dir / name
        rc, out, err = ws.fetch(remote.root, name, target, pg.data, "--mode=recovery")
        assert rc == 0, f"walship-fetch {name} from {remote.kind}\n" + describe(rc, out, err)
        assert sha256_file(target) == want, f"walship-fetch of {name} differs from pg_wal's copy"
        target.unlink()

        stored_bytes = remote.read(remote.wal_key(name))
        raw = work / "raw.zst"
        raw.write_bytes(stored_bytes)
        if remote.encrypted:
            segment = (pg_wal / name).read_bytes()
            assert segment[8192:8192 + 64] not in stored_bytes, f"{name}: plaintext found in the stored object"
            r = subprocess.run(["zstd", "-d", "-c", raw], capture_output=True)
            assert r.returncode != 0, f"zstd -d decoded the encrypted object {name}"
        else:
            assert zstd_sha256(raw) == want, f"zstd -d of the object read without walship differs for {name}"
    assert "walship-push: error" not in pg.log_text(), pg.log_tail()


def test_backup_then_rebuild_to_a_time(remote, ws, work, clusters, tmp):
    pg = archiving_primary(ws, remote, clusters)
    pg.sql("CREATE TABLE marker (id int PRIMARY KEY, at timestamptz NOT NULL)")
    pg.pgbench("-i", "-s", "1", "-q")
    rc, out, err = backup(ws, remote.root, pg)
    assert rc == 0, describe(rc, out, err)
    # Backup stop times are kept to the second: leave the target clearly after it.
    time.sleep(1.5)

    bench = popen([PG_BIN / "pgbench", "-h", pg.dir, "-p", pg.port, "-U", "postgres", "-c", "2", "-j", "2",
                   "-T", "5", "postgres"], stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
    try:
        wait_for(lambda: pg.scalar("SELECT count(*) FROM pgbench_history") > 0, 30, "pgbench did not start")
        marks = make_marks(pg, n=2)
    finally:
        bench.wait(timeout=60)
    last = pg.switch_wal()
    pg.wait_archived(last, timeout=180)

    cmd = [ws.walship, f"--config={ws.config}", "list", f"--repo={remote.root}"]
    out, err = check_run(cmd, cwd=ws.work)
    assert "backup" in out.lower(), out

    dest = make_pg_dir(tmp / "rebuilt", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, remote, dest, f"--target-time={marks.time[1]}", "--target-action=promote",
                               "--start", f"--port={port}", timeout=300)
        assert rc == 0 and "server was promoted" in out, describe(rc, out, err)
        check_rebuilt(pg, dest, port, [1], marks.count[1], f"rebuild from {remote.kind}")
    finally:
        stop_server(dest)


def test_rebuilt_standby_follows_the_archive(remote, ws, work, clusters, tmp):
    pg = archiving_primary(ws, remote, clusters)
    pg.sql("CREATE TABLE marker (id int PRIMARY KEY, at timestamptz NOT NULL)")
    rc, out, err = backup(ws, remote.root, pg)
    assert rc == 0, describe(rc, out, err)
    pg.sql("INSERT INTO marker VALUES (1, now())")
    pg.wait_archived(pg.switch_wal())

    standby = make_pg_dir(tmp / "standby", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, remote, standby, "--standby", "--start", f"--port={port}", timeout=300)
        assert rc == 0 and "the standby is running" in out, describe(rc, out, err)

        def markers():
            return [r[0] for r in rows(pg.dir, port, "SELECT id FROM marker ORDER BY id")]

        wait_for(lambda: markers() == [1], 120, lambda: f"standby has {markers()}")
        # Rows reach the standby only through the archive (no primary_conninfo).
        pg.sql("INSERT INTO marker VALUES (2, now())")
        pg.wait_archived(pg.switch_wal())
        wait_for(lambda: markers() == [1, 2], 120, lambda: f"standby did not replay from the archive: {markers()}")
        assert rows(pg.dir, port, "SELECT pg_is_in_recovery()")[0][0] is True
    finally:
        stop_server(standby)


def test_upgrade_replaces_walship_json_and_each_cluster_fetches_its_own(remote, ws, work, datadir,
                                                                         foreign_datadir):
    """walship upgrade replaces walship.json in place (posix-rename over SFTP, an overwriting PUT in S3)."""
    seg = f"pg_wal/{FIRST_SEGMENT}"
    init(ws, remote, datadir)
    rc, out, err = ws.push(remote.root, seg, FIRST_SEGMENT, datadir)
    assert rc == 0, describe(rc, out, err)
    rc, out, err = run([ws.walship, f"--config={ws.config}", "upgrade", f"--repo={remote.root}",
                        f"--pgdata={foreign_datadir}"], cwd=ws.work)
    assert rc == 0 and 'added epoch "15-2"' in out, describe(rc, out, err)
    meta = json.loads(remote.read("walship.json"))
    assert [e["id"] for e in meta["epochs"]] == ["15-1", "15-2"], meta
    rc, out, err = ws.push(remote.root, seg, FIRST_SEGMENT, foreign_datadir)
    assert rc == 0, describe(rc, out, err)
    out_dir = make_pg_dir(work / "out")
    for pgdata in (datadir, foreign_datadir):
        target = out_dir / "RECOVERYXLOG"
        rc, out, err = ws.fetch(remote.root, FIRST_SEGMENT, target, pgdata, "--mode=recovery")
        assert rc == 0, describe(rc, out, err)
        assert sha256_file(target) == sha256_file(pgdata / seg), f"{pgdata} fetched the other cluster's file"
        target.unlink()
    assert not any(k.rsplit("/", 1)[-1].startswith(".") for k in remote.keys()), remote.keys()


# ---------------------------------------------------------------------------
# the storage contract suite against the real servers


def contract_binary():
    default = Path(__file__).resolve().parents[2] / "build" / "testing" / "bin"
    bindir = Path(os.environ.get("WALSHIP_BIN") or default)
    prog = bindir.parent / "tests" / "test_store_contract"
    assert prog.is_file(), f"{prog} is missing: build it with make testing (the unit tests build it)"
    return prog


@pytest.mark.parametrize("kind", ["sftp", "s3"])
def test_store_contract(kind, request, tmp):
    extra_env = {}
    if kind == "sftp":
        sshd = request.getfixturevalue("sshd")
        root = make_pg_dir(tmp / "contract", 0o755)
        url = sshd.url(str(root))
        text = sshd.config_text(str(root))
        # The server's sync wrapper logs each directory sync: a key found taken must be synced too.
        extra_env["WALSHIP_TEST_SYNC_LOG"] = str(sshd.sync_log)
    else:
        s3 = request.getfixturevalue("s3server")
        bucket = request.getfixturevalue("s3bucket")
        url = s3.url(bucket, "contract")
        # 5 MiB parts: the 6 MiB object of the suite goes through a multipart upload.
        text = s3.config_text(bucket, "contract") + "s3-part-size = 5\n"
    conf = tmp / "contract.conf"
    conf.write_text(text)
    os.chmod(conf, 0o600)
    env = dict(os.environ, WALSHIP_TEST_STORE_URL=url, WALSHIP_TEST_STORE_CONFIG=str(conf), **extra_env)
    r = subprocess.run([contract_binary()], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"store contract failed on {kind} ({url}):\n{r.stdout}\n{r.stderr}"
    assert "15 test(s) run" in r.stdout + r.stderr and "PASSED" in r.stdout + r.stderr, r.stdout + r.stderr
