"""A copy of a real Debian cluster (pg_createcluster: its configuration in /etc/postgresql/15/NAME,
outside the data directory): walship backup keeps that configuration, and walship rebuild makes a
copy that is self-contained (its own postgresql.conf, pg_hba.conf, pg_ident.conf and conf.d, no
line naming the source cluster's files) and starts, without touching the source cluster.  A port
the copy would share with a running server is refused before anything starts."""

import hashlib
import json
import os
from pathlib import Path

from pgcluster import PG_BIN, describe, free_port, make_pg_dir, run
from test_backup import backup
from test_rebuild import rebuild, rows, stop_server


def debian_primary(ws, work, debian_clusters, tag="primary"):
    dc = debian_clusters.new(tag)
    repo = ws.init(work / "repo", dc.data)
    dc.configure(archive_mode=True, archive_command=ws.archive_command(repo.root))
    dc.start()
    return dc, repo


def fill_and_archive(dc):
    dc.sql("CREATE TABLE kept (id int PRIMARY KEY, v text NOT NULL)")
    dc.sql("INSERT INTO kept SELECT g, 'row ' || g FROM generate_series(1, 100) g")
    last = dc.switch_wal()
    dc.wait_archived(last)


def tree_hash(root):
    """Every file and directory under root: path -> (mode, SHA-256 of the content)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else ""
            out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, digest)
    return out


def manifest(repo):
    found = list((repo.root / repo.epoch / "backups").glob("*/manifest.json"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text()), found[0].parent


def rebuild_log(dest):
    log = dest / "walship-rebuild.log"
    return "\nrebuild log:\n" + (log.read_text(errors="replace") if log.exists() else "(none)")


def test_backup_keeps_the_configuration_and_the_copy_is_self_contained(ws, work, debian_clusters, tmp):
    dc, repo = debian_primary(ws, work, debian_clusters)
    rc, out, err = backup(ws, repo.root, dc)
    assert rc == 0, describe(rc, out, err)
    assert "holds no copy" not in err, err

    meta, bdir = manifest(repo)
    cfg = meta["config"]
    assert cfg["config_file"] == str(dc.conf)
    assert cfg["hba_file"] == str(dc.etc / "pg_hba.conf")
    assert cfg["ident_file"] == str(dc.etc / "pg_ident.conf")
    assert cfg["data_directory"] == str(dc.data)
    kept = {f["path"]: f for f in cfg["files"]}
    for p in (dc.conf, dc.etc / "pg_hba.conf", dc.etc / "pg_ident.conf", dc.test_conf):
        assert str(p) in kept, (p, sorted(kept))
        assert kept[str(p)]["size"] == p.stat().st_size
        assert kept[str(p)]["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert cfg["missing"] == []
    assert cfg["object"] == "config-files" and (bdir / "config-files").is_file()
    assert cfg["size"] == sum(f["size"] for f in cfg["files"])

    rc, out, err = run([ws.walship, f"--config={ws.config}", "verify", f"--repo={repo.root}", "--full"],
                       cwd=ws.work)
    assert rc == 0, describe(rc, out, err)

    fill_and_archive(dc)
    # Stopped, the source's files hold still: any write the copy made to them would show.
    dc.stop()
    etc_before, data_before = tree_hash(dc.etc), tree_hash(dc.data)

    dest = make_pg_dir(tmp / "copy", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, dest, "--start", f"--port={port}")
        assert rc == 0, describe(rc, out, err) + rebuild_log(dest)
        assert "configuration: postgresql.conf from the backup" in out, out
        assert (dest / "pg_hba.conf").read_bytes() == (dc.etc / "pg_hba.conf").read_bytes()
        assert (dest / "pg_ident.conf").read_bytes() == (dc.etc / "pg_ident.conf").read_bytes()
        assert (dest / "conf.d" / "walship-tests.conf").read_bytes() == dc.test_conf.read_bytes()
        q = lambda sql: rows(dc.dir, port, sql)[0][0]  # noqa: E731
        assert q("SELECT count(*) FROM kept") == 100
        assert q("SHOW hba_file") == str(dest / "pg_hba.conf")
        assert q("SHOW ident_file") == str(dest / "pg_ident.conf")
        assert q("SHOW config_file") == str(dest / "postgresql.conf")
        assert q("SHOW data_directory") == str(dest)
        assert q("SHOW external_pid_file") == ""
        # The primary's settings from conf.d are in force (archive_mode is turned off by rebuild).
        assert q("SHOW shared_buffers") == "32MB"
        conf = (dest / "postgresql.conf").read_text()
        assert "# walship rebuild: removed (the copy's data directory is where it is started): " \
               f"data_directory = '{dc.data}'" in conf, conf
        assert f"include_dir = '{dest}/conf.d'" in conf, conf
    finally:
        stop_server(dest)
    assert tree_hash(dc.etc) == etc_before
    assert tree_hash(dc.data) == data_before

    # verify checks the new object as the others: a damaged one is named.
    obj = bdir / "config-files"
    raw = bytearray(obj.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    obj.write_bytes(bytes(raw))
    rc, out, err = run([ws.walship, f"--config={ws.config}", "verify", f"--repo={repo.root}", "--full"],
                       cwd=ws.work)
    assert rc != 0 and "config-files" in err, describe(rc, out, err)


def test_config_from_the_source_cluster_is_made_safe(ws, work, debian_clusters, tmp):
    dc, repo = debian_primary(ws, work, debian_clusters)
    rc, out, err = backup(ws, repo.root, dc)
    assert rc == 0, describe(rc, out, err)
    fill_and_archive(dc)
    etc_before = tree_hash(dc.etc)
    pid_before = (dc.data / "postmaster.pid").read_text()

    dest = make_pg_dir(tmp / "copy-from", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, dest, f"--config-from={dc.conf}", "--start", f"--port={port}")
        assert rc == 0, describe(rc, out, err) + rebuild_log(dest)
        assert "configuration: postgresql.conf from --config-from" in out, out
        conf = (dest / "postgresql.conf").read_text()
        live = [ln for ln in conf.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        assert not any(ln.split()[0] in ("data_directory", "external_pid_file", "hba_file", "ident_file")
                       for ln in live), conf
        assert f"include_dir = '{dest}/conf.d'" in conf, conf
        assert (dest / "conf.d" / "walship-tests.conf").read_bytes() == dc.test_conf.read_bytes()
        assert rows(dc.dir, port, "SHOW data_directory")[0][0] == str(dest)
        assert rows(dc.dir, port, "SELECT count(*) FROM kept")[0][0] == 100
    finally:
        stop_server(dest)
    assert tree_hash(dc.etc) == etc_before
    assert (dc.data / "postmaster.pid").read_text() == pid_before
    assert dc.scalar("SELECT count(*) FROM kept") == 100
    assert dc.scalar("SHOW data_directory") == str(dc.data)


def test_config_from_refuses_an_include_that_does_not_exist(ws, work, debian_clusters, tmp):
    dc, repo = debian_primary(ws, work, debian_clusters)
    rc, out, err = backup(ws, repo.root, dc)
    assert rc == 0, describe(rc, out, err)
    fill_and_archive(dc)
    mine = tmp / "mine.conf"
    mine.write_text("shared_buffers = 16MB\ninclude 'nowhere.conf'\n")
    os.chmod(mine, 0o644)
    dest = make_pg_dir(tmp / "copy-bad", 0o700)
    rc, out, err = rebuild(ws, repo, dest, f"--config-from={mine}")
    assert rc != 0, describe(rc, out, err)
    assert f"{mine}:2: include names \"{tmp}/nowhere.conf\", which does not exist" in err, err


def test_start_refuses_the_port_of_the_running_primary(ws, work, debian_clusters, tmp):
    dc, repo = debian_primary(ws, work, debian_clusters)
    rc, out, err = backup(ws, repo.root, dc)
    assert rc == 0, describe(rc, out, err)
    fill_and_archive(dc)
    assert f"port = {dc.port}" in dc.conf.read_text()

    dest = make_pg_dir(tmp / "copy-port", 0o700)
    try:
        rc, out, err = rebuild(ws, repo, dest, "--start")
        assert rc != 0, describe(rc, out, err)
        assert f"port {dc.port} is in use by the server of data directory \"{dc.data}\"" in err, err
        assert "--port" in err, err
        assert not (dest / "postmaster.pid").exists()
        assert not (dest / "walship-rebuild.log").exists()
    finally:
        stop_server(dest)
    assert dc.scalar("SHOW data_directory") == str(dc.data)


def test_backup_by_a_role_that_may_not_read_the_files(ws, work, debian_clusters, tmp):
    """A replication role without superuser: SHOW config_file is denied.  The backup succeeds and
    names what it could not keep; the copy gets a minimal, local-only pg_hba.conf and says so."""
    dc, repo = debian_primary(ws, work, debian_clusters)
    dc.sql("CREATE ROLE walrep LOGIN REPLICATION")
    dsn = f"host={dc.dir} port={dc.port} user=walrep dbname=postgres"
    rc, out, err = backup(ws, repo.root, dsn=dsn)
    assert rc == 0, describe(rc, out, err)
    assert "holds no copy of" in err and "config_file" in err, err
    meta, _ = manifest(repo)
    missing = {m["what"] for m in meta["config"]["missing"]}
    assert {"config_file", "hba_file", "ident_file", "data_directory"} <= missing, meta["config"]
    assert meta["config"]["files"] == [] and "object" not in meta["config"]
    fill_and_archive(dc)

    dest = make_pg_dir(tmp / "copy-minimal", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, dest, "--start", f"--port={port}")
        assert rc == 0, describe(rc, out, err) + rebuild_log(dest)
        assert "the backup holds no pg_hba.conf" in err, err
        hba = (dest / "pg_hba.conf").read_text()
        assert "127.0.0.1/32" in hba and "scram-sha-256" in hba, hba
        # Peer authentication lets the postgres user in over the socket.
        lines = (dest / "postmaster.pid").read_text().splitlines()
        rc, out, err = run([PG_BIN / "psql", "-h", lines[4], "-p", str(port), "-d", "postgres", "-XAtc",
                            "SELECT count(*) FROM kept"])
        assert rc == 0 and out.strip() == "100", describe(rc, out, err)
    finally:
        stop_server(dest)


def test_backup_reads_the_files_locally_when_the_server_may_not(ws, work, debian_clusters, tmp):
    """pg_read_all_settings but not pg_read_server_files: the paths come from the server, the files
    from this host (walship backup runs beside the cluster as postgres)."""
    dc, repo = debian_primary(ws, work, debian_clusters)
    dc.sql("CREATE ROLE walrep LOGIN REPLICATION IN ROLE pg_read_all_settings")
    dsn = f"host={dc.dir} port={dc.port} user=walrep dbname=postgres"
    rc, out, err = backup(ws, repo.root, None, "-v", dsn=dsn)
    assert rc == 0, describe(rc, out, err)
    assert f"read \"{dc.conf}\" from this host" in err, err
    meta, _ = manifest(repo)
    paths = {f["path"] for f in meta["config"]["files"]}
    # pg_file_settings is denied too: conf.d comes from following include_dir.
    assert {str(dc.conf), str(dc.etc / "pg_hba.conf"), str(dc.etc / "pg_ident.conf"), str(dc.test_conf)} <= paths, \
        meta["config"]
    assert meta["config"]["missing"] == [], meta["config"]
    assert "holds no copy" not in err, err


def test_rebuild_in_place_leaves_the_configuration_in_etc(ws, work, debian_clusters, tmp):
    """Over the cluster's own data directory, the configuration in /etc is the one that applies:
    rebuild writes none into the data directory, and pg_ctlcluster starts the cluster."""
    dc, repo = debian_primary(ws, work, debian_clusters)
    rc, out, err = backup(ws, repo.root, dc)
    assert rc == 0, describe(rc, out, err)
    fill_and_archive(dc)
    dc.stop()
    etc_before = tree_hash(dc.etc)
    rc, out, err = rebuild(ws, repo, dc.data, "--force", "--archive=keep")
    assert rc == 0, describe(rc, out, err)
    assert "configuration:" not in out, out
    assert not (dc.data / "postgresql.conf").exists()
    assert not (dc.data / "pg_hba.conf").exists()
    assert tree_hash(dc.etc) == etc_before
    dc.start()
    assert dc.scalar("SELECT count(*) FROM kept") == 100
