"""walship rebuild and postgresql.conf: a backup of a Debian-style primary (its
postgresql.conf outside the data directory, so not in base.tar) keeps that file
beside base.tar, and the rebuilt copy gets it and starts; --config-from=FILE
supplies the rebuilt server's postgresql.conf byte for byte (when nothing in it
names the source cluster's files: test_debian_copy.py)."""

import io
import json
import shutil
import tarfile

from pgcluster import (
    PG_BIN,
    describe,
    free_port,
    make_pg_dir,
    run,
    write_pg_file,
    zstd_decompress,
)
from test_backup import archiving_cluster, backup
from test_rebuild import rebuild, rows, stop_server


def base_tar_members(repo):
    manifests = list((repo.root / repo.epoch / "backups").glob("*/manifest.json"))
    assert len(manifests) == 1, manifests
    meta = json.loads(manifests[0].read_text())
    data = zstd_decompress(manifests[0].parent / "base.tar")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return {m.name[2:] if m.name.startswith("./") else m.name for m in tf.getmembers()}, meta


def fill(pg):
    pg.sql("CREATE TABLE kept (id int PRIMARY KEY, v text NOT NULL)")
    pg.sql("INSERT INTO kept SELECT g, 'row ' || g FROM generate_series(1, 100) g")


def debian_primary(ws, work, clusters, tmp):
    """A primary whose postgresql.conf (with the harness's port, socket directory and archive
    settings) lives outside the data directory, started with -c config_file=..."""
    pg = clusters.new("debian").initdb()
    repo = ws.init(work / "repo", pg.data)
    pg.configure(archive_mode=True, archive_command=ws.archive_command(repo.root))
    etc = make_pg_dir(tmp / "etc-postgresql", 0o755)
    conf = etc / "postgresql.conf"
    shutil.move(str(pg.data / "postgresql.conf"), str(conf))
    assert not (pg.data / "postgresql.conf").exists()
    text = conf.read_text()
    assert f"port = {pg.port}" in text and "archive_command" in text and str(pg.dir) in text

    rc, out, err = run([PG_BIN / "pg_ctl", "-D", pg.data, "-l", pg.log, "-w", "-t", "120",
                        "-o", f"-c config_file={conf}", "start"], timeout=150)
    assert rc == 0, describe(rc, out, err) + "\nserver log:\n" + pg.log_tail()
    pg.started = True
    assert pg.scalar("SHOW config_file") == str(conf)
    assert pg.scalar("SHOW archive_mode") == "on"
    return pg, repo


def test_rebuild_debian_layout_gets_the_primarys_postgresql_conf(ws, work, clusters, tmp):
    pg, repo = debian_primary(ws, work, clusters, tmp)
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    members, _ = base_tar_members(repo)
    assert "PG_VERSION" in members and "global/pg_control" in members
    assert "postgresql.conf" not in members, "base.tar holds a postgresql.conf although the data directory has none"

    fill(pg)
    last = pg.switch_wal()
    pg.wait_archived(last)

    dest = make_pg_dir(tmp / "rebuilt-debian", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, dest, "--start", f"--port={port}")
        assert rc == 0, describe(rc, out, err) + "\nrebuild log:\n" + \
            ((dest / "walship-rebuild.log").read_text(errors="replace")
             if (dest / "walship-rebuild.log").exists() else "(none)")
        written = dest / "postgresql.conf"
        assert written.is_file(), "rebuild wrote no postgresql.conf"
        # The primary's, kept by walship backup; nothing in it names the primary's own files.
        assert written.read_bytes() == (tmp / "etc-postgresql" / "postgresql.conf").read_bytes()
        assert "configuration: postgresql.conf from the backup, 0 lines changed" in out, out
        lines = (dest / "postmaster.pid").read_text().splitlines()
        assert int(lines[3]) == port, lines
        sockdir = lines[4]
        got = rows(sockdir, port, "SELECT count(*), min(id), max(id) FROM kept")[0]
        assert got == (100, 1, 100), got
        assert rows(sockdir, port, "SELECT pg_is_in_recovery()")[0][0] is False
        assert rows(sockdir, port, "SHOW config_file")[0][0] == str(written)
        assert rows(sockdir, port, "SHOW archive_mode")[0][0] == "off"
    finally:
        stop_server(dest)


def backed_up_debian_primary(ws, work, clusters, tmp):
    """debian_primary, backed up (without a postgresql.conf), filled and archived; the LSN
    after the rows."""
    pg, repo = debian_primary(ws, work, clusters, tmp)
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    members, _ = base_tar_members(repo)
    assert "postgresql.conf" not in members
    fill(pg)
    lsn = pg.scalar("SELECT pg_current_wal_lsn()::text")
    last = pg.switch_wal()
    pg.wait_archived(last)
    return pg, repo, lsn


def test_rebuild_config_from_file(ws, work, clusters, tmp):
    _, repo, _ = backed_up_debian_primary(ws, work, clusters, tmp)
    sockdir = make_pg_dir(tmp / "sock", 0o755)
    content = (f"# from --config-from\nshared_buffers = 17MB\nunix_socket_directories = '{sockdir}'\n"
               "listen_addresses = ''\n").encode()
    cfg = write_pg_file(tmp / "my.conf", content, 0o644)

    dest = make_pg_dir(tmp / "rebuilt-from", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, dest, f"--config-from={cfg}", "--start", f"--port={port}")
        assert rc == 0, describe(rc, out, err)
        assert "not used" not in err, describe(rc, out, err)
        assert (dest / "postgresql.conf").read_bytes() == content
        assert rows(sockdir, port, "SHOW shared_buffers")[0][0] == "17MB"
        assert rows(sockdir, port, "SELECT count(*) FROM kept")[0][0] == 100
    finally:
        stop_server(dest)


def test_rebuild_config_from_is_not_used_when_the_backup_has_one(ws, work, clusters, tmp):
    """A backup that carries its own postgresql.conf keeps it; --config-from is named as unused."""
    pg, repo = archiving_cluster(ws, work, clusters)
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    members, _ = base_tar_members(repo)
    assert "postgresql.conf" in members
    last = pg.switch_wal()
    pg.wait_archived(last)

    content = b"shared_buffers = 17MB\n"
    cfg = write_pg_file(tmp / "my.conf", content, 0o644)
    dest = tmp / "rebuilt-own"
    rc, out, err = rebuild(ws, repo, dest, f"--config-from={cfg}")
    assert rc == 0, describe(rc, out, err)
    assert f'--config-from="{cfg}" not used' in err, describe(rc, out, err)
    conf = (dest / "postgresql.conf").read_text()
    assert conf != content.decode() and f"port = {pg.port}" in conf, conf


def test_rebuild_starts_the_server_with_lc_messages_c(ws, work, clusters, tmp):
    """rebuild --start reads the outcome from the server log by PostgreSQL's English messages: the
    server it starts runs with lc_messages=C even when postgresql.conf names another locale (only C
    locales exist on the test machine: C.utf8 stands for a translated one), and the log's shutdown
    at the target is still recognised."""
    _, repo, lsn = backed_up_debian_primary(ws, work, clusters, tmp)
    sockdir = make_pg_dir(tmp / "sock", 0o755)
    content = (f"lc_messages = 'C.utf8'\nunix_socket_directories = '{sockdir}'\n"
               "listen_addresses = ''\n").encode()
    cfg = write_pg_file(tmp / "lc.conf", content, 0o644)

    dest = make_pg_dir(tmp / "rebuilt-lc", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, dest, f"--config-from={cfg}", "--start", f"--port={port}")
        assert rc == 0, describe(rc, out, err)
        assert rows(sockdir, port, "SHOW lc_messages")[0][0] == "C"
        assert rows(sockdir, port, "SELECT count(*) FROM kept")[0][0] == 100
    finally:
        stop_server(dest)

    dest = make_pg_dir(tmp / "rebuilt-lc-shutdown", 0o700)
    try:
        rc, out, err = rebuild(ws, repo, dest, f"--config-from={cfg}", f"--target-lsn={lsn}",
                               "--target-action=shutdown", "--start", f"--port={port}")
        assert rc == 0, describe(rc, out, err)
        assert "the server shut down as asked" in out, describe(rc, out, err)
        assert "lc_messages=C" in (dest / "postmaster.opts").read_text()
    finally:
        stop_server(dest)
