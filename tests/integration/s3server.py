"""A real S3 server for walship's integration tests: s3rver behind the
checking proxy of tests/s3proxy (SigV4 signatures, session tokens, clock skew,
x-amz-content-sha256 against the body, If-None-Match: *), with fault injection
and a request log.

    from s3server import s3server, s3bucket  # noqa: F401

    def test_x(s3server, s3bucket):
        cfg = s3server.config_text(s3bucket, prefix="repo")   # walship config lines
        url = s3server.url(s3bucket, "repo")                  # s3://bucket/repo
        s3server.add_fault(method="PUT", action="status", status=503, code="SlowDown", count=2)
        s3server.log()                                        # requests seen, oldest first

The proxy needs Node (>= 18) and its packages: `cd tests/s3proxy && npm ci`.
Without them the fixtures fail (they never skip).
"""

import json
import os
import secrets
import select
import shutil
import signal
import string
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROXY_DIR = REPO_ROOT / "tests" / "s3proxy"
PROXY_JS = PROXY_DIR / "proxy.js"
START_TIMEOUT = 30


class S3ServerError(Exception):
    pass


def _node():
    for cand in (os.environ.get("WALSHIP_NODE"), "/usr/bin/node", shutil.which("node")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def _rand(alphabet, n):
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _new_key():
    return "AKIA" + _rand(string.ascii_uppercase + string.digits, 16)


def _new_secret():
    return _rand(string.ascii_letters + string.digits, 40)


class S3Server:
    """One proxy + s3rver process; data in <tmpdir>/data survives kill() and restart().

    Attributes: endpoint ("http://127.0.0.1:PORT"), port, region, key, secret
    (a permanent credential), token_key, token_secret, token (a temporary
    credential: refused without its x-amz-security-token).
    """

    def __init__(self, tmpdir, region="us-east-1"):
        self.tmpdir = Path(tmpdir)
        self.data_dir = self.tmpdir / "data"
        self.log_path = self.tmpdir / "proxy.log"
        self.region = region
        self.key = _new_key()
        self.secret = _new_secret()
        self.token_key = _new_key()
        self.token_secret = _new_secret()
        # Real session tokens are long base64 strings: keep '/', '+' and '='.
        self.token = "FwoG" + _rand(string.ascii_letters + string.digits + "/+", 120) + "=="
        self.port = 0
        self.endpoint = None
        self.proc = None
        self._stderr = None

    # -- process --------------------------------------------------------

    def start(self):
        """Starts the proxy (port 0 the first time, then the same port); raises S3ServerError."""
        node = _node()
        if node is None:
            raise S3ServerError("node not found (apt-get install nodejs, or set WALSHIP_NODE)")
        if not (PROXY_DIR / "node_modules" / "s3rver").is_dir():
            raise S3ServerError(f"the S3 test proxy's packages are missing in {PROXY_DIR}/node_modules; "
                                "run: cd tests/s3proxy && npm ci")
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [node, "--openssl-legacy-provider", str(PROXY_JS), "--port", str(self.port),
               "--data", str(self.data_dir), "--region", self.region,
               "--credentials", f"{self.key}:{self.secret}",
               "--credentials", f"{self.token_key}:{self.token_secret}:{self.token}"]
        self._stderr = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, start_new_session=True, cwd=str(PROXY_DIR))
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                self._reap()
                raise S3ServerError(f"the S3 test proxy did not print READY within {START_TIMEOUT} s"
                                    f"{self._stderr_tail()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    self._reap()
                    raise S3ServerError(f"the S3 test proxy exited before it was ready{self._stderr_tail()}")
                line += ch
        words = line.decode().split()
        if len(words) != 2 or words[0] != "READY":
            self._reap()
            raise S3ServerError(f"unexpected first line from the S3 test proxy: {line!r}{self._stderr_tail()}")
        self.port = int(words[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        return self

    def _stderr_tail(self):
        try:
            text = self.log_path.read_text(errors="replace").strip()
        except OSError:
            return ""
        return ":\n" + text[-3000:] if text else ""

    def _reap(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL: the server dies mid-whatever, as a crashed or unreachable S3 would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._reap()

    def restart(self):
        """Kills if needed and starts again on the same port with the same data."""
        self.kill()
        deadline = time.monotonic() + 10
        while True:
            try:
                return self.start()
            except S3ServerError:
                # The port may linger for a moment after a kill.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._reap()

    # -- control API ----------------------------------------------------

    def _control(self, method, what, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.endpoint}/__walship/{what}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise S3ServerError(f"{method} /__walship/{what}: {e.code} {e.read().decode(errors='replace')}")

    def add_fault(self, **rule):
        """Adds a fault rule: action="status" (status=, code=; or body= and content_type=,
        default text/html, for an answer that does not come from S3, such as a misrouting
        proxy's 404 page: no S3 error document, no x-amz-request-id), "drop" (after_bytes=),
        "delay" (delay_ms=) or "skew"; method=, path_regex= (searched in path?query)
        select requests; count= shots (default 1, -1 forever)."""
        return self._control("POST", "faults", rule)

    def clear_faults(self):
        self._control("DELETE", "faults")

    def faults(self):
        """The rules with their remaining count and "fired" (times used)."""
        return self._control("GET", "faults")

    def log(self):
        """Requests seen since the last clear_log(), oldest first: dicts with seq, conn (connection
        number: equal for requests on one kept-alive connection), method, path (as sent, escaped),
        query (raw), status (None if dropped or still running), code (S3 error code or None),
        akid (the access key the request claims, None if unsigned), signed (the header names of
        its SignedHeaders, None if unsigned), fault (last action that fired or None), dropped,
        truncated, aborted (booleans), headers {if-none-match, x-amz-content-sha256, x-amz-date,
        content-length, range, expect} (None when absent).  Every key is always present."""
        return self._control("GET", "log")

    def clear_log(self):
        self._control("DELETE", "log")

    def uploads(self):
        """Multipart uploads in progress: [{bucket, key, uploadId, parts: [numbers]}]."""
        return self._control("GET", "uploads")

    def deny_list_bucket(self, on=True):
        """on: GET/HEAD of a missing key answers 403 AccessDenied instead of 404 (as S3 does for a
        caller without s3:ListBucket)."""
        self._control("POST", "deny-list-bucket", {"on": bool(on)})

    # -- clients and walship configuration ------------------------------

    def boto3_client(self, key=None, secret=None, token=None):
        """A boto3 S3 client on the proxy (path style, SigV4, no retries); the permanent
        credential unless key/secret/token are given."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=key if key is not None else self.key,
            aws_secret_access_key=secret if secret is not None else self.secret,
            aws_session_token=token,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"total_max_attempts": 1, "mode": "standard"},
                          connect_timeout=10, read_timeout=120),
        )

    def create_bucket(self, name):
        self.boto3_client().create_bucket(Bucket=name)
        return name

    def config_text(self, bucket=None, prefix=None, token=False):
        """walship configuration lines for this server (bucket and prefix are not part of them:
        they go in the repository URL, see url())."""
        del bucket, prefix
        lines = [f"s3-endpoint = {self.endpoint}", f"s3-region = {self.region}", "s3-uri-style = path"]
        if token:
            lines += [f"s3-key = {self.token_key}", f"s3-key-secret = {self.token_secret}",
                      f"s3-token = {self.token}"]
        else:
            lines += [f"s3-key = {self.key}", f"s3-key-secret = {self.secret}"]
        return "\n".join(lines) + "\n"

    @staticmethod
    def url(bucket, prefix=None):
        return f"s3://{bucket}/{prefix.strip('/')}" if prefix else f"s3://{bucket}"


# ----------------------------------------------------------------------
# pytest fixtures

_bucket_counter = [0]


@pytest.fixture(scope="session")
def s3server():
    """The session's S3 server; fails (never skips) when it cannot start."""
    tmp = Path(tempfile.mkdtemp(prefix="walship-it-s3-", dir="/tmp"))
    os.chmod(tmp, 0o755)
    server = S3Server(tmp)
    try:
        server.start()
    except S3ServerError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"cannot start the S3 test server: {e}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def s3bucket(s3server):
    """A fresh, uniquely named bucket; faults, deny-list-bucket mode and the log cleared.
    A server a previous test killed is started again first."""
    if not s3server.alive():
        try:
            s3server.restart()
        except S3ServerError as e:
            pytest.fail(f"cannot restart the S3 test server: {e}", pytrace=False)
    s3server.clear_faults()
    s3server.deny_list_bucket(False)
    _bucket_counter[0] += 1
    name = f"wt{_bucket_counter[0]:04d}-{secrets.token_hex(4)}"
    s3server.create_bucket(name)
    s3server.clear_log()
    yield name
    if s3server.alive():
        s3server.clear_faults()
        s3server.deny_list_bucket(False)
