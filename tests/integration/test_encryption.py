"""Encryption at rest: walship init --encrypt with a key file or a passphrase,
real segments pushed and fetched byte-identical through encrypted objects that
hide their content (and that plain `zstd -d` cannot read), wrong and missing
keys refused before anything is written or restored, foreign, renamed and
damaged objects refused, and a base backup rebuilt from an encrypted
repository."""

import json
import os
import shutil
import subprocess

from pgcluster import (
    check_run,
    FIRST_SEGMENT,
    RepoView,
    describe,
    flip_byte,
    free_port,
    make_pg_dir,
    run,
    write_pg_file,
)
from test_backup import backup
from test_rebuild import rebuild, rows, stop_server

SEG = f"pg_wal/{FIRST_SEGMENT}"
SECOND_SEGMENT = "000000010000000000000002"
ABORT = 200
PASSPHRASE = "correct horse battery staple"


def key_file(work, name="repo.key", data=None):
    """A key file as the README says to make one: 32 random bytes, 0600, owned by postgres."""
    return write_pg_file(work / name, os.urandom(32) if data is None else data, 0o600)


def set_config(ws, text):
    write_pg_file(ws.config, text, 0o600)


def init(ws, repo, pgdata, *opts, env=None):
    cmd = [ws.walship, f"--config={ws.config}", "init", f"--repo={repo}", f"--pgdata={pgdata}", *opts]
    return run(cmd, cwd=ws.work, env=env)


def encrypted_repo(ws, work, datadir, key=None):
    """An encrypted repository for datadir's cluster, its key file named in ws.config."""
    key = key or key_file(work)
    set_config(ws, f"encryption-key-file = {key}\n")
    rc, out, err = init(ws, work / "repo", datadir, "--encrypt")
    assert rc == 0, describe(rc, out, err)
    return work / "repo"


def object_path(repo, name, epoch="15-1"):
    return repo / epoch / "wal" / name[:16] / name


def plaintext_fragments(segment):
    """Pieces of the segment that are not zeros: its page header and first records."""
    data = segment.read_bytes()
    frags = [data[i:i + 24] for i in range(0, 8192, 512) if data[i:i + 24].strip(b"\0")]
    assert len(frags) >= 4, "the test segment has too little content to look for"
    return frags


def assert_no_output(out_dir, what):
    left = sorted(os.listdir(out_dir))
    assert left == [], f"{what}: files left where %p was to be written: {left}"


# -- round trips ---------------------------------------------------------------


def test_key_file_push_fetch_roundtrip(ws, work, datadir):
    # Random binary key material may end in a newline byte: it is part of the key.
    repo = encrypted_repo(ws, work, datadir, key_file(work, data=os.urandom(31) + b"\n"))
    meta = json.loads((repo / "walship.json").read_text())
    enc = meta["encryption"]
    assert enc["cipher"] == "aes-256-gcm" and enc["kdf"] == "key-file", enc
    assert len(enc["wrapped_key"]) == 120 and len(enc["salt"]) == 64

    rc, out, err = ws.push(repo, SEG, FIRST_SEGMENT, datadir)
    assert rc == 0, describe(rc, out, err)
    obj = object_path(repo, FIRST_SEGMENT)
    stored = obj.read_bytes()
    for frag in plaintext_fragments(datadir / SEG):
        assert frag not in stored, f"the stored object contains plaintext of the segment: {frag.hex()}"
    # Not a zstd stream: nobody without the key gets the content, not even compressed.
    z = subprocess.run(["zstd", "-d", "-c", str(obj)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert z.returncode != 0, "zstd -d decoded an encrypted object"

    # Pushing the same segment again is the duplicate rule's "already stored": the object is decrypted.
    rc, out, err = ws.push(repo, SEG, FIRST_SEGMENT, datadir)
    assert rc == 0, describe(rc, out, err)
    assert obj.read_bytes() == stored, "an identical push replaced the object"

    out_dir = make_pg_dir(work / "out", 0o700)
    target = out_dir / "RECOVERYXLOG"
    rc, out, err = ws.fetch(repo, FIRST_SEGMENT, target, datadir, "--mode=recovery")
    assert rc == 0, describe(rc, out, err)
    assert target.read_bytes() == (datadir / SEG).read_bytes(), "fetched segment differs from the original"


def test_passphrase_push_fetch_roundtrip(ws, work, datadir):
    env = {"WALSHIP_ENCRYPTION_PASSPHRASE": PASSPHRASE}
    rc, out, err = init(ws, work / "repo", datadir, "--encrypt", env=env)
    assert rc == 0, describe(rc, out, err)
    text = (work / "repo" / "walship.json").read_text()
    assert PASSPHRASE not in text
    enc = json.loads(text)["encryption"]
    assert enc["kdf"] == "scrypt" and enc["n"] >= 16384, enc

    rc, out, err = ws.push(work / "repo", SEG, FIRST_SEGMENT, datadir, env=env)
    assert rc == 0, describe(rc, out, err)
    target = make_pg_dir(work / "out", 0o700) / "RECOVERYXLOG"
    rc, out, err = ws.fetch(work / "repo", FIRST_SEGMENT, target, datadir, "--mode=recovery", env=env)
    assert rc == 0, describe(rc, out, err)
    assert target.read_bytes() == (datadir / SEG).read_bytes()

    # The wrong passphrase restores nothing.
    target.unlink()
    rc, out, err = ws.fetch(work / "repo", FIRST_SEGMENT, target, datadir, "--mode=recovery",
                            env={"WALSHIP_ENCRYPTION_PASSPHRASE": PASSPHRASE + "!"})
    assert rc == ABORT, describe(rc, out, err)
    assert "wrong encryption key" in err, describe(rc, out, err)
    assert PASSPHRASE not in err
    assert_no_output(work / "out", "wrong passphrase")


# -- init -------------------------------------------------------------------------


def test_init_encrypt_needs_exactly_one_key_and_key_needs_encrypt(ws, work, datadir):
    repo = work / "repo"
    rc, out, err = init(ws, repo, datadir, "--encrypt")
    assert rc == 2, describe(rc, out, err)
    assert "needs a key" in err and "head -c 32 /dev/urandom" in err, describe(rc, out, err)
    assert not (repo / "walship.json").exists()

    # A key configured, but no --encrypt: nobody may believe the repository is encrypted.
    key = key_file(work)
    set_config(ws, f"encryption-key-file = {key}\n")
    rc, out, err = init(ws, repo, datadir)
    assert rc == 2, describe(rc, out, err)
    assert "--encrypt" in err, describe(rc, out, err)
    assert not (repo / "walship.json").exists()

    # Both kinds of key at once.
    rc, out, err = init(ws, repo, datadir, "--encrypt", env={"WALSHIP_ENCRYPTION_PASSPHRASE": PASSPHRASE})
    assert rc == 2, describe(rc, out, err)
    assert "both encryption-key-file and encryption-passphrase" in err, describe(rc, out, err)

    # A key file others can read is refused.
    os.chmod(key, 0o644)
    rc, out, err = init(ws, repo, datadir, "--encrypt")
    assert rc == 1, describe(rc, out, err)
    assert "readable by every user" in err, describe(rc, out, err)
    assert not (repo / "walship.json").exists()


# -- wrong and missing keys ---------------------------------------------------------


def test_wrong_or_missing_key_writes_and_restores_nothing(ws, work, datadir):
    repo = encrypted_repo(ws, work, datadir)
    rc, out, err = ws.push(repo, SEG, FIRST_SEGMENT, datadir)
    assert rc == 0, describe(rc, out, err)
    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))
    out_dir = make_pg_dir(work / "out", 0o700)
    seg2 = write_pg_file(work / SECOND_SEGMENT, b"", 0o600)  # never read: the key is checked first

    other = key_file(work, "other.key")
    cases = [
        ("wrong key", f"encryption-key-file = {other}\n", "wrong encryption key for repository",
         "encryption-key-file"),
        ("no key", "", "is encrypted", "encryption-key-file"),
    ]
    for what, config, message, hint in cases:
        set_config(ws, config)
        rc, out, err = ws.push(repo, seg2, SECOND_SEGMENT, datadir)
        assert rc == 1, f"{what}: " + describe(rc, out, err)
        assert message in err and "hint:" in err and hint in err, f"{what}: " + describe(rc, out, err)
        rc, out, err = ws.fetch(repo, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, "--mode=recovery")
        assert rc == ABORT, f"{what}: " + describe(rc, out, err)
        assert message in err, f"{what}: " + describe(rc, out, err)
        assert_no_output(out_dir, what)
        # A standby retries (exit 1) but logs why.
        rc, out, err = ws.fetch(repo, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, "--mode=standby")
        assert rc == 1 and message in err, f"{what}: " + describe(rc, out, err)
        assert_no_output(out_dir, what)
        after = sorted(p.relative_to(repo) for p in repo.rglob("*"))
        assert after == before, f"{what}: the repository changed: {set(after) ^ set(before)}"


def test_key_configured_for_unencrypted_repository_refused(ws, work, datadir):
    repo = ws.init(work / "repo", datadir).root
    key = key_file(work)
    set_config(ws, f"encryption-key-file = {key}\n")
    rc, out, err = ws.push(repo, SEG, FIRST_SEGMENT, datadir)
    assert rc == 1, describe(rc, out, err)
    assert "is not encrypted, but encryption-key-file" in err, describe(rc, out, err)
    assert not object_path(repo, FIRST_SEGMENT).exists()


# -- objects that are not what they claim -----------------------------------------


def test_foreign_renamed_and_damaged_objects_refused(ws, work, datadir):
    # A text key, as "openssl rand -base64 32 > FILE" makes it (with a final newline).
    text = subprocess.run(["openssl", "rand", "-base64", "32"], stdout=subprocess.PIPE, check=True).stdout
    assert text.endswith(b"\n")
    key = key_file(work, data=text)
    repo = encrypted_repo(ws, work, datadir, key)
    rc, out, err = ws.push(repo, SEG, FIRST_SEGMENT, datadir)
    assert rc == 0, describe(rc, out, err)
    good = object_path(repo, FIRST_SEGMENT).read_bytes()

    # An unencrypted object of the same cluster, from a second repository.
    set_config(ws, "")
    plain_repo = ws.init(work / "plain", datadir).root
    rc, out, err = ws.push(plain_repo, SEG, FIRST_SEGMENT, datadir)
    assert rc == 0, describe(rc, out, err)
    set_config(ws, f"encryption-key-file = {key}\n")
    out_dir = make_pg_dir(work / "out", 0o700)
    target = out_dir / "RECOVERYXLOG"

    obj = object_path(repo, FIRST_SEGMENT)
    shutil.copyfile(object_path(plain_repo, FIRST_SEGMENT), obj)
    rc, out, err = ws.fetch(repo, FIRST_SEGMENT, target, datadir, "--mode=recovery")
    assert rc == ABORT, describe(rc, out, err)
    assert "is not encrypted, but the repository is" in err, describe(rc, out, err)
    assert_no_output(out_dir, "unencrypted object")

    # A valid encrypted object under another segment's name.
    obj.write_bytes(good)
    renamed = object_path(repo, SECOND_SEGMENT)
    shutil.copyfile(obj, renamed)
    rc, out, err = ws.fetch(repo, SECOND_SEGMENT, target, datadir, "--mode=recovery")
    assert rc == ABORT, describe(rc, out, err)
    assert f'"15-1/wal/0000000100000000/{SECOND_SEGMENT}" is corrupt' in err, describe(rc, out, err)
    assert "failed authentication" in err, describe(rc, out, err)
    assert_no_output(out_dir, "renamed object")
    renamed.unlink()

    # One flipped byte: in a chunk, and in the trailer.
    for offset in (len(good) // 2, len(good) - 30):
        obj.write_bytes(good)
        flip_byte(obj, offset)
        rc, out, err = ws.fetch(repo, FIRST_SEGMENT, target, datadir, "--mode=recovery")
        assert rc == ABORT, f"offset {offset}: " + describe(rc, out, err)
        assert "is corrupt" in err, describe(rc, out, err)
        assert_no_output(out_dir, f"flipped byte at {offset}")

    obj.write_bytes(good)
    rc, out, err = ws.fetch(repo, FIRST_SEGMENT, target, datadir, "--mode=recovery")
    assert rc == 0, describe(rc, out, err)


# -- base backup and rebuild ---------------------------------------------------------


def test_backup_and_rebuild_from_encrypted_repository(ws, work, clusters, tmp):
    key = key_file(work)
    set_config(ws, f"encryption-key-file = {key}\n")
    pg = clusters.new("primary").initdb()
    rc, out, err = init(ws, work / "repo", pg.data, "--encrypt")
    assert rc == 0, describe(rc, out, err)
    repo_root = work / "repo"
    pg.configure(archive_mode=True, archive_command=ws.archive_command(repo_root))
    pg.start()
    pg.sql("CREATE TABLE secret_rows (id int PRIMARY KEY, note text)")
    pg.sql("INSERT INTO secret_rows SELECT g, 'walship-secret-marker-' || g FROM generate_series(1, 500) g")

    rc, out, err = backup(ws, repo_root, pg)
    assert rc == 0, describe(rc, out, err)
    pg.sql("INSERT INTO secret_rows SELECT g, 'after-backup' FROM generate_series(501, 600) g")
    last = pg.switch_wal()
    pg.wait_archived(last)

    # No stored file shows the rows, and base.tar is no zstd stream either.
    bdir = next((repo_root / "15-1" / "backups").iterdir())
    base = bdir / "base.tar"
    z = subprocess.run(["zstd", "-d", "-c", str(base)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert z.returncode != 0, "zstd -d decoded an encrypted backup object"
    for path in repo_root.rglob("*"):
        if path.is_file():
            assert b"walship-secret-marker" not in path.read_bytes(), f"{path} holds plaintext rows"
    # walship's manifest.json (LSNs, paths, checksums) is an encrypted object there too.
    manifest = (bdir / "manifest.json").read_bytes()
    assert b"stop_lsn" not in manifest and not manifest.startswith(b"{"), manifest[:80]
    out, _ = check_run([ws.walship, f"--config={ws.config}", "list", f"--repo={repo_root}"], cwd=ws.work)
    assert bdir.name in out, out

    view = RepoView(repo_root)
    dest = make_pg_dir(tmp / "rebuilt", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, view, dest, "--start", f"--port={port}")
        assert rc == 0, describe(rc, out, err)
        got = rows(pg.dir, port, "SELECT count(*), max(id) FROM secret_rows")[0]
        assert got == (600, 600), f"the rebuilt server has {got}, expected (600, 600)"
    finally:
        stop_server(dest)

    # Without the key the same rebuild stops before writing anything.
    set_config(ws, "")
    dest2 = make_pg_dir(tmp / "rebuilt2", 0o700)
    rc, out, err = rebuild(ws, view, dest2)
    assert rc == 1, describe(rc, out, err)
    assert "is encrypted" in err, describe(rc, out, err)
    assert os.listdir(dest2) == [], f"files written without a key: {os.listdir(dest2)}"
