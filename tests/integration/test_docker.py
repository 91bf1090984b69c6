"""walship in Docker (packaging/docker/, docs/docker.md): the classic primary/standby set-up with
the data directory and the WAL archive on external volumes, with walship instead of cp and a
hand-written recovery.conf.

The module starts dockerd if no Docker engine answers (no bridge, no iptables: containers run on
--network host only), builds the stand-in of the official postgres:15 image from a Debian 12 root
(Docker Hub is out of reach here) and walship's image on it from a .deb of this tree
(scripts/docker-build, as `make docker DOCKER_BASE=standin` does), and runs containers whose
volumes are temporary host directories:

- a primary archiving into a repository volume (walship init run by the image on the new cluster);
  walship check, backup, list and verify through docker exec;
- a point-in-time rebuild in a one-shot container into a new volume, started as a new container:
  exactly the rows at the target, and a copy that does not archive;
- a standby rebuilt with --standby in a one-shot container, started, streaming; promoted, it
  archives its new timeline into the same repository;
- the primary killed with docker kill while it archives, started again: walship verify --full
  finds the repository whole, no WAL file missing;
- an in-place restore: the primary's container stopped, rebuilt into its own volume, started; the
  rows at the target, and its new timeline archived;
- an S3 repository with the keys given as files (Docker secrets): archived, and the secret is in
  no command line, environment or docker inspect output;
- refusals: a local repository not on a volume; a repository volume of another cluster.

Every container, image and volume made is removed, and a daemon started here is stopped.  Needs
root, docker.io and debootstrap (.ci/run installs them).
"""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from pgcluster import free_port, make_tmp_root, remove_tree, sha256_file, wait_for, zstd_sha256
from s3server import s3bucket, s3server  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[2]
PGDATA = "/var/lib/postgresql/data"
REPO = "/var/lib/walship"
TAG = secrets.token_hex(4)
IMAGE = f"walship-it:{TAG}"
STANDIN = f"walship-it-standin:{TAG}"
STANDIN_ROOT = f"walship-it-standin-root:{TAG}"


def _docker_cli():
    # The engine's own client first (docker.io's), then whatever docker is on PATH.
    for cand in ("/usr/bin/docker", shutil.which("docker")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


class Docker:
    """The docker CLI against one engine, remembering what it made."""

    def __init__(self, cli, env):
        self.cli = cli
        self.env = env
        self.containers = []

    def __call__(self, *args, timeout=120, check=True):
        p = subprocess.run([self.cli, *map(str, args)], env=self.env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            assert p.returncode == 0, (f"docker {' '.join(map(str, args))}: exit code {p.returncode}\n"
                                       f"stdout:\n{p.stdout[-4000:]}\nstderr:\n{p.stderr[-4000:]}")
        return p

    def name(self, what):
        n = f"walship-it-{what}-{TAG}"
        self.containers.append(n)
        return n

    def logs(self, name):
        p = self("logs", name, check=False)
        return p.stdout + p.stderr

    def exec(self, name, *cmd, timeout=120, check=True):
        return self("exec", "-u", "postgres", name, *cmd, timeout=timeout, check=check)

    def sql(self, name, query):
        return self.exec(name, "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", query).stdout.strip()

    @staticmethod
    def _mounts(volumes, env):
        """-v HOST:INSIDE and -e VAR=VALUE options."""
        opts = []
        for host, inside in volumes.items():
            opts += ["-v", f"{host}:{inside}"]
        for e in env:
            opts += ["-e", e]
        return opts

    def run_pg(self, name, port, volumes, env=()):
        """A PostgreSQL container of walship's image, detached, on the host's network."""
        self("run", "-d", "--name", name, "--network", "host", "-e", f"PGPORT={port}", *self._mounts(volumes, env),
             IMAGE)
        self.wait_ready(name)

    def wait_ready(self, name, timeout=90):
        """Ready: the server running as the container's PID 1 (not initdb's temporary one) answers."""

        def ready():
            st = self("inspect", "-f", "{{.State.Status}}", name, check=False).stdout.strip()
            assert st in ("created", "running"), f"container {name} is {st}"
            pid = self("exec", name, "sh", "-c", f"head -n1 {PGDATA}/postmaster.pid", check=False).stdout.strip()
            return pid == "1" and self.exec(name, "pg_isready", "-q", check=False).returncode == 0

        wait_for(ready, timeout, lambda: f"container {name} not ready; its log:\n{self.logs(name)[-4000:]}")

    def one_shot(self, volumes, *cmd, env=(), timeout=300, check=True):
        """docker run --rm of walship's image (its entrypoint runs walship as postgres)."""
        return self("run", "--rm", "--network", "host", *self._mounts(volumes, env), IMAGE, *cmd,
                    timeout=timeout, check=check)


def _start_dockerd(cli, env):
    """A private dockerd: own data root, own socket, no bridge and no iptables rules."""
    data = Path(tempfile.mkdtemp(prefix="walship-dockerd-", dir="/var/tmp"))
    run_dir = Path(tempfile.mkdtemp(prefix="wsd-", dir="/run"))
    sock = run_dir / "docker.sock"
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    assert os.access(dockerd, os.X_OK), "dockerd is missing: apt-get install docker.io"
    with open(data / "dockerd.log", "w") as log:
        proc = subprocess.Popen([dockerd, "--bridge=none", "--iptables=false", "--ip6tables=false",
                                 f"--data-root={data / 'root'}", f"--exec-root={run_dir / 'exec'}",
                                 f"--pidfile={run_dir / 'dockerd.pid'}", "-H", f"unix://{sock}"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    env = {**env, "DOCKER_HOST": f"unix://{sock}"}

    def up():
        assert proc.poll() is None, f"dockerd exited with {proc.returncode}"
        return subprocess.run([cli, "info"], env=env, capture_output=True).returncode == 0

    try:
        wait_for(up, 60, lambda: "dockerd did not answer:\n" + (data / "dockerd.log").read_text()[-3000:])
    except BaseException:
        _stop_dockerd(proc, data, run_dir)
        raise
    return proc, data, run_dir, env


def _stop_dockerd(proc, data, run_dir):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    remove_tree(run_dir)
    remove_tree(data)


@pytest.fixture(scope="module")
def docker():
    assert os.geteuid() == 0, "the Docker tests start dockerd and containers: run them as root"
    cli = _docker_cli()
    assert cli, "no docker command: apt-get install docker.io"
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    ours = None
    if subprocess.run([cli, "info"], env=env, capture_output=True).returncode != 0:
        ours = _start_dockerd(cli, env)
        env = ours[3]
    d = Docker(cli, env)
    out = Path(tempfile.mkdtemp(prefix="walship-it-deb-", dir="/var/tmp"))
    try:
        p = subprocess.run([REPO_ROOT / "scripts" / "docker-build", out], capture_output=True, text=True,
                           timeout=1200, stdin=subprocess.DEVNULL,
                           env={**env, "DOCKER": cli, "DOCKER_BASE": "standin", "DOCKER_TAG": IMAGE,
                                "STANDIN_TAG": STANDIN, "STANDIN_ROOT_TAG": STANDIN_ROOT,
                                "DEB_BUILD_OPTIONS": "nocheck"})
        assert p.returncode == 0, f"scripts/docker-build failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}"
        assert p.stdout.strip().splitlines()[-1] == IMAGE
        yield d
    finally:
        for c in d.containers:
            d("rm", "-f", "-v", c, check=False)
        for image in (IMAGE, STANDIN, STANDIN_ROOT):
            d("rmi", "-f", image, check=False)
        d("image", "prune", "-f", check=False)
        remove_tree(out)
        if ours:
            _stop_dockerd(ours[0], ours[1], ours[2])


@pytest.fixture(scope="module")
def vols():
    root = make_tmp_root("walship-it-docker-")
    yield root
    remove_tree(root)


class Primary:
    def __init__(self, name, port, data, repo):
        self.name, self.port, self.data, self.repo = name, port, data, repo


def wal_dir(repo, tli=1):
    return repo / "15-1" / "wal" / f"{tli:08X}00000000"


@pytest.fixture(scope="module")
def primary(docker, vols):
    """The primary: data and repository on host directories, the password a secret file."""
    data, repo = vols / "primary-data", vols / "repo"
    data.mkdir()
    repo.mkdir()
    pw = vols / "pgpass"
    pw.write_text("docker-secret-pw\n")
    name, port = docker.name("primary"), free_port()
    docker.run_pg(name, port, {data: PGDATA, repo: REPO, pw: "/run/secrets/pgpass:ro"},
                  env=("POSTGRES_PASSWORD_FILE=/run/secrets/pgpass", f"WALSHIP_REPO={REPO}"))
    return Primary(name, port, data, repo)


def archived(docker, name, walfile):
    """Whether the server has archived walfile (or a later file of its timeline)."""
    last = docker.sql(name, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
    return len(last) == 24 and last[:8] == walfile[:8] and last >= walfile


def switch_and_wait(docker, name, timeout=60):
    """Switch WAL and wait until the switched file is archived; its name."""
    walfile = docker.sql(name, "SELECT pg_walfile_name(pg_current_wal_lsn())")
    docker.sql(name, "SELECT pg_switch_wal()")
    wait_for(lambda: archived(docker, name, walfile), timeout,
             lambda: f"{walfile} not archived: {docker.sql(name, 'SELECT * FROM pg_stat_archiver')}\n"
                     f"{docker.logs(name)[-3000:]}")
    return walfile


def test_primary_archives_into_its_repository_volume(docker, primary):
    log = docker.logs(primary.name)
    assert "walship-init" in log or "initialised repository" in log, log[-3000:]
    for line in ("archive_mode = 'on'", "archive_command = 'walship-push %p %f'",
                 "restore_command = 'walship-fetch %f %p'"):
        assert f"walship-docker-entrypoint: {line}" in log, log[-3000:]

    # walship init ran on the new cluster: the repository volume belongs to it.
    meta = json.loads((primary.repo / "walship.json").read_text())
    sysid = docker.sql(primary.name, "SELECT system_identifier FROM pg_control_system()")
    assert [str(e["system_identifier"]) for e in meta["epochs"]] == [sysid], meta

    # The configuration the entrypoint wrote: root:postgres 0640, with the repository.
    st = docker("exec", primary.name, "stat", "-c", "%a %U:%G", "/etc/walship/walship.conf").stdout.split()
    assert st == ["640", "root:postgres"], st
    conf = docker("exec", primary.name, "cat", "/etc/walship/walship.conf").stdout
    assert f"repo = '{REPO}'" in conf, conf

    docker.sql(primary.name, "CREATE TABLE t (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
    docker.sql(primary.name, "INSERT INTO t (id) SELECT generate_series(1, 1000)")
    walfile = switch_and_wait(docker, primary.name)
    obj = wal_dir(primary.repo) / walfile
    assert obj.is_file(), sorted(os.listdir(wal_dir(primary.repo)))
    # Byte for byte the server's segment (still in pg_wal: no checkpoint since), through stock zstd -d.
    assert zstd_sha256(obj) == sha256_file(primary.data / "pg_wal" / walfile)

    p = docker.exec(primary.name, "walship", "check", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "all checks passed" in p.stdout, p.stdout
    assert "warning" not in p.stdout + p.stderr, p.stdout + p.stderr


def test_backup_list_and_verify_through_docker_exec(docker, primary):
    p = docker.exec(primary.name, "walship", "backup", timeout=300)
    m = re.search(r'backup "(\w+)" complete', p.stdout + p.stderr)
    assert m, p.stdout + p.stderr
    assert m.group(1) in docker.exec(primary.name, "walship", "list").stdout
    assert (primary.repo / "15-1" / "backups" / m.group(1) / "manifest.json").is_file(), \
        "the backup is not in the repository volume"
    p = docker.exec(primary.name, "walship", "verify", check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_point_in_time_rebuild_into_a_new_container(docker, primary, vols):
    docker.sql(primary.name, "INSERT INTO t (id) SELECT generate_series(1001, 2000)")
    target = docker.sql(primary.name, "SELECT clock_timestamp()")
    time.sleep(1.2)
    docker.sql(primary.name, "INSERT INTO t (id) SELECT generate_series(2001, 3000)")
    switch_and_wait(docker, primary.name)

    data = vols / "pitr-data"
    data.mkdir()
    p = docker.one_shot({data: PGDATA, primary.repo: REPO}, "walship", "rebuild", f"--pgdata={PGDATA}",
                        f"--target-time={target}", "--target-action=promote", env=(f"WALSHIP_REPO={REPO}",))
    assert "rebuilt from backup" in p.stdout, p.stdout + p.stderr
    assert os.stat(data / "PG_VERSION").st_uid == 999, "the rebuilt files are not the container's postgres's"

    name, port = docker.name("pitr"), free_port()
    docker.run_pg(name, port, {data: PGDATA, primary.repo: REPO}, env=(f"WALSHIP_REPO={REPO}",))
    wait_for(lambda: docker.sql(name, "SELECT pg_is_in_recovery()") == "f", 90,
             lambda: docker.logs(name)[-3000:])
    assert docker.sql(name, "SELECT count(*), min(id), max(id) FROM t") == "2000|1|2000"
    assert docker.sql(name, f"SELECT count(*) FROM t WHERE at > '{target}'") == "0"
    # A copy: rebuild's archive_mode = off stands, so it archives nothing into the primary's repository.
    assert docker.sql(name, "SHOW archive_mode") == "off"
    assert "archive_mode: postgresql.auto.conf's" in docker.logs(name)
    docker("rm", "-f", "-v", name)


def test_standby_container_streams_then_promoted_archives(docker, primary, vols):
    data = vols / "standby-data"
    data.mkdir()
    app = "standby_" + TAG
    p = docker.one_shot({data: PGDATA, primary.repo: REPO}, "walship", "rebuild", f"--pgdata={PGDATA}", "--standby",
                        f"--primary-conninfo=host=127.0.0.1 port={primary.port} user=postgres application_name={app}",
                        env=(f"WALSHIP_REPO={REPO}",))
    assert "standby.signal written" in p.stdout, p.stdout + p.stderr

    name, port = docker.name("standby"), free_port()
    docker.run_pg(name, port, {data: PGDATA, primary.repo: REPO}, env=(f"WALSHIP_REPO={REPO}",))
    wait_for(lambda: docker.sql(primary.name, f"SELECT state FROM pg_stat_replication WHERE application_name = '{app}'")
             == "streaming", 60, lambda: docker.logs(name)[-3000:])
    assert docker.sql(name, "SELECT pg_is_in_recovery()") == "t"
    docker.sql(primary.name, "INSERT INTO t (id) SELECT generate_series(3001, 3500)")
    wait_for(lambda: docker.sql(name, "SELECT count(*) FROM t") == "3500", 30, "the standby did not replay the rows")

    # Promoted: timeline 2, archived into the same repository volume.
    docker.exec(name, "pg_ctl", "promote", "-w", "-D", PGDATA)
    assert docker.sql(name, "SELECT pg_is_in_recovery()") == "f"
    docker.sql(name, "INSERT INTO t (id) SELECT generate_series(9001, 9100)")
    walfile = switch_and_wait(docker, name)
    assert walfile.startswith("00000002"), walfile
    assert (primary.repo / "15-1" / "wal" / "00000002.history").is_file()
    obj = wal_dir(primary.repo, 2) / walfile
    assert obj.is_file(), sorted(os.listdir(obj.parent)) if obj.parent.exists() else "no timeline 2 directory"
    assert zstd_sha256(obj) == sha256_file(data / "pg_wal" / walfile)
    assert docker.sql(name, "SELECT failed_count FROM pg_stat_archiver") == "0"
    docker("rm", "-f", "-v", name)


def test_docker_kill_while_archiving_loses_nothing(docker, primary):
    status = primary.data / "pg_wal" / "archive_status"

    def marked(suffix):
        return {f for f in os.listdir(status) if f.endswith(suffix)}

    def load():
        return subprocess.Popen([docker.cli, "exec", "-u", "postgres", primary.name, "pgbench", "-i", "-q", "-s", "15"],
                                env=docker.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # Killed while the archiver has work: some files archived since the load began, some waiting.
    # The load (pgbench -i) is started again until that moment comes.
    # (.done names seen, as a checkpoint may remove the marks of recycled files)
    before = marked(".done")
    done = set()
    pgbench = load()
    pending = []
    deadline = time.monotonic() + 180
    try:
        while not pending:
            assert time.monotonic() < deadline, "the load never left WAL files waiting to be archived"
            ready = sorted(marked(".ready"))
            done |= marked(".done") - before
            if len(done) >= 2 and ready:
                pending = ready
            elif pgbench.poll() is not None:
                pgbench = load()
            else:
                time.sleep(0.02)
        docker("kill", primary.name)
    finally:
        pgbench.wait(timeout=60)
    assert pending, "nothing was waiting when the primary was killed"
    assert docker("inspect", "-f", "{{.State.Running}}", primary.name).stdout.strip() == "false"

    docker("start", primary.name)
    docker.wait_ready(primary.name)
    last = switch_and_wait(docker, primary.name, timeout=180)
    # The entrypoint ran again: walship.conf has its block once, not once per start.
    conf = docker("exec", primary.name, "cat", "/etc/walship/walship.conf").stdout
    assert conf.count("walship-docker-entrypoint: from the environment") == 1, conf
    assert conf.count(f"repo = '{REPO}'") == 1, conf

    # Every WAL file of timeline 1 from the first to the last switched is in the repository.
    names = sorted(f for f in os.listdir(wal_dir(primary.repo)) if re.fullmatch(r"[0-9A-F]{24}", f))
    expected = [f"00000001{0:08X}{n:08X}" for n in range(1, int(last[16:], 16) + 1)]
    assert last[8:16] == "00000000"
    assert [n for n in expected if n not in names] == [], "WAL files missing after docker kill"
    p = docker.exec(primary.name, "walship", "verify", "--full", check=False, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert docker.sql(primary.name, "SELECT count(*) FROM t") == "3500"


def test_in_place_restore_of_the_primary_into_its_own_volume(docker, primary):
    """Stop the primary's container, rebuild into its data volume with --force, start it: the rows
    at the target, and the new timeline archived (in place, archiving stays on)."""
    target = docker.sql(primary.name, "SELECT clock_timestamp()")
    time.sleep(1.2)
    docker.sql(primary.name, "DELETE FROM t WHERE id > 1000")
    switch_and_wait(docker, primary.name)
    sysid = docker.sql(primary.name, "SELECT system_identifier FROM pg_control_system()")
    docker("stop", primary.name, timeout=180)
    p = docker.one_shot({primary.data: PGDATA, primary.repo: REPO}, "walship", "rebuild", f"--pgdata={PGDATA}",
                        "--force", "--target-timeline=1", f"--target-time={target}", "--target-action=promote",
                        env=(f"WALSHIP_REPO={REPO}",))
    assert f"in-place restore of this cluster (system identifier {sysid})" in p.stdout, p.stdout + p.stderr
    docker("start", primary.name)
    docker.wait_ready(primary.name)
    wait_for(lambda: docker.sql(primary.name, "SELECT pg_is_in_recovery()") == "f", 90,
             lambda: docker.logs(primary.name)[-3000:])
    assert docker.sql(primary.name, "SELECT count(*) FROM t") == "3500"
    walfile = switch_and_wait(docker, primary.name)
    assert int(walfile[:8], 16) >= 3, walfile  # a timeline after the standby's 2
    assert (wal_dir(primary.repo, int(walfile[:8], 16)) / walfile).is_file()


def test_s3_repository_with_keys_from_secret_files(docker, vols, s3server, s3bucket):  # noqa: F811
    secrets_dir = vols / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "s3-key").write_text(s3server.key + "\n")
    (secrets_dir / "s3-key-secret").write_text(s3server.secret + "\n")
    (secrets_dir / "pgpass").write_text("pw\n")
    data = vols / "s3-data"
    data.mkdir()
    url = s3server.url(s3bucket, "pg")
    name, port = docker.name("s3"), free_port()
    docker.run_pg(name, port, {data: PGDATA, secrets_dir: "/run/secrets:ro"},
                  env=(f"WALSHIP_REPO={url}", f"WALSHIP_S3_ENDPOINT={s3server.endpoint}",
                       f"WALSHIP_S3_REGION={s3server.region}", "WALSHIP_S3_URI_STYLE=path",
                       "WALSHIP_S3_KEY_FILE=/run/secrets/s3-key", "WALSHIP_S3_KEY_SECRET_FILE=/run/secrets/s3-key-secret",
                       "POSTGRES_PASSWORD_FILE=/run/secrets/pgpass"))
    docker.sql(name, "CREATE TABLE s AS SELECT generate_series(1, 100) AS id")
    walfile = switch_and_wait(docker, name)
    keys = [o["Key"] for o in s3server.boto3_client().list_objects_v2(Bucket=s3bucket).get("Contents", [])]
    assert f"pg/15-1/wal/0000000100000000/{walfile}" in keys, keys
    p = docker.exec(name, "walship", "check", check=False)
    assert p.returncode == 0, p.stdout + p.stderr

    # The secret is in walship.conf (root:postgres 0640) and nowhere a process list or inspect shows.
    conf = docker("exec", name, "cat", "/etc/walship/walship.conf").stdout
    assert f"s3-key-secret = '{s3server.secret}'" in conf
    # Every process's command line and environment, read as postgres (the official image has no ps).
    procs = docker.exec(name, "sh", "-c", "cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null; true").stdout
    assert "archive_command=walship-push" in procs and f"PGDATA={PGDATA}" in procs, "no process was read"
    assert s3server.secret not in procs + docker("inspect", name).stdout
    assert "WALSHIP_S3_KEY_SECRET_FILE" not in docker.exec(name, "cat", "/proc/1/environ").stdout
    docker("rm", "-f", "-v", name)


def test_repository_not_on_a_volume_is_refused(docker, vols):
    data = vols / "novol-data"
    data.mkdir()
    p = docker("run", "--rm", "--network", "host", "-v", f"{data}:{PGDATA}", "-e", f"PGPORT={free_port()}",
               "-e", "POSTGRES_PASSWORD=pw", "-e", f"WALSHIP_REPO={REPO}", IMAGE, check=False, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"the repository {REPO} is not on a volume" in p.stderr, p.stderr
    assert not (data / "PG_VERSION").exists(), "initdb ran although the start was refused"


def test_repository_volume_of_another_cluster_stops_the_first_start(docker, primary, vols):
    before = (primary.repo / "walship.json").read_bytes()
    data = vols / "other-data"
    data.mkdir()
    p = docker("run", "--rm", "--network", "host", "-v", f"{data}:{PGDATA}", "-v", f"{primary.repo}:{REPO}",
               "-e", f"PGPORT={free_port()}", "-e", "POSTGRES_PASSWORD=pw", "-e", f"WALSHIP_REPO={REPO}", IMAGE,
               check=False, timeout=180)
    assert p.returncode != 0, p.stdout + p.stderr
    assert "belongs to another cluster" in p.stderr, p.stdout + p.stderr
    assert (primary.repo / "walship.json").read_bytes() == before


def _compose_cli():
    for cand in (shutil.which("docker-compose"), "/usr/bin/docker-compose"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def test_compose_file_primary_standby_and_prune(docker, vols):
    """packaging/docker/compose.yaml as docs/docker.md runs it: a primary, its backup, a standby
    rebuilt with `run --rm standby walship rebuild --standby` and started, and prune; on the
    host's network, so no Docker network is made."""
    compose = _compose_cli()
    assert compose, "no docker-compose: apt-get install docker-compose"
    d = vols / "compose"
    d.mkdir()
    pw = d / "postgres_password"
    pw.write_text("compose-pw\n")
    os.chmod(pw, 0o600)  # root's, as secrets are: the entrypoints read it before they become postgres
    pport, sport = free_port(), free_port()
    project = f"walship-it-{TAG}"
    env = {**docker.env, "WALSHIP_IMAGE": IMAGE, "PRIMARY_PORT": str(pport), "STANDBY_PORT": str(sport),
           "PRIMARY_DATA": str(d / "primary-data"), "STANDBY_DATA": str(d / "standby-data"),
           "WALSHIP_REPO_DIR": str(d / "repo"), "POSTGRES_PASSWORD_FILE_HOST": str(pw)}
    base = [compose, "-p", project, "-f", REPO_ROOT / "packaging" / "docker" / "compose.yaml", "--profile", "standby",
            "--profile", "tools"]

    def dc(*args, timeout=300):
        p = subprocess.run([*map(str, base), *args], env=env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0, f"docker-compose {' '.join(args)}: {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        return p

    networks = docker("network", "ls", "-q").stdout.split()
    try:
        dc("up", "-d", "primary")
        primary = dc("ps", "-q", "primary").stdout.strip()
        docker.wait_ready(primary)
        docker.sql(primary, "CREATE TABLE c AS SELECT generate_series(1, 500) AS id")
        p = dc("exec", "-T", "-u", "postgres", "primary", "walship", "check")
        assert "all checks passed" in p.stdout, p.stdout + p.stderr
        dc("exec", "-T", "-u", "postgres", "primary", "walship", "backup")

        p = dc("run", "--rm", "standby", "walship", "rebuild", f"--pgdata={PGDATA}", "--standby",
               f"--primary-conninfo=host=127.0.0.1 port={pport} user=postgres application_name=compose_standby")
        assert "standby.signal written" in p.stdout, p.stdout + p.stderr
        dc("up", "-d", "standby")
        standby = dc("ps", "-q", "standby").stdout.strip()
        docker.wait_ready(standby)
        wait_for(lambda: docker.sql(primary, "SELECT state FROM pg_stat_replication "
                                             "WHERE application_name = 'compose_standby'") == "streaming",
                 60, lambda: docker.logs(standby)[-3000:])
        docker.sql(primary, "INSERT INTO c SELECT generate_series(501, 600)")
        wait_for(lambda: docker.sql(standby, "SELECT count(*) FROM c") == "600", 30, "the standby did not replay")

        switch_and_wait(docker, primary)
        dc("exec", "-T", "-u", "postgres", "primary", "walship", "backup")
        p = dc("run", "--rm", "walship", "walship", "prune", "--keep-backups=1")
        # The older backup stays: the standby's rebuild holds a lease on it (walship rebuild --lease).
        assert "removed 0 backups" in p.stdout and "kept 2 backups" in p.stdout, p.stdout + p.stderr
        assert re.search(r"lease \S+ \(walship rebuild", p.stdout), p.stdout
        assert docker("network", "ls", "-q").stdout.split() == networks, "compose made a Docker network"
    finally:
        subprocess.run([*map(str, base), "down", "-v", "--remove-orphans"], env=env, capture_output=True, timeout=300)
    assert docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.strip() == ""
