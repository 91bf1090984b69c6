"""The SFTP store against a real OpenSSH server (sshd.py): a segment
round-trips byte for byte; host keys are checked (unknown, changed, hashed,
accept-new); keys from a file, with a passphrase, or from ssh-agent; a
missing root, an unreachable server and a server killed mid-upload fail with
the exit codes PostgreSQL needs and leave no partial object; the directory
sync runs on the server (and can be turned off)."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pgcluster import (
    FIRST_SEGMENT,
    RepoView,
    chown_pg,
    describe,
    free_port,
    make_pg_dir,
    popen,
    run,
    sha256_file,
    write_pg_file,
    zstd_sha256,
)
from sshd import fingerprint, keygen
from test_kill import make_segment

SEG_PATH = f"pg_wal/{FIRST_SEGMENT}"
PASSPHRASE = "correct horse battery staple"


def write_config(work, name, text, mode=0o600):
    return write_pg_file(Path(work) / name, text, mode)


def pg_key(work, name, passphrase="", key_type="ed25519"):
    """A key pair owned by postgres (private part 0600)."""
    d = make_pg_dir(Path(work) / "keys", 0o700)
    path = keygen(d / name, key_type, passphrase)
    for p in (path, Path(f"{path}.pub")):
        chown_pg(p)
    os.chmod(path, 0o600)
    return path


def authorize(server, pub):
    """Add a public key to the server's authorized_keys (the session server is shared: append only)."""
    with open(server.authorized_keys, "a") as f:
        f.write(Path(pub).read_text())


def init_repo(ws, server, work, datadir, config, root="repo"):
    """Initialise an SFTP repository; returns (url, local view of the server's directory)."""
    path = Path(work) / root
    url = server.url(str(path))
    ws.init(url, datadir, config=config)
    return url, RepoView(path)


def no_sanitizer_report(result):
    """Sanitizer builds print findings without always changing the exit code."""
    rc, out, err = result
    assert "runtime error:" not in err and "Sanitizer" not in err, err
    return result


def push(ws, url, datadir, config, env=None, timeout=120):
    return no_sanitizer_report(ws.push(url, SEG_PATH, FIRST_SEGMENT, datadir, config=config, env=env,
                                       timeout=timeout))


def fetch(ws, url, datadir, target, config, env=None, mode="recovery"):
    return no_sanitizer_report(ws.fetch(url, FIRST_SEGMENT, target, datadir, f"--mode={mode}", config=config,
                                        env=env))


@pytest.fixture
def conf(sshd, work):  # noqa: F811
    """A config file reaching the session server with the postgres key."""
    return write_config(work, "sftp.conf", sshd.config_text())


# --------------------------------------------------------------------------
# data


def test_segment_round_trip(ws, sshd, work, datadir, conf):  # noqa: F811
    url, view = init_repo(ws, sshd, work, datadir, conf)
    assert (view.root / "walship.json").is_file()
    seg = datadir / "pg_wal" / FIRST_SEGMENT
    want = sha256_file(seg)

    rc, out, err = push(ws, url, datadir, conf)
    assert rc == 0, describe(rc, out, err)
    stored = view.key_path(FIRST_SEGMENT)
    assert zstd_sha256(stored) == want, "zstd -d of the object on the server differs from the segment"
    assert not view.dot_files(), f"temp files left on the server: {view.dot_files()}"

    target = work / "RECOVERYXLOG"
    rc, out, err = fetch(ws, url, datadir, target, conf)
    assert rc == 0, describe(rc, out, err)
    assert sha256_file(target) == want

    # Pushed again, identical: accepted.
    rc, out, err = push(ws, url, datadir, conf)
    assert rc == 0, describe(rc, out, err)
    # A name the repository does not have: "not found" (1), the repository being healthy.
    rc, out, err = ws.fetch(url, "000000010000000000000009", work / "x", datadir, "--mode=recovery", config=conf)
    assert rc == 1, describe(rc, out, err)


def test_dir_sync_runs_on_the_server_and_can_be_turned_off(ws, sshd, work, datadir, conf):  # noqa: F811
    url, view = init_repo(ws, sshd, work, datadir, conf)
    before = len(sshd.sync_calls())
    rc, out, err = push(ws, url, datadir, conf)
    assert rc == 0, describe(rc, out, err)
    calls = sshd.sync_calls()[before:]
    obj_dir = str(view.key_path(FIRST_SEGMENT).parent)
    # The new object's directory, and the parents of the directories the put created.
    assert calls, "no sync ran on the server after the push"
    args = calls[-1].split()
    assert args[0] == "--" and obj_dir in args, f"sync ran with {calls[-1]!r}, expected {obj_dir}"
    assert str(view.root / view.epoch / "wal") in args, f"the new directory's parent was not synced: {args}"

    # A failing sync is an error that says how to turn it off, and what that costs.
    view2_url, view2 = init_repo(ws, sshd, work, datadir, conf, root="repo2")
    sshd.sync_fail.touch()
    try:
        rc, out, err = push(ws, view2_url, datadir, conf)
        assert rc == 1, describe(rc, out, err)
        assert "sftp-dir-sync = off" in err and "simulated failure" in err, err
        # The object is taken back, so the archiver's retry stores and syncs it again
        # instead of finding it "already stored".
        assert not view2.key_path(FIRST_SEGMENT).exists(), "an object whose name was not synced was left"
        sshd.sync_fail.unlink()
        before = len(sshd.sync_calls())
        rc, out, err = push(ws, view2_url, datadir, conf)
        assert rc == 0, describe(rc, out, err)
        assert sshd.sync_calls()[before:], "the retried push did not sync"
        assert view2.key_path(FIRST_SEGMENT).exists()

        off = write_config(work, "off.conf", sshd.config_text() + "sftp-dir-sync = off\n")
        url3, view3 = init_repo(ws, sshd, work, datadir, off, root="repo3")
        before = len(sshd.sync_calls())
        rc, out, err = push(ws, url3, datadir, off)
        assert rc == 0, describe(rc, out, err)
        assert zstd_sha256(view3.key_path(FIRST_SEGMENT)) == sha256_file(datadir / "pg_wal" / FIRST_SEGMENT)
        assert sshd.sync_calls()[before:] == [], "sync ran although sftp-dir-sync = off"
    finally:
        sshd.sync_fail.unlink(missing_ok=True)

    bad = write_config(work, "bad.conf", sshd.config_text() + "sftp-dir-sync = sometimes\n")
    rc, out, err = push(ws, url, datadir, bad)
    assert rc == 1, describe(rc, out, err)
    assert "sftp-dir-sync" in err and "sometimes" in err, err


def test_object_found_unsynced_is_synced_before_it_counts(ws, sshd, work, datadir, conf):  # noqa: F811
    """A push that died between its rename and its directory sync leaves an object whose name a
    crash of the server could still lose: the retry finds it "already stored" and answers 0 only
    once it has synced it (issue 12, defect 3)."""
    off = write_config(work, "off.conf", sshd.config_text() + "sftp-dir-sync = off\n")
    url, view = init_repo(ws, sshd, work, datadir, off, root="repo-unsynced")
    rc, out, err = push(ws, url, datadir, off)  # renamed into place, its directory never synced
    assert rc == 0, describe(rc, out, err)

    before = len(sshd.sync_calls())
    rc, out, err = push(ws, url, datadir, conf)
    assert rc == 0, describe(rc, out, err)
    calls = sshd.sync_calls()[before:]
    assert calls, "the push that found the object in place synced nothing"
    args = calls[-1].split()
    for d in (view.key_path(FIRST_SEGMENT).parent, view.root / view.epoch / "wal", view.root):
        assert str(d) in args, f"{d} was not synced: sync ran with {calls[-1]!r}"

    # If that sync fails, the file is not reported archived (and the object, not this push's, stays).
    sshd.sync_fail.touch()
    try:
        rc, out, err = push(ws, url, datadir, conf)
        assert rc == 1 and "simulated failure" in err, describe(rc, out, err)
        assert view.key_path(FIRST_SEGMENT).exists()
    finally:
        sshd.sync_fail.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# host keys


def test_unknown_host_key_refused_with_its_fingerprint(ws, sshd, work, datadir):  # noqa: F811
    kh = write_pg_file(work / "empty_known_hosts", b"", 0o600)
    cfg = write_config(work, "c.conf", sshd.config_text(known_hosts=kh))
    rc, out, err = push(ws, sshd.url(str(work / "repo")), datadir, cfg)
    assert rc == 1, describe(rc, out, err)
    assert "host key" in err and "unknown" in err, err
    offered = {"ED25519": sshd.fingerprint(), "ECDSA": fingerprint(f"{sshd.host_key_ecdsa}.pub")}
    shown = [t for t, fp in offered.items() if f"{t} key {fp}" in err]
    assert shown, f"none of the server's fingerprints {offered} in:\n{err}"
    assert "ssh-keyscan" in err and "accept-new" in err, err
    assert kh.read_bytes() == b"", "strict checking wrote to known_hosts"


def test_changed_host_key_refused_even_with_accept_new(ws, sshd, work, datadir):  # noqa: F811
    other = keygen(work / "other_host_key", "ed25519")
    kh = write_pg_file(work / "kh_changed", sshd.known_hosts_line(f"{other}.pub") + "\n", 0o600)
    before = kh.read_bytes()
    for check in ("strict", "accept-new"):
        cfg = write_config(work, f"{check}.conf",
                           sshd.config_text(known_hosts=kh) + f"sftp-host-key-check = {check}\n")
        rc, out, err = push(ws, sshd.url(str(work / "repo")), datadir, cfg)
        assert rc == 1, describe(rc, out, err)
        assert "host key" in err and "changed" in err, err
        assert "man-in-the-middle" in err, err
        assert sshd.fingerprint() in err, f"the offered fingerprint {sshd.fingerprint()} is not shown:\n{err}"
        assert kh.read_bytes() == before, f"known_hosts changed with sftp-host-key-check = {check}"


def test_accept_new_records_the_host_then_strict_works(ws, sshd, work, datadir, conf):  # noqa: F811
    url, view = init_repo(ws, sshd, work, datadir, conf)
    kh_dir = work / "fresh_ssh"
    kh = kh_dir / "known_hosts"
    cfg = write_config(work, "new.conf", sshd.config_text(known_hosts=kh) + "sftp-host-key-check = accept-new\n")
    rc, out, err = push(ws, url, datadir, cfg)
    assert rc == 0, describe(rc, out, err)
    assert kh.is_file()
    assert (kh.stat().st_mode & 0o777) == 0o600 and (kh_dir.stat().st_mode & 0o777) == 0o700
    lines = [line for line in kh.read_text().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith(f"[127.0.0.1]:{sshd.port} "), lines
    assert "recorded the new" in err and "SHA256:" in err, err
    # The recorded line is OpenSSH's: ssh-keygen finds the host in it.
    found = subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{sshd.port}", "-f", str(kh)],
                           capture_output=True, text=True)
    assert found.returncode == 0, found.stderr

    strict = write_config(work, "strict.conf", sshd.config_text(known_hosts=kh))
    target = work / "RECOVERYXLOG"
    rc, out, err = fetch(ws, url, datadir, target, strict)
    assert rc == 0, describe(rc, out, err)
    assert kh.read_text().splitlines() == lines, "a known host was recorded again"


def test_hashed_known_hosts_entry(ws, sshd, work, datadir, conf):  # noqa: F811
    url, view = init_repo(ws, sshd, work, datadir, conf)
    kh = work / "kh_hashed"
    shutil.copy(sshd.known_hosts, kh)
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(kh)], check=True, capture_output=True)
    assert kh.read_text().startswith("|1|"), kh.read_text()
    chown_pg(kh)
    cfg = write_config(work, "hashed.conf", sshd.config_text(known_hosts=kh))
    rc, out, err = push(ws, url, datadir, cfg)
    assert rc == 0, describe(rc, out, err)


# --------------------------------------------------------------------------
# user keys


def test_wrong_user_key_refused(ws, sshd, work, datadir):  # noqa: F811
    stranger = pg_key(work, "stranger")
    cfg = write_config(work, "c.conf", sshd.config_text(key_file=stranger))
    rc, out, err = push(ws, sshd.url(str(work / "repo")), datadir, cfg)
    assert rc == 1, describe(rc, out, err)
    assert f'could not authenticate as "postgres" to "127.0.0.1:{sshd.port}"' in err, err
    assert str(stranger) in err and "authorized_keys" in err, err


def test_key_file_readable_by_others_refused(ws, sshd, work, datadir):  # noqa: F811
    key = pg_key(work, "loose")
    authorize(sshd, f"{key}.pub")
    os.chmod(key, 0o644)
    cfg = write_config(work, "c.conf", sshd.config_text(key_file=key))
    rc, out, err = push(ws, sshd.url(str(work / "repo")), datadir, cfg)
    assert rc == 1, describe(rc, out, err)
    assert "accessible by other users" in err and f'chmod 600 "{key}"' in err, err


def test_passphrase_protected_key(ws, sshd, work, datadir, conf):  # noqa: F811
    url, view = init_repo(ws, sshd, work, datadir, conf)
    key = pg_key(work, "locked", PASSPHRASE)
    authorize(sshd, f"{key}.pub")
    base = sshd.config_text(key_file=key)

    plain = write_config(work, "plain.conf", base)
    rc, out, err = push(ws, url, datadir, plain)
    assert rc == 1, describe(rc, out, err)
    assert "protected by a passphrase" in err and "WALSHIP_SFTP_KEY_PASSPHRASE" in err, err

    rc, out, err = push(ws, url, datadir, plain, env={"WALSHIP_SFTP_KEY_PASSPHRASE": PASSPHRASE})
    assert rc == 0, "passphrase from the environment\n" + describe(rc, out, err)

    in_file = write_config(work, "pass.conf", base + f"sftp-key-passphrase = \"{PASSPHRASE}\"\n")
    rc, out, err = push(ws, url, datadir, in_file)
    assert rc == 0, "passphrase from the configuration file\n" + describe(rc, out, err)

    wrong = write_config(work, "wrong.conf", base + "sftp-key-passphrase = not-the-passphrase\n")
    rc, out, err = push(ws, url, datadir, wrong)
    assert rc == 1, describe(rc, out, err)
    assert "passphrase" in err and "wrong" in err, err
    assert "not-the-passphrase" not in err + out, "the passphrase was printed"


def test_ssh_agent(ws, sshd, work, datadir, conf):  # noqa: F811
    url, view = init_repo(ws, sshd, work, datadir, conf)
    key = pg_key(work, "agent_key")
    authorize(sshd, f"{key}.pub")
    sock_dir = make_pg_dir(work / "agent", 0o700)
    sock = sock_dir / "agent.sock"
    agent = popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                  start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sock.exists(), "ssh-agent did not start"
        env = {"SSH_AUTH_SOCK": str(sock)}
        rc, out, err = run(["ssh-add", key], env=env)
        assert rc == 0, describe(rc, out, err)
        # No sftp-key-file: the agent's key is used.
        cfg = write_config(work, "agent.conf", f"sftp-known-hosts = {sshd.known_hosts}\n")
        rc, out, err = push(ws, url, datadir, cfg, env=env)
        assert rc == 0, describe(rc, out, err)
        # Without the agent (and no ~/.ssh/id_* for postgres) nothing is left to try.
        rc, out, err = push(ws, url, datadir, cfg)
        assert rc == 1, describe(rc, out, err)
        assert "could not authenticate" in err, err
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)


# --------------------------------------------------------------------------
# failures


def test_missing_root(ws, sshd, work, datadir, conf):  # noqa: F811
    url = sshd.url(str(work / "no" / "such" / "repo"))
    rc, out, err = push(ws, url, datadir, conf)
    assert rc == 1, describe(rc, out, err)
    assert "does not exist" in err and "walship init" in err, err
    rc, out, err = fetch(ws, url, datadir, work / "RECOVERYXLOG", conf)
    assert rc == 200, "a missing SFTP root must abort recovery, not read as \"not found\"\n" + describe(rc, out, err)
    assert not (work / "no").exists(), "the root was created without walship init"


def test_unreachable_server(ws, work, datadir, sshd):  # noqa: F811
    url = f"sftp://postgres@127.0.0.1:{free_port()}{work}/repo"
    cfg = write_config(work, "c.conf", sshd.config_text() + "io-timeout = 5\n")
    t0 = time.monotonic()
    rc, out, err = push(ws, url, datadir, cfg)
    assert rc == 1, describe(rc, out, err)
    assert "could not connect" in err and "Connection refused" in err, err
    rc, out, err = fetch(ws, url, datadir, work / "RECOVERYXLOG", cfg)
    assert rc == 200, describe(rc, out, err)
    assert "could not connect" in err, err
    assert time.monotonic() - t0 < 15, "connection retries took longer than io-timeout"


def test_server_killed_mid_upload(ws, own_sshd, work, datadir64):  # noqa: F811
    server = own_sshd
    cfg = write_config(work, "c.conf", server.config_text() + "io-timeout = 10\n")
    url, view = init_repo(ws, server, work, datadir64, cfg)
    # Random bytes do not compress: the object is about 48 MiB, long enough to be caught mid-write.
    seg = make_segment(datadir64 / "pg_wal" / FIRST_SEGMENT, work / FIRST_SEGMENT, 16 << 20, 48 << 20)
    want = sha256_file(seg)
    cmd = [ws.push_bin, f"--config={cfg}", f"--repo={url}", seg, FIRST_SEGMENT]
    proc = popen(cmd, cwd=datadir64, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        killed = False
        while time.monotonic() < deadline and proc.poll() is None:
            temps = [Path(p) for p in view.dot_files()]
            if any(p.exists() and p.stat().st_size >= 4 << 20 for p in temps):
                server.kill()
                killed = True
                break
            time.sleep(0.005)
        out, err = proc.communicate(timeout=60)
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert killed, "the push ended before the server could be killed mid-upload\n" + describe(proc.returncode, out, err)
    assert proc.returncode == 1, describe(proc.returncode, out, err)
    assert "lost" in err or "could not" in err, err
    assert view.objects() == {}, f"a partial object is visible: {view.objects()}"

    server.start()
    rc, out, err = ws.push(url, seg, FIRST_SEGMENT, datadir64, config=cfg)
    assert rc == 0, "push after the server came back\n" + describe(rc, out, err)
    assert zstd_sha256(view.key_path(FIRST_SEGMENT)) == want


def test_retries_are_reported_while_sshd_is_down(ws, own_sshd, work, datadir):  # noqa: F811
    """sshd down: the push says at the first retry that it retries until io-timeout, every 10 s that
    it still does, and when it gives up; started again meanwhile, the push gets through and says so."""
    server = own_sshd
    cfg = write_config(work, "c.conf", server.config_text() + "io-timeout = 15\n")
    url, view = init_repo(ws, server, work, datadir, cfg)
    server.stop()
    try:
        t0 = time.monotonic()
        rc, out, err = push(ws, url, datadir, cfg)
        took = time.monotonic() - t0
        assert rc == 1, describe(rc, out, err)
        assert 12.5 < took < 22, f"the push took {took:.1f} s with io-timeout = 15"
        host = f"127.0.0.1:{server.port}"
        lines = err.splitlines()
        assert lines[0] == (f'walship-push: warning: could not connect to SSH server "{host}": Connection refused; '
                            "retrying for up to 15 s (io-timeout)"), err
        assert lines[1].startswith("walship-push: hint: "), err
        still = [x for x in lines if x.startswith(f'walship-push: warning: still retrying to connect to SSH server "{host}": ')]
        assert len(still) == 1 and "last: Connection refused; gives up after io-timeout (15 s)" in still[0], err
        assert re.search(rf'^walship-push: warning: gave up trying to connect to SSH server "{re.escape(host)}" after '
                         r"\d+ retries in 1\d s \(io-timeout is 15 s\): Connection refused$", err, re.M), err
        assert re.search(r"^walship-push: error: could not archive .*could not connect to .*Connection refused", err, re.M), err
        assert view.objects() == {}, view.objects()

        # Started again while a push retries: it gets through, and says after how long.
        proc = popen([ws.push_bin, f"--config={cfg}", f"--repo={url}", SEG_PATH, FIRST_SEGMENT], cwd=datadir,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        server.start()
        out, err = proc.communicate(timeout=60)
    finally:
        if not server.running():
            server.start()
    assert proc.returncode == 0, describe(proc.returncode, out, err)
    assert re.search(rf'^walship-push: warning: could connect to SSH server "127.0.0.1:{server.port}" after \d+ '
                     r'retr(y|ies) in [\d.]+ s: SSH server "127.0.0.1:\d+" answers again$', err, re.M), err
    assert zstd_sha256(view.key_path(FIRST_SEGMENT)) == sha256_file(datadir / SEG_PATH)
