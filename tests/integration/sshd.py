"""A real OpenSSH server for walship's SFTP tests.

SshServer starts /usr/sbin/sshd (as root) on 127.0.0.1 on a free port with
its own configuration, host keys and authorized_keys in a temp dir, and a key
pair and known_hosts file for the postgres user, who logs in with it (Debian's
postgres account is locked: sshd accepts key logins only with UsePAM yes).

`sync` on the server's PATH is a wrapper that records its arguments in
`sync_log` and fails while `sync_fail` exists, so tests can see the
directory sync a put runs over an exec channel, and make it fail.

The `sshd` fixture (session scope) fails, never skips, when the server
cannot start.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pgcluster import PG_USER, chown_pg, free_port, make_pg_dir, make_tmp_root, remove_tree, write_pg_file

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
START_TIMEOUT_S = 15


def keygen(path, key_type="ed25519", passphrase="", comment="walship-test", extra=()):
    """Generate a key pair at path (and path.pub) with ssh-keygen."""
    path = Path(path)
    for p in (path, Path(f"{path}.pub")):
        if p.exists():
            p.unlink()
    cmd = [SSH_KEYGEN, "-q", "-t", key_type, "-N", passphrase, "-C", comment, "-f", str(path), *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return path


def fingerprint(pub_path):
    """"SHA256:..." of a public key file, as ssh-keygen -lf prints it."""
    out = subprocess.run([SSH_KEYGEN, "-lf", str(pub_path)], check=True, capture_output=True, text=True).stdout
    return out.split()[1]


def _children(pid):
    """Every descendant of pid (from /proc), deepest last."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces: the ppid is the 2nd field after the last ")".
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in parents.get(p, []):
            out.append(c)
            todo.append(c)
    return out


class SshServer:
    def __init__(self, port=None, log_level="VERBOSE"):
        self.dir = make_tmp_root("walship-sshd-")
        self.port = port or free_port()
        self.log_level = log_level
        self.proc = None
        self.log = self.dir / "sshd.log"
        self.config = self.dir / "sshd_config"
        self.pidfile = self.dir / "sshd.pid"
        self.host_key = keygen(self.dir / "host_ed25519", "ed25519")
        self.host_key_ecdsa = keygen(self.dir / "host_ecdsa", "ecdsa")
        # Everything of the client side belongs to postgres.
        self.user_dir = make_pg_dir(self.dir / "user", 0o700)
        self.user_key = keygen(self.user_dir / "id_ed25519", "ed25519")
        chown_pg(self.user_key)
        chown_pg(f"{self.user_key}.pub")
        os.chmod(self.user_key, 0o600)
        self.authorized_keys = self.dir / "authorized_keys"
        self.set_authorized_keys([f"{self.user_key}.pub"])
        self.known_hosts = self.user_dir / "known_hosts"
        write_pg_file(self.known_hosts, self.known_hosts_line() + "\n", 0o600)
        # The sync wrapper (see the module docstring).
        self.bin_dir = make_pg_dir(self.dir / "bin", 0o755)
        self.sync_log = write_pg_file(self.dir / "sync.log", b"", 0o666)
        self.sync_fail = self.dir / "sync_fail"
        wrapper = self.bin_dir / "sync"
        wrapper.write_text(
            "#!/bin/sh\n"
            f"printf '%s\\n' \"$*\" >> '{self.sync_log}'\n"
            f"if [ -e '{self.sync_fail}' ]; then echo 'sync: simulated failure' >&2; exit 1; fi\n"
            "exec /bin/sync \"$@\"\n")
        os.chmod(wrapper, 0o755)
        self._write_config()

    # ------------------------------------------------------------------
    # configuration

    def _write_config(self):
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"HostKey {self.host_key_ecdsa}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"PidFile {self.pidfile}",
            "Subsystem sftp internal-sftp",
            "StrictModes no",
            "UsePAM yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin no",
            f"AllowUsers {PG_USER}",
            "MaxStartups 100:30:200",
            "MaxSessions 100",
            "PrintMotd no",
            f"LogLevel {self.log_level}",
            f"SetEnv PATH={self.bin_dir}:/usr/local/bin:/usr/bin:/bin",
        ]
        self.config.write_text("\n".join(lines) + "\n")

    def set_authorized_keys(self, pub_paths):
        """Replace authorized_keys with the given public key files (sshd reads it as postgres)."""
        text = "".join(Path(p).read_text() for p in pub_paths)
        self.authorized_keys.write_text(text)
        os.chmod(self.authorized_keys, 0o644)

    def known_hosts_line(self, pub_path=None):
        """The known_hosts line for this server: "[127.0.0.1]:PORT ssh-ed25519 AAAA..."."""
        key_type, blob = Path(pub_path or f"{self.host_key}.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {key_type} {blob}"

    def fingerprint(self, pub_path=None):
        return fingerprint(pub_path or f"{self.host_key}.pub")

    def url(self, path, user=PG_USER):
        return f"sftp://{user}@127.0.0.1:{self.port}{path}"

    def config_text(self, root_path=None, known_hosts=None, key_file=None):
        """walship configuration lines to reach this server (root_path: adds repo = URL)."""
        lines = [
            f"sftp-key-file = {key_file or self.user_key}",
            f"sftp-known-hosts = {known_hosts or self.known_hosts}",
        ]
        if root_path is not None:
            lines.insert(0, f"repo = {self.url(root_path)}")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------
    # process control

    def start(self):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        check = subprocess.run([SSHD, "-t", "-f", str(self.config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"sshd refuses its configuration {self.config}:\n{check.stderr}")
        self.log.write_text("") if not self.log.exists() else None
        self.proc = subprocess.Popen([SSHD, "-D", "-f", str(self.config), "-E", str(self.log)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")
                raise RuntimeError(f"sshd exited with code {self.proc.returncode} at start:\n{err}\n"
                                   f"log:\n{self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.settimeout(2)
                    if s.recv(4).startswith(b"SSH-"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"sshd did not answer on 127.0.0.1:{self.port} within {START_TIMEOUT_S} s:\n"
                           f"{self.log_text()}")

    def _signal_all(self, sig):
        if self.proc is None:
            return
        pids = [self.proc.pid] + _children(self.proc.pid)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        """SIGKILL of the listener and every session process: a server dying mid-transfer."""
        if self.proc is None:
            return
        self._signal_all(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc is None:
            return
        self._signal_all(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def restart(self):
        """Stop (kill) and start again on the same port with the same keys."""
        self.kill()
        return self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def sync_calls(self):
        return [line for line in self.sync_log.read_text().splitlines() if line]

    def cleanup(self):
        self.stop()
        remove_tree(self.dir)


def start_server(**kwargs):
    """An SshServer started, or pytest.fail with why (tests never skip for want of a server)."""
    if not os.path.exists(SSHD):
        pytest.fail(f"{SSHD} is missing: apt-get install openssh-server", pytrace=False)
    server = None
    try:
        server = SshServer(**kwargs)
        return server.start()
    except Exception as e:  # noqa: BLE001 - any failure to start is reported the same way
        if server is not None:
            server.cleanup()
        pytest.fail(f"could not start sshd for the SFTP tests: {e}", pytrace=False)


@pytest.fixture(scope="session")
def sshd():
    server = start_server()
    yield server
    server.cleanup()


@pytest.fixture
def own_sshd():
    """A server of the test's own, for tests that kill or reconfigure it."""
    server = start_server()
    yield server
    server.cleanup()
