"""walship rebuild against a real PostgreSQL 15, continued: a rebuilt standby
that streams from its primary and, once streaming is cut, keeps up from the
archive alone; and a base.tar object holding a hostile tar entry (re-encoded
in walship's object format here, so only the tar is hostile) that rebuild
refuses without writing outside the data directory or leaving it startable."""

import hashlib
import io
import json
import os
import struct
import subprocess
import tarfile
import time

from pgcluster import describe, free_port, make_pg_dir, wait_for
from test_backup import archiving_cluster, backup
from test_rebuild import rebuild, rows, stop_server

import psycopg

# --------------------------------------------------------------------------
# walship's object format, written independently of walship


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def encode_object(content, tmpdir):
    """content as a walship object: header frame, one zstd frame with its checksum, trailer frame."""
    header = struct.pack("<II", 0x184D2A5E, 20) + b"WSHP" + struct.pack("<HHQ", 1, 0, len(content))
    header += struct.pack("<I", crc32c(header[8:24]))
    src = tmpdir / "object-content"
    src.write_bytes(content)
    p = subprocess.run(["zstd", "-q", "-c", "--check", str(src)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    src.unlink()
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    body = header + p.stdout
    trailer = struct.pack("<II", 0x184D2A5F, 52) + b"WSTR" + struct.pack("<Q", len(content))
    trailer += hashlib.sha256(content).digest() + struct.pack("<I", crc32c(body))
    trailer += struct.pack("<I", crc32c(trailer))
    assert len(header) == 28 and len(trailer) == 60
    return body + trailer


def replace_base_tar(repo, content, tmpdir):
    """Store content as the latest backup's base.tar and make manifest.json describe it."""
    bdir = next((repo.root / repo.epoch / "backups").glob("*/manifest.json")).parent
    obj = encode_object(content, tmpdir)
    path = bdir / "base.tar"
    mode = os.stat(path).st_mode & 0o777
    st = os.stat(path)
    path.write_bytes(obj)
    os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, mode)
    meta = json.loads((bdir / "manifest.json").read_text())
    base = [t for t in meta["tablespaces"] if t["object"] == "base.tar"]
    assert len(base) == 1, meta
    base[0].update(size=len(content), stored_size=len(obj), sha256=hashlib.sha256(content).hexdigest())
    (bdir / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n")


def hostile_tar(original, extra, replace=None):
    """The original tar's members (those named in replace with its bytes instead), then the
    hostile ones given as (TarInfo, bytes or None)."""
    replace = replace or {}
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(original), mode="r:") as src, \
            tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as dst:
        for m in src.getmembers():
            name = m.name[2:] if m.name.startswith("./") else m.name
            if name in replace:
                m.size = len(replace[name])
                dst.addfile(m, io.BytesIO(replace[name]))
            else:
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        for info, data in extra:
            if data is not None:
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def entry(name, kind=tarfile.REGTYPE, target=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind in (tarfile.DIRTYPE, tarfile.SYMTYPE) else 0o600
    info.mtime = int(time.time())
    info.linkname = target
    return info


# --------------------------------------------------------------------------


def test_rebuilt_standby_streams_then_follows_the_archive(ws, work, clusters, tmp):
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.sql("CREATE TABLE marker (id int PRIMARY KEY)")
    pg.sql("INSERT INTO marker VALUES (1)")
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)

    standby = make_pg_dir(tmp / "standby", 0o700)
    port = free_port()
    app = "walship_rebuilt_standby"
    conninfo = f"host={pg.dir} port={pg.port} user=postgres application_name={app}"
    log = standby / "walship-rebuild.log"

    def log_tail():
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        except OSError as e:
            return f"(no log: {e})"

    def senders():
        return pg.sql("SELECT pid, state FROM pg_stat_replication WHERE application_name = %s", (app,))

    def markers():
        return [r[0] for r in rows(pg.dir, port, "SELECT id FROM marker ORDER BY id")]

    try:
        rc, out, err = rebuild(ws, repo, standby, "--standby", f"--primary-conninfo={conninfo}", "--start",
                               f"--port={port}")
        assert rc == 0 and "the standby is running" in out, describe(rc, out, err)
        assert (standby / "standby.signal").is_file()
        assert rows(pg.dir, port, "SELECT pg_is_in_recovery()")[0][0] is True

        # Streaming: a walsender for it on the primary, and new rows show up without a WAL switch.
        wait_for(lambda: any(s[1] == "streaming" for s in senders()), 60,
                 lambda: f"no streaming walsender on the primary: {senders()}\nstandby log:\n{log_tail()}")
        pg.sql("INSERT INTO marker VALUES (2)")
        wait_for(lambda: markers() == [1, 2], 30,
                 lambda: f"row 2 did not stream to the standby: {markers()}\nstandby log:\n{log_tail()}")
        status = rows(pg.dir, port, "SELECT status FROM pg_stat_wal_receiver")
        assert status == [("streaming",)], status

        # Cut streaming: a primary_conninfo that cannot connect, and the walsender ended.
        bad = f"host={pg.dir} port=1 user=postgres application_name={app}"
        with psycopg.connect(host=str(pg.dir), port=port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET primary_conninfo = '{bad}'")
            conn.execute("SELECT pg_reload_conf()")

        quiet_since = [None]

        def cut():
            pg.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = %s", (app,))
            if senders():
                quiet_since[0] = None
                return False
            quiet_since[0] = quiet_since[0] or time.monotonic()
            return time.monotonic() - quiet_since[0] > 3

        wait_for(cut, 60, lambda: f"the standby kept streaming: {senders()}\nstandby log:\n{log_tail()}")

        # Rows written now reach the standby only through the archive.
        pg.sql("INSERT INTO marker VALUES (3)")
        last = pg.switch_wal()
        pg.wait_archived(last)
        wait_for(lambda: markers() == [1, 2, 3], 90,
                 lambda: f"the standby did not catch up from the archive: {markers()}\nstandby log:\n{log_tail()}")
        assert senders() == [], senders()
        receiver = rows(pg.dir, port, "SELECT status FROM pg_stat_wal_receiver")
        assert all(r[0] != "streaming" for r in receiver), receiver
        assert f'restored log file "{last}" from archive' in log.read_text(errors="replace"), log_tail()
        assert rows(pg.dir, port, "SELECT pg_is_in_recovery()")[0][0] is True
    finally:
        stop_server(standby)
        pg.stop(mode="immediate")


def backed_up(ws, work, clusters):
    """A cluster backed up once and stopped: its repository and the content of the backup's base.tar."""
    pg, repo = archiving_cluster(ws, work, clusters)
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    pg.stop()
    obj = next((repo.root / repo.epoch / "backups").glob("*/base.tar"))
    return repo, subprocess.run(["zstd", "-q", "-d", "-c", str(obj)], stdout=subprocess.PIPE, check=True).stdout


def test_rebuild_refuses_hostile_tar_entries(ws, work, clusters, tmp):
    repo, original = backed_up(ws, work, clusters)

    # The encoder first: the original content re-encoded here rebuilds fine.
    replace_base_tar(repo, original, tmp)
    dest = make_pg_dir(tmp / "reencoded", 0o700)
    rc, out, err = rebuild(ws, repo, dest)
    assert rc == 0, describe(rc, out, err)
    assert (dest / "global" / "pg_control").is_file() and (dest / "PG_VERSION").read_text().strip() == "15"

    outside = make_pg_dir(tmp / "outside", 0o755)
    absdir = make_pg_dir(tmp / "abs", 0o777)
    cases = [
        ("dotdot", "../escaped", [(entry("../escaped"), b"pwned\n")], tmp / "escaped"),
        ("dotdot-deep", "base/../../escaped2", [(entry("base/../../escaped2"), b"pwned\n")], tmp / "escaped2"),
        ("absolute", str(absdir / "x"), [(entry(str(absdir / "x")), b"pwned\n")], absdir / "x"),
        ("symlink", "base/link", [(entry("base/link", tarfile.SYMTYPE, str(outside)), None),
                                  (entry("base/link/x"), b"pwned\n")], outside / "x"),
        ("tablespace-link", "pg_tblspc/16999", [(entry("pg_tblspc/16999", tarfile.SYMTYPE, str(outside)), None),
                                                (entry("pg_tblspc/16999/x"), b"pwned\n")], outside / "x"),
        ("hardlink", "base/hard", [(entry("base/hard", tarfile.LNKTYPE, str(absdir / "target")), None)],
         absdir / "target"),
    ]
    for kind, name, extra, escape in cases:
        replace_base_tar(repo, hostile_tar(original, extra), tmp)
        dest = tmp / f"hostile-{kind}"
        rc, out, err = rebuild(ws, repo, dest)
        assert rc == 1, f"{kind}: " + describe(rc, out, err)
        assert f'"{name}' in err and "tar entry" in err, f"{kind}: entry not named\n" + describe(rc, out, err)
        assert not escape.exists() and not os.path.lexists(escape), f"{kind}: {escape} was written"
        assert list(outside.iterdir()) == [] and list(absdir.iterdir()) == [], f"{kind}: wrote outside"
        assert not (dest / "global" / "pg_control").exists(), f"{kind}: the data directory looks complete"


def test_rebuild_refuses_a_backup_holding_another_clusters_pg_control(ws, work, clusters, tmp, foreign_datadir):
    """A backup whose objects were replaced by another cluster's (with a manifest.json to match)
    is refused once its pg_control is read, and the copy is left unstartable: restore_command
    names the epoch, whose system identifier is not this copy's."""
    repo, original = backed_up(ws, work, clusters)
    foreign = (foreign_datadir / "global" / "pg_control").read_bytes()
    replace_base_tar(repo, hostile_tar(original, [], {"global/pg_control": foreign}), tmp)
    dest = tmp / "copy"
    rc, out, err = rebuild(ws, repo, dest)
    assert rc == 1, describe(rc, out, err)
    assert "pg_control of another cluster" in err and "hint:" in err, describe(rc, out, err)
    assert not (dest / "global" / "pg_control").exists(), "the copy of another cluster looks startable"


def test_server_that_refuses_its_settings_is_reported_at_once(ws, work, clusters, tmp):
    """A hand-made recovery target left in the primary's postgresql.conf travels with the backup; with
    rebuild's own target PostgreSQL has two and refuses to start before it writes postmaster.pid.
    rebuild must report that (the FATAL line and the log), not wait 60 s for a server that is gone."""
    pg, repo = archiving_cluster(ws, work, clusters, recovery_target_time="2000-01-01 00:00:00+00")
    pg.sql("CREATE TABLE marker (id int PRIMARY KEY)")
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    pg.sql("INSERT INTO marker VALUES (1)")
    lsn = pg.sql("SELECT pg_current_wal_lsn()::text")[0][0]
    last = pg.switch_wal()
    pg.wait_archived(last, timeout=120)
    dest = make_pg_dir(tmp / "copy", 0o700)
    try:
        rc, out, err = rebuild(ws, repo, dest, f"--target-lsn={lsn}", "--start", f"--port={free_port()}")
        assert rc == 1, describe(rc, out, err)
        assert "multiple recovery targets specified" in err, describe(rc, out, err)
        assert "the server stopped during recovery" in err, describe(rc, out, err)
        assert "did not start within" not in err, describe(rc, out, err)
    finally:
        stop_server(dest)
