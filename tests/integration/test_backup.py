"""walship backup against a real PostgreSQL (15 here, 13 and 17 in tests/matrix/run): archives streamed into the
repository as objects that plain `zstd -d` turns into the tars PostgreSQL
sent, a manifest.json that describes them, pg_verifybackup accepting the
result, and every way a backup must fail without leaving a usable-looking
backup behind (WAL never archived, damaged data pages, unreachable server,
another cluster's repository, bad options)."""

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile

from pgcluster import (
    PG_BIN,
    PG_MAJOR,
    check_run,
    chown_pg,
    describe,
    free_port,
    has_phrase,
    make_pg_dir,
    run,
    zstd_decompress,
)


def backup(ws, repo_root, cluster=None, *opts, dsn=None, timeout=120):
    dsn = dsn or f"host={cluster.dir} port={cluster.port} user=postgres dbname=postgres"
    cmd = [ws.walship, f"--config={ws.config}", "backup", f"--repo={repo_root}", "-d", dsn, *opts]
    return run(cmd, cwd=ws.work, timeout=timeout)


def archiving_cluster(ws, work, clusters, name="primary", **settings):
    pg = clusters.new(name).initdb()
    repo = ws.init(work / "repo", pg.data)
    pg.configure(archive_mode=True, archive_command=ws.archive_command(repo.root), **settings)
    pg.start()
    return pg, repo


def backups_dir(repo):
    return repo.root / repo.epoch / "backups"


def backup_files(repo):
    """Every file under <epoch>/backups/ (dot files included)."""
    root = backups_dir(repo)
    out = []
    for dirpath, _, filenames in os.walk(root):
        out.extend(os.path.relpath(os.path.join(dirpath, n), root) for n in filenames)
    return sorted(out)


def segment_names(start, stop, seg_size):
    """Segment names from start to stop on start's timeline."""
    per_log = 0x100000000 // seg_size
    tli = int(start[:8], 16)
    first = int(start[8:16], 16) * per_log + int(start[16:], 16)
    last = int(stop[8:16], 16) * per_log + int(stop[16:], 16)
    assert last >= first, f"stop_wal {stop} is before start_wal {start}"
    return [f"{tli:08X}{n // per_log:08X}{n % per_log:08X}" for n in range(first, last + 1)]


def lsn(text):
    hi, lo = text.split("/")
    return int(hi, 16) << 32 | int(lo, 16)


def tar_members(data):
    """Member names of a tar image, without a leading "./"."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return {m.name[2:] if m.name.startswith("./") else m.name for m in tf.getmembers()}


def tar_file(data, name):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        f = tf.extractfile(name)
        return f.read() if f else None


def check_backup(repo, backup_id, tablespaces=()):
    """Everything a user checks of a finished backup; returns (manifest.json, {object: content})."""
    bdir = backups_dir(repo) / backup_id
    with open(bdir / "manifest.json") as f:
        meta = json.load(f)
    assert meta["id"] == backup_id
    assert meta["format"] == 1
    assert meta["label"] == f"walship backup {backup_id}"
    assert meta["epoch"] == repo.epoch
    with open(repo.root / "walship.json") as f:
        epoch = json.load(f)["epochs"][-1]
    assert meta["system_identifier"] == epoch["system_identifier"]
    assert meta["pg_version"]["major"] == str(PG_MAJOR) and meta["pg_version"]["server_version_num"] // 10000 == PG_MAJOR
    assert meta["wal_segment_size"] == 16 * 1024 * 1024
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", meta["start_lsn"]) and re.fullmatch(r"[0-9A-F]+/[0-9A-F]+",
                                                                                    meta["stop_lsn"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["start_time"])
    assert meta["start_time"] <= meta["stop_time"]

    # Objects: the tar and manifest bytes PostgreSQL sent, decodable with zstd alone.
    contents = {}
    entries = list(meta["tablespaces"]) + [meta["backup_manifest"]]
    for entry in entries:
        path = bdir / entry["object"]
        assert path.is_file(), f"{entry['object']} listed in manifest.json is not in {bdir}"
        data = zstd_decompress(path)
        assert len(data) == entry["size"], f"{entry['object']}: {len(data)} bytes, manifest.json says {entry['size']}"
        assert path.stat().st_size == entry["stored_size"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{entry['object']}: SHA-256 differs"
        contents[entry["object"]] = data

    bases = [t for t in meta["tablespaces"] if t["oid"] is None]
    assert len(bases) == 1 and bases[0]["object"] == "base.tar" and bases[0]["location"] is None
    members = tar_members(contents["base.tar"])
    for name in ("PG_VERSION", "global/pg_control", "backup_label", "tablespace_map"):
        assert name in members, f"base.tar has no {name}: {sorted(members)[:20]}..."
    label = tar_file(contents["base.tar"], "backup_label").decode()
    assert f"LABEL: walship backup {backup_id}" in label
    assert f"START WAL LOCATION: {meta['start_lsn']} (file {meta['start_wal']})" in label

    tsmap = tar_file(contents["base.tar"], "tablespace_map").decode()
    want_map = "".join(f"{oid} {loc}\n" for oid, loc in tablespaces)
    assert tsmap == want_map, f"tablespace_map is {tsmap!r}, expected {want_map!r}"
    listed = {(t["oid"], t["location"]) for t in meta["tablespaces"] if t["oid"] is not None}
    assert listed == set(tablespaces), f"manifest.json lists tablespaces {listed}, expected {set(tablespaces)}"
    for t in meta["tablespaces"]:
        if t["oid"] is not None:
            assert t["object"] == f"{t['oid']}.tar"
            names = tar_members(contents[t["object"]])
            assert any(n.startswith(f"PG_{PG_MAJOR}_") for n in names), f"{t['object']} holds {sorted(names)}"

    pg_manifest = json.loads(contents["backup_manifest"])
    # Version 2 from PostgreSQL 17, with the cluster's system identifier.
    assert pg_manifest["PostgreSQL-Backup-Manifest-Version"] == (2 if PG_MAJOR >= 17 else 1)
    if PG_MAJOR >= 17:
        assert str(pg_manifest["System-Identifier"]) == str(meta["system_identifier"])
    assert pg_manifest["WAL-Ranges"][0]["Start-LSN"] == meta["start_lsn"]
    assert pg_manifest["WAL-Ranges"][0]["End-LSN"] == meta["stop_lsn"]
    assert pg_manifest["WAL-Ranges"][0]["Timeline"] == meta["timeline"]

    # The backup is usable only with its WAL: every segment from start_wal to stop_wal is stored.
    names = segment_names(meta["start_wal"], meta["stop_wal"], meta["wal_segment_size"])
    assert names[0] == meta["start_wal"] and names[-1] == meta["stop_wal"]
    for name in names:
        path = repo.key_path(name)
        assert path.is_file(), f"WAL file {name} needed by backup {backup_id} is not in the repository"
        assert len(zstd_decompress(path)) == meta["wal_segment_size"]
    return meta, contents


def verify_with_pg_verifybackup(work, meta, contents):
    """Extract the tars as pg_basebackup -Ft's would be, and let pg_verifybackup judge (-n: no WAL)."""
    out = make_pg_dir(work / f"verify-{meta['id']}")
    for t in meta["tablespaces"]:
        dest = out if t["oid"] is None else out / "pg_tblspc" / str(t["oid"])
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "-xf", "-", "-C", str(dest)], input=contents[t["object"]], check=True)
    (out / "backup_manifest").write_bytes(contents["backup_manifest"])
    chown_pg(out, recursive=True)
    check_run([PG_BIN / "pg_verifybackup", "-n", out])


def only_backup_id(repo):
    ids = sorted(p.name for p in backups_dir(repo).iterdir())
    assert len(ids) >= 1
    return ids


def test_backup_streams_verified_objects_and_tablespaces(ws, work, clusters):
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.sql("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g")

    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    ids = only_backup_id(repo)
    assert len(ids) == 1
    first = ids[0]
    assert re.fullmatch(r"\d{8}T\d{6}Z", first), first
    assert re.fullmatch(rf'backup "{first}" complete: .*, stored .*, .* s\n', out), out
    assert "\r" not in err, f"progress printed although stderr is not a terminal:\n{err}"
    meta, contents = check_backup(repo, first)
    assert meta["backup_manifest"]["object"] == "backup_manifest"
    verify_with_pg_verifybackup(work, meta, contents)

    # A user tablespace: its own <oid>.tar object, listed with oid and location.
    tsdir = make_pg_dir(work / "ts1", 0o700)
    pg.sql(f"CREATE TABLESPACE ts1 LOCATION '{tsdir}'")
    pg.sql("CREATE TABLE in_ts TABLESPACE ts1 AS SELECT g FROM generate_series(1, 5000) g")
    oid = pg.scalar("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")

    rc, out, err = backup(ws, repo.root, pg, "-q")
    assert rc == 0, describe(rc, out, err)
    assert out == "", f"-q printed a summary: {out!r}"
    second = [i for i in only_backup_id(repo) if i != first]
    assert len(second) == 1, only_backup_id(repo)
    # Taken within the same second as the first, the id gets a suffix.
    assert re.fullmatch(r"\d{8}T\d{6}Z(-2)?", second[0]), second
    meta2, contents2 = check_backup(repo, second[0], tablespaces=[(oid, str(tsdir))])
    assert f"{oid}.tar" in [t["object"] for t in meta2["tablespaces"]]
    verify_with_pg_verifybackup(work, meta2, contents2)
    assert lsn(meta2["start_lsn"]) >= lsn(meta["stop_lsn"])
    assert repo.dot_files() == [], f"temporary files left in the repository: {repo.dot_files()}"


def test_backup_fails_when_wal_is_not_archived(ws, work, clusters):
    pg = clusters.new("primary").initdb()
    repo = ws.init(work / "repo", pg.data)
    pg.configure(archive_mode=True, archive_command=ws.archive_command(repo.root))
    pg.start()
    # The settings are right (backup's checks pass), but walship-push (the postgres user) cannot
    # write in the epoch's WAL directory: every archive_command fails.
    wal_dir = repo.root / repo.epoch / "wal"
    wal_dir.mkdir(parents=True, exist_ok=True)
    chown_pg(repo.root / repo.epoch)
    for dirpath, dirnames, filenames in os.walk(wal_dir):
        for n in dirnames + filenames:
            os.chown(os.path.join(dirpath, n), 0, 0)
    os.chown(wal_dir, 0, 0)
    os.chmod(wal_dir, 0o755)

    rc, out, err = backup(ws, repo.root, pg, "--wal-timeout=12", timeout=90)
    assert rc == 1, describe(rc, out, err)
    m = re.search(r'error: WAL file "([0-9A-F]{24})" needed by the backup did not reach repository', err)
    assert m, f"the error does not name the missing WAL file:\n{err}"
    assert "within 12 seconds" in err
    assert "archive_command" in err, f"no hint about archive_command:\n{err}"
    # While it waited it said so every 5 s, with pg_stat_archiver's failure.
    assert re.search(rf'warning: waiting \d+ s of 12 for WAL file "{m.group(1)}": archiving is failing: '
                     r'pg_stat_archiver: failed_count [1-9]\d*, last_failed_wal "[0-9A-F]{24}" at ', err), err
    assert not repo.key_path(m.group(1)).exists()
    # Nothing that looks like a backup is left: no manifest.json, no objects.
    assert backup_files(repo) == [], f"a failed backup left files: {backup_files(repo)}"
    assert out == ""


def test_backup_fails_on_page_checksum_failure(ws, work, clusters):
    pg = clusters.new("primary").initdb(extra=["--data-checksums"])
    repo = ws.init(work / "repo", pg.data)
    # Nothing may read the damaged page before the backup does.
    pg.configure(autovacuum=False, archive_mode=True, archive_command=ws.archive_command(repo.root))
    pg.start()
    pg.sql("CREATE TABLE victim AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 2000) g")
    pg.sql("CHECKPOINT")
    relpath = pg.scalar("SELECT pg_relation_filepath('victim')")
    pg.stop()

    # Overwrite bytes in the middle of block 0, keeping its page header (24 bytes) intact.
    with open(pg.data / relpath, "r+b") as f:
        f.seek(4000)
        f.write(b"\xde\xad\xbe\xef" * 8)
    pg.start()

    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 1, describe(rc, out, err)
    assert "page checksum failure" in err and "XX001" in err, err
    assert re.search(rf'warning: server: checksum verification failed in file "\./{re.escape(relpath)}", block 0',
                     err), f"the server's warning naming the file is not shown:\n{err}"
    assert backup_files(repo) == [], f"a failed backup left files: {backup_files(repo)}"


def test_backup_refuses_another_clusters_repository(ws, work, clusters, foreign_datadir):
    pg = clusters.new("primary").initdb()
    pg.start()
    foreign = ws.init(work / "foreign-repo", foreign_datadir)

    rc, out, err = backup(ws, foreign.root, pg)
    assert rc == 1, describe(rc, out, err)
    assert f'repository "{foreign.root}" belongs to another cluster' in err, err
    assert not backups_dir(foreign).exists() or backup_files(foreign) == []


def test_backup_unreachable_server_and_usage(ws, work, repo):
    # Nothing listens there: libpq's own message comes through.
    dsn = f"host={work} port={free_port()} user=postgres dbname=postgres connect_timeout=5"
    rc, out, err = backup(ws, repo.root, dsn=dsn)
    assert rc == 1, describe(rc, out, err)
    # libpq's own words follow walship's: "connection to server on socket ... failed" from libpq 14,
    # "could not connect to server: No such file or directory" before (Debian 11's libpq 13).
    assert re.search(r"walship: error: could not connect to the server: (connection to server on socket|"
                     r"could not connect to server: No such file or directory)", err), err
    assert has_phrase(err, "No such file or directory"), err
    assert "hint:" in err and "replication" in err
    assert not backups_dir(repo).exists()

    cmd = [ws.walship, f"--config={ws.config}"]
    for args, words in [
        (["backup", f"--repo={repo.root}", "--wal-timeout=soon"], 'invalid value "soon" for --wal-timeout'),
        (["backup", f"--repo={repo.root}", "extra"], 'unexpected argument "extra"'),
        (["backup", f"--repo={repo.root}", "-D", str(work)], "takes no data directory"),
        (["backup", f"--repo={repo.root}", "-d"], 'option "-d" requires a value'),
        (["init", f"--repo={repo.root}", "--dbname=x"], 'option "--dbname" is not valid for walship init'),
    ]:
        rc, out, err = run(cmd + args, cwd=work)
        assert rc == 2, f"{args}: " + describe(rc, out, err)
        assert words in err, f"{args}: {err}"
