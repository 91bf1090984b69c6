"""Help and unknown options: walship --help lists the commands, each command
has its own --help (also -h, -?, walship help COMMAND) whose options are
exactly those its section of walship.1 describes, help goes to stdout with
exit 0, and an unknown option names the command and the nearest valid ones.

No cluster or repository is needed: help and unknown options are answered
before the configuration is read.
"""

import re

import pytest

import test_manpages as man

COMMANDS = ["init", "backup", "list", "rebuild", "upgrade", "prune", "verify", "check", "help"]
LONG = r"(?<![\w-])--[a-z][a-z0-9-]*"
SHORT = r"(?<![\w-])-[A-Za-z?](?![\w-])"


def walship(*args):
    return man.run([man.BIN / "walship", *args])


def assert_help(r, what):
    assert r.returncode == 0, f"{what}: exit {r.returncode}\n{r.stderr}"
    assert r.stderr == "", f"{what}: help must go to stdout, stderr has:\n{r.stderr}"
    assert "Usage:" in r.stdout, f"{what}:\n{r.stdout}"
    wide = [line for line in r.stdout.splitlines() if len(line) > 80]
    assert not wide, f"{what}: lines wider than 80 columns: {wide}"


def help_block(text, heading):
    """The option lines under heading ("Options:", "Common options:") of a --help."""
    m = re.search(rf"^{heading}\n((?:  .*\n)+)", text, re.M)
    return m.group(1) if m else ""


def options_of(text):
    """The long and short options named at the start of the lines of a help block."""
    heads = [line.split("  ")[1] for line in text.splitlines() if line.startswith("  -")]
    joined = " ".join(heads)
    return set(re.findall(LONG, joined)) | set(re.findall(SHORT, joined))


def man_subsections():
    """{command: [source lines]} of walship.1's COMMANDS section."""
    out, cur = {}, None
    for line in man.sections((man.MAN_SRC / "walship.1").read_text())["COMMANDS"]:
        m = re.match(r"^\.SS\s+walship\s+(\w+)", line)
        if m:
            cur = m.group(1)
            out[cur] = []
        elif cur:
            out[cur].append(line)
    return out


def man_options(lines):
    tags = " ".join(tag for tag, _ in man.items(lines))
    return set(re.findall(LONG, tags)) | set(re.findall(SHORT, tags))


def test_walship_help_lists_every_command():
    outs = {}
    for args in (["--help"], ["-h"], ["-?"], ["help"]):
        r = walship(*args)
        assert_help(r, f"walship {' '.join(args)}")
        outs[" ".join(args)] = r.stdout
    assert len(set(outs.values())) == 1, "walship --help, -h, -? and help print different texts"
    listed = man.help_commands(outs["--help"])
    assert listed == COMMANDS, listed
    assert sorted(man_subsections()) == sorted(COMMANDS), "walship.1 and --help list other commands"
    assert 'walship COMMAND --help' in outs["--help"]


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_forms_agree(command):
    texts = set()
    for args in ([command, "--help"], [command, "-h"], [command, "-?"], ["help", command],
                 ["--help", command]):
        r = walship(*args)
        assert_help(r, f"walship {' '.join(args)}")
        texts.add(r.stdout)
    assert len(texts) == 1, f"the forms of help for {command} print different texts"
    text = texts.pop()
    assert text.startswith(f"walship {command} - "), text
    assert f"\n  walship {command}" in text, f"{command}: the usage does not name the command"
    assert "Examples:" in text and f"\n  walship {command}" in text.split("Examples:")[1], text
    assert "Exit status: 0" in text, text


@pytest.mark.parametrize("command", COMMANDS)
def test_command_options_match_its_man_section(command):
    text = walship(command, "--help").stdout
    own = options_of(help_block(text, "Options:"))
    documented = man_options(man_subsections()[command])
    assert own == documented, (
        f"walship {command}: --help's options {sorted(own)} but walship.1's section "
        f"describes {sorted(documented)}")
    # The common options are those of walship.1's OPTIONS, -D only where the command takes it.
    common = options_of(help_block(text, "Common options:"))
    page_common = man_options(man.sections((man.MAN_SRC / "walship.1").read_text())["OPTIONS"])
    takes_pgdata = command in ("init", "rebuild", "upgrade")
    assert common == (page_common if takes_pgdata else page_common - {"-D", "--pgdata"}), (
        f"walship {command}: common options {sorted(common)}, walship.1 OPTIONS {sorted(page_common)}")
    assert not own & common, f"walship {command}: options listed twice: {sorted(own & common)}"


@pytest.mark.parametrize("program", ["walship-push", "walship-fetch"])
def test_hook_help_goes_to_stdout(program):
    texts = set()
    for flag in ("--help", "-h", "-?"):
        r = man.run([man.BIN / program, flag])
        assert_help(r, f"{program} {flag}")
        texts.add(r.stdout)
    assert len(texts) == 1, f"{program}: --help, -h and -? print different texts"
    assert texts.pop().startswith(f"{program} - ")


def test_help_of_an_unknown_command():
    r = walship("help", "nope")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stdout == ""
    assert 'unknown command "nope"' in r.stderr, r.stderr
    assert 'Try "walship --help" for more information.' in r.stderr, r.stderr


@pytest.mark.parametrize("command, typo, suggestion", [
    ("list", "--jsn", '"--json"'),
    ("prune", "--dryrun", '"--dry-run"'),
    ("prune", "--keep-bakups=2", '"--keep-backups"'),
    ("rebuild", "--target-tme=x", '"--target-time"'),
    ("rebuild", "--target", '"--target-time", "--target-lsn", "--target-xid", "--target-name",'),
    ("verify", "--repp=/x", '"--repo"'),
    ("init", "--encrypted", '"--encrypt"'),
])
def test_unknown_option_suggests_the_nearest(command, typo, suggestion):
    r = walship(command, typo)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stdout == ""
    name = typo.split("=")[0]
    assert f'invalid option "{typo}" for walship {command}' in r.stderr or \
        f'invalid option "{name}" for walship {command}' in r.stderr, r.stderr
    assert f"hint: Did you mean {suggestion}" in r.stderr, r.stderr
    assert r.stderr.rstrip().endswith(f'Try "walship {command} --help" for more information.'), r.stderr


def test_unknown_option_far_from_any_suggests_nothing():
    r = walship("check", "--frobnicate")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert 'invalid option "--frobnicate" for walship check' in r.stderr, r.stderr
    assert "Did you mean" not in r.stderr, r.stderr
    assert 'Try "walship check --help" for more information.' in r.stderr, r.stderr


def test_option_of_another_command_is_still_not_valid_for_it():
    r = walship("list", "--full")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert 'option "--full" is not valid for walship list' in r.stderr, r.stderr


def test_hook_unknown_option_suggests():
    r = man.run([man.BIN / "walship-push", "--repp=/x", "a", "b"])
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert 'invalid option "--repp=/x"' in r.stderr and 'Did you mean "--repo"?' in r.stderr, r.stderr
    assert 'Try "walship-push --help" for more information.' in r.stderr, r.stderr
