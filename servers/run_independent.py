"""Start Postfix and Dovecot (Debian's packages) with the configuration in servers/, run the suites
against them through a target file, and stop exactly the processes this script started.

Run it inside the network namespace made by ``servers/netns.sh up`` (only ``lo``; resolv.conf
names the harness zone server on 127.0.0.10): it refuses to start anywhere else, because
Postfix resolves MX records through libc and the system resolver must never be asked.

    servers/run_independent.py render DIR            # configuration only (no daemons)
    servers/run_independent.py start DIR             # render, start, print the target file
    servers/run_independent.py stop DIR              # stop what `start DIR` started
    servers/run_independent.py run DIR -- ARGS...    # start, pytest ARGS --target ..., stop
    servers/run_independent.py load DIR -- ARGS...   # start, mailharness load --target ... ARGS, stop
    servers/run_independent.py summary RESULTS.json  # pass/fail/skip per suite folder
    servers/run_independent.py load-verdict LOAD.json --load-exit N
                                                     # a load run's figures; 0 when it is clean
                                                     # or each violation is a finding

See docs/independent-servers.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

#: The harness zone server: the only resolver inside the namespace.
DNS_ADDRESS = "127.0.0.10"
DNS_PORT = 53
ZONES = ("example.org", "example.net", "example.com", "test.mailharness.invalid")
#: What a started topology must answer on before the suites may run.
STARTUP_TIMEOUT = 60.0
#: How long a daemon gets to exit after SIGTERM before it gets SIGKILL.
STOP_TIMEOUT = 20.0
#: Exit code when the servers cannot be set up, started or stopped (pytest uses 0-5).
SETUP_FAILED = 10


@dataclass(frozen=True)
class Instance:
    """One Postfix instance: one mail domain on one loopback address."""

    name: str
    domain: str
    address: str
    accounts: tuple[tuple[str, str], ...]  # (address, password)


INSTANCES = (
    Instance("sender", "example.org", "127.0.0.2",
             (("alice@example.org", "alice-password"), ("carol@example.org", "carol-password"))),
    Instance("receiver", "example.net", "127.0.0.3",
             (("bob@example.net", "bob-password"), ("dave@example.net", "dave-password"))),
)

_PLACEHOLDER = re.compile(r"@([A-Z][A-Z_]*)@")


class SetupError(Exception):
    """The independent servers cannot be set up or started; str() is one line."""


def render_text(template: str, values: Mapping[str, str], *, source: str = "template") -> str:
    """Replace every ``@NAME@`` in *template*; an unknown name is an error, not left in place."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise SetupError(f"{source}: no value for placeholder @{name}@")
        return values[name]

    return _PLACEHOLDER.sub(substitute, template)


@dataclass(frozen=True)
class Layout:
    """Where one run keeps everything: configuration, queues, mail, logs, sockets, pids."""

    root: Path

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls / "ca.pem"

    @property
    def cert(self) -> Path:
        return self.tls / "server-cert.pem"

    @property
    def key(self) -> Path:
        return self.tls / "server-key.pem"

    @property
    def dovecot(self) -> Path:
        return self.root / "dovecot"

    @property
    def dovecot_conf(self) -> Path:
        return self.dovecot / "dovecot.conf"

    @property
    def dovecot_run(self) -> Path:
        """Dovecot's base_dir: its master.pid and sockets (LMTP, auth for Postfix)."""
        return self.dovecot / "run"

    @property
    def mail(self) -> Path:
        return self.root / "mail"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def zones(self) -> Path:
        return self.root / "zones"

    @property
    def target_file(self) -> Path:
        return self.root / "target.toml"

    @property
    def pids_file(self) -> Path:
        return self.root / "pids.json"

    def postfix_config(self, instance: Instance) -> Path:
        return self.root / f"postfix-{instance.name}" / "etc"

    def postfix_queue(self, instance: Instance) -> Path:
        return self.root / f"postfix-{instance.name}" / "queue"

    def postfix_data(self, instance: Instance) -> Path:
        return self.root / f"postfix-{instance.name}" / "data"


def _all_accounts() -> list[tuple[str, str]]:
    return [acct for instance in INSTANCES for acct in instance.accounts]


def _accounts_toml(role: str, instance: Instance) -> str:
    return "\n".join(
        f'[[{role}.accounts]]\nuser = "{address}"\npassword = "{password}"\n'
        for address, password in instance.accounts
    )


def render(layout: Layout, *, mail_uid: int, mail_gid: int, versions: Mapping[str, str],
           postconf: Sequence[str] = ()) -> None:
    """Write every configuration file of a run under *layout*; starts nothing, needs no root.
    *postconf* holds ``name=value`` settings appended to both Postfix main.cf files (to try a
    configuration change, e.g. ``smtpd_forbid_bare_newline=normalize``)."""
    for setting in postconf:
        if "=" not in setting or not setting.partition("=")[0].strip().isidentifier():
            raise SetupError(f"--postconf: expected NAME=VALUE, got {setting!r}")
    for directory in (layout.root, layout.tls, layout.dovecot, layout.logs, layout.zones):
        directory.mkdir(parents=True, exist_ok=True)
    sender, receiver = INSTANCES
    for instance in INSTANCES:
        config = layout.postfix_config(instance)
        config.mkdir(parents=True, exist_ok=True)
        values = {
            "INSTANCE": instance.name,
            "DOMAIN": instance.domain,
            "ADDRESS": instance.address,
            "CONFIG_DIR": str(config),
            "QUEUE_DIR": str(layout.postfix_queue(instance)),
            "DATA_DIR": str(layout.postfix_data(instance)),
            "LOG_FILE": str(layout.logs / f"postfix-{instance.name}.log"),
            "LOG_DIR": str(layout.logs),
            "LMTP_SOCKET": str(layout.dovecot_run / "lmtp"),
            "AUTH_SOCKET": str(layout.dovecot_run / "auth-postfix"),
            "TLS_CERT": str(layout.cert),
            "TLS_KEY": str(layout.key),
            "CA_FILE": str(layout.ca_file),
        }
        for name in ("main.cf", "master.cf"):
            template = HERE / "postfix" / f"{name}.in"
            text = render_text(template.read_text(encoding="utf-8"), values, source=str(template))
            if name == "main.cf" and postconf:
                text += "\n# --- overrides given with --postconf for this run ---\n"
                text += "".join(f"{setting.strip()}\n" for setting in postconf)
            (config / name).write_text(text, encoding="utf-8")
        (config / "virtual_mailboxes").write_text(
            "".join(f"{address} OK\n" for address, _ in instance.accounts), encoding="utf-8")
        (config / "virtual_aliases").write_text(
            f"postmaster@{instance.domain} {instance.accounts[0][0]}\n", encoding="utf-8")
        (config / "sender_logins").write_text(
            "".join(f"{address} {address}\n" for address, _ in instance.accounts), encoding="utf-8")

    users = layout.dovecot / "users"
    users.write_text("".join(f"{address}:{{PLAIN}}{password}::::::\n"
                             for address, password in _all_accounts()), encoding="utf-8")
    users.chmod(0o640)
    with contextlib.suppress(KeyError, PermissionError):
        import grp

        os.chown(users, 0, grp.getgrnam("dovecot").gr_gid)  # Dovecot's auth process reads it
    template = HERE / "dovecot" / "dovecot.conf.in"
    layout.dovecot_conf.write_text(render_text(template.read_text(encoding="utf-8"), {
        "BASE_DIR": str(layout.dovecot_run),
        "STATE_DIR": str(layout.dovecot / "state"),
        "LOG_FILE": str(layout.logs / "dovecot.log"),
        "HOSTNAME": f"mail.{receiver.domain}",
        "POSTMASTER_DOMAIN": receiver.domain,
        "LISTEN": ", ".join(instance.address for instance in INSTANCES),
        "TLS_CERT": str(layout.cert),
        "TLS_KEY": str(layout.key),
        "USERS_FILE": str(users),
        "MAIL_UID": str(mail_uid),
        "MAIL_GID": str(mail_gid),
        "MAIL_DIR": str(layout.mail),
    }, source=str(template)), encoding="utf-8")

    for zone in ZONES:
        shutil.copyfile(HERE / "dns" / f"{zone}.zone", layout.zones / f"{zone}.zone")

    template = HERE / "target.toml.in"
    layout.target_file.write_text(render_text(template.read_text(encoding="utf-8"), {
        "POSTFIX_VERSION": versions.get("postfix", "?"),
        "DOVECOT_VERSION": versions.get("dovecot", "?"),
        "CA_FILE": str(layout.ca_file),
        "SENDER_ACCOUNTS": _accounts_toml("sender", sender),
        "RECEIVER_ACCOUNTS": _accounts_toml("receiver", receiver),
    }, source=str(template)), encoding="utf-8")


def make_tls(layout: Layout) -> None:
    """A run-time CA (trustme) and one server certificate for both providers' names and addresses."""
    import trustme

    layout.tls.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="mailharness independent-servers CA")
    identities = [f"mail.{i.domain}" for i in INSTANCES] + [i.address for i in INSTANCES]
    cert = ca.issue_cert(*identities)
    ca.cert_pem.write_to_path(str(layout.ca_file))
    with layout.cert.open("wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    cert.private_key_pem.write_to_path(str(layout.key))
    layout.key.chmod(0o600)


# --- running ---------------------------------------------------------------------------------


def check_isolated() -> None:
    """Refuse to run outside a namespace whose only interface is lo and whose resolver is local."""
    interfaces = sorted(os.listdir("/sys/class/net"))
    if interfaces != ["lo"]:
        raise SetupError(
            f"not inside an isolated network namespace (interfaces: {', '.join(interfaces)}); "
            "run through servers/netns.sh"
        )
    nameservers = [line.split()[1] for line in Path("/etc/resolv.conf").read_text().splitlines()
                   if line.split()[:1] == ["nameserver"] and len(line.split()) > 1]
    if nameservers != [DNS_ADDRESS]:
        raise SetupError(f"/etc/resolv.conf names {nameservers}, not [{DNS_ADDRESS!r}]: "
                         "Postfix would ask another resolver")


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["postconf", "-d", "-h", "mail_version"], check=True,
                             capture_output=True, text=True, timeout=30).stdout
        found["postfix"] = out.strip()
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["dovecot", "--version"], check=True, capture_output=True,
                             text=True, timeout=30).stdout
        found["dovecot"] = out.split()[0] if out.split() else "?"
    return found


def _mail_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("mail")
    return entry.pw_uid, entry.pw_gid


def _wait_port(address: str, port: int, deadline: float, what: str) -> None:
    while True:
        try:
            with socket.create_connection((address, port), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise SetupError(f"{what} does not answer on {address}:{port}: {exc}") from None
        time.sleep(0.2)


def _wait_file(path: Path, deadline: float, what: str) -> None:
    while not path.exists():
        if time.monotonic() > deadline:
            raise SetupError(f"{what}: {path} did not appear")
        time.sleep(0.2)


def _read_pid(path: Path, deadline: float, what: str) -> int:
    """The pid in `path`, once its writer has put one there: the file appears empty before the
    daemon writes to it, so its mere existence is not enough."""
    while True:
        with contextlib.suppress(OSError):
            fields = path.read_text().split()
            if fields and fields[0].isdigit():
                return int(fields[0])
        if time.monotonic() > deadline:
            raise SetupError(f"{what}: {path} holds no pid")
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is not alive any more.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def _log(message: str) -> None:
    print(f"independent: {message}", flush=True)


def _save_pids(layout: Layout, pids: Mapping[str, int]) -> None:
    layout.pids_file.write_text(json.dumps(dict(pids), indent=2) + "\n", encoding="utf-8")


def start(layout: Layout, *, postconf: Sequence[str] = ()) -> dict[str, int]:
    """Render, then start the zone server, Dovecot and both Postfix instances; return their pids.
    On any failure, whatever was started is stopped again before the error is raised."""
    check_isolated()
    for tool in ("postfix", "postconf", "dovecot"):
        if shutil.which(tool) is None:
            raise SetupError(f"{tool} is not installed (apt-get install postfix dovecot-imapd dovecot-lmtpd)")
    if layout.pids_file.exists():
        raise SetupError(f"{layout.pids_file} exists: stop that run first ({sys.argv[0]} stop {layout.root})")
    uid, gid = _mail_ids()
    make_tls(layout)
    render(layout, mail_uid=uid, mail_gid=gid, versions=versions(), postconf=postconf)
    layout.root.chmod(0o755)  # postfix and the mail user must reach the sockets and files below
    for parent in layout.root.parents:
        if parent.stat().st_mode & 0o001 == 0:
            raise SetupError(f"{parent} is not searchable by others (mode "
                             f"{parent.stat().st_mode & 0o777:o}): postfix and the mail user could "
                             f"not reach {layout.root}")
    layout.mail.mkdir(exist_ok=True)
    os.chown(layout.mail, uid, gid)
    import pwd

    postfix_user = pwd.getpwnam("postfix")
    for instance in INSTANCES:
        # `postfix check` makes the queue's subdirectories; the two roots must exist.
        layout.postfix_queue(instance).mkdir(mode=0o755, exist_ok=True)
        layout.postfix_data(instance).mkdir(mode=0o700, exist_ok=True)
        os.chown(layout.postfix_data(instance), postfix_user.pw_uid, postfix_user.pw_gid)
    pids: dict[str, int] = {}
    deadline = time.monotonic() + STARTUP_TIMEOUT
    try:
        dns_log = (layout.logs / "dns.log").open("ab")
        command = [str(Path(sys.executable).with_name("mailharness")), "dns",
                   "--address", DNS_ADDRESS, "--port", str(DNS_PORT)]
        for zone in ZONES:
            command += ["--zone", f"{zone}={layout.zones / f'{zone}.zone'}"]
        dns = subprocess.Popen(command, stdout=dns_log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
        pids["dns"] = dns.pid
        _save_pids(layout, pids)
        _wait_port(DNS_ADDRESS, DNS_PORT, deadline, "the harness zone server")
        _log(f"zone server pid {dns.pid} on {DNS_ADDRESS}:{DNS_PORT}")

        _run_checked(["dovecot", "-c", str(layout.dovecot_conf)], "dovecot")
        pids["dovecot"] = _read_pid(layout.dovecot_run / "master.pid", deadline, "dovecot")
        _save_pids(layout, pids)
        for path in (layout.dovecot_run / "lmtp", layout.dovecot_run / "auth-postfix"):
            _wait_file(path, deadline, "dovecot")
        for instance in INSTANCES:
            _wait_port(instance.address, 143, deadline, "dovecot imap")
        _log(f"dovecot pid {pids['dovecot']}")

        for instance in INSTANCES:
            config = layout.postfix_config(instance)
            _run_checked(["postfix", "-c", str(config), "check"], f"postfix {instance.name} check")
            _run_checked(["postfix", "-c", str(config), "start"], f"postfix {instance.name} start")
            pid_file = layout.postfix_queue(instance) / "pid" / "master.pid"
            pids[f"postfix-{instance.name}"] = _read_pid(pid_file, deadline, f"postfix {instance.name}")
            _save_pids(layout, pids)
            for port in (25, 587, 465):
                _wait_port(instance.address, port, deadline, f"postfix {instance.name}")
            _log(f"postfix {instance.name} ({instance.domain}) pid {pids[f'postfix-{instance.name}']} "
                 f"on {instance.address}")
    except BaseException:
        _adopt_pid_files(layout, pids)
        stop(layout)
        raise
    return pids


def _adopt_pid_files(layout: Layout, pids: dict[str, int]) -> None:
    """After a failed start: record the masters that wrote their pid file in this run's own
    directories but were not recorded yet, so that stop() ends them too."""
    found = {"dovecot": layout.dovecot_run / "master.pid"}
    for instance in INSTANCES:
        found[f"postfix-{instance.name}"] = layout.postfix_queue(instance) / "pid" / "master.pid"
    for name, path in found.items():
        if name not in pids and path.exists():
            with contextlib.suppress(SetupError):
                pids[name] = _read_pid(path, time.monotonic() + 2, name)
    _save_pids(layout, pids)


def _run_checked(command: Sequence[str], what: str) -> None:
    """Run a control command; its output goes to a file, not a pipe, because daemons it starts
    inherit the descriptors and would hold a pipe open for as long as they run."""
    import tempfile

    if command[0] == "postfix":
        # postfix(1) reports fatal errors to syslog, and to stderr only when that is a terminal:
        # give it one (script(1)) so the reason reaches our error message.
        command = ["script", "-qec", shlex.join(command), "/dev/null"]
    with tempfile.TemporaryFile() as output:
        try:
            code = subprocess.run(list(command), stdout=output, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=120).returncode
        except subprocess.TimeoutExpired:
            raise SetupError(f"{what}: no answer within 120 s") from None
        output.seek(0)
        lines = output.read().decode("utf-8", "replace").strip().splitlines()
    if code != 0:
        raise SetupError(f"{what}: exit {code}: {' | '.join(lines[-3:])}")


def _terminate(pid: int, what: str) -> bool:
    """SIGTERM *pid*, wait (bounded), SIGKILL if it is still there; True when it is gone."""
    if not _alive(pid):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_gone(pid, STOP_TIMEOUT):
        return True
    _log(f"{what} (pid {pid}) ignored SIGTERM; sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return _wait_gone(pid, 5.0)


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    return True


def stop(layout: Layout) -> bool:
    """Stop the processes recorded in pids.json (and only those); True when all are gone."""
    if not layout.pids_file.exists():
        return True
    pids: dict[str, int] = json.loads(layout.pids_file.read_text(encoding="utf-8"))
    all_gone = True
    for instance in reversed(INSTANCES):
        pid = pids.get(f"postfix-{instance.name}")
        if pid is None:
            continue
        if _alive(pid):
            # `postfix stop` signals the master whose pid is in this instance's queue directory.
            with contextlib.suppress(SetupError, subprocess.TimeoutExpired):
                _run_checked(["postfix", "-c", str(layout.postfix_config(instance)), "stop"],
                             f"postfix {instance.name} stop")
        gone = _wait_gone(pid, STOP_TIMEOUT) or _terminate(pid, f"postfix {instance.name}")
        _log(f"postfix {instance.name} pid {pid} {'stopped' if gone else 'STILL RUNNING'}")
        all_gone &= gone
    for name in ("dovecot", "dns"):
        pid = pids.get(name)
        if pid is None:
            continue
        gone = _terminate(pid, name)
        _log(f"{name} pid {pid} {'stopped' if gone else 'STILL RUNNING'}")
        all_gone &= gone
    if all_gone:
        layout.pids_file.unlink()
    return all_gone


@contextlib.contextmanager
def running(layout: Layout, *, postconf: Sequence[str] = ()) -> Iterator[dict[str, int]]:
    pids = start(layout, postconf=postconf)
    try:
        yield pids
    finally:
        if not stop(layout):
            raise SetupError("some started processes did not stop; see the lines above")


def run_suites(layout: Layout, pytest_args: Sequence[str], *, postconf: Sequence[str] = ()) -> int:
    """Start everything, run pytest with *pytest_args* against the target file, stop; pytest's code."""
    with running(layout, postconf=postconf):
        command = [sys.executable, "-m", "pytest", "--target", str(layout.target_file),
                   "-p", "no:cacheprovider", *pytest_args]
        _log("running " + " ".join(command))
        return subprocess.run(command, cwd=REPO, stdin=subprocess.DEVNULL).returncode


def run_load(layout: Layout, load_args: Sequence[str], *, postconf: Sequence[str] = ()) -> int:
    """Start everything, run ``mailharness load --target ... LOAD_ARGS`` against the same target
    file as the suites, stop; the load's exit code (0 clean, 1 a violation, 2 bad options or
    target), or SETUP_FAILED when the servers cannot be started or stopped."""
    with running(layout, postconf=postconf):
        command = [sys.executable, "-m", "mailharness.cli", "load",
                   "--target", str(layout.target_file), *load_args]
        _log("running " + " ".join(command))
        code = subprocess.run(command, cwd=REPO, stdin=subprocess.DEVNULL).returncode
    return code if code >= 0 else 128 - code  # killed by a signal: the shell's 128+N


#: The page whose load section explains the violations a load run may show (load-verdict).
FINDINGS = REPO / "docs" / "findings.md"
#: The load section of FINDINGS: a level-2 heading containing this text, up to the next one.
LOAD_SECTION = "mailharness load"
#: A finding in that section: a level-3 heading naming requirement ids and the class. Only
#: deviations and configurations excuse a violation; a harness fault must be fixed instead.
_FINDING_HEADING = re.compile(
    r"^### ((?:[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)(?:, [A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)*)"
    r" — (deviation|configuration)\b", re.MULTILINE)


def load_findings(findings: Path) -> dict[str, str]:
    """The requirements the load section of *findings* explains: id → the heading."""
    text = findings.read_text(encoding="utf-8")
    section: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = LOAD_SECTION in line
        elif inside:
            section.append(line)
    explained: dict[str, str] = {}
    for match in _FINDING_HEADING.finditer("\n".join(section)):
        for requirement in match.group(1).split(", "):
            explained[requirement] = match.group(0).removeprefix("### ")
    return explained


def load_verdict(results: Path, load_exit: int, findings: Path = FINDINGS) -> int:
    """Print the figures of a load run from its JSON and judge it for CI: 0 when no invariant
    was violated, or when every violated requirement is a finding of the load section of
    *findings* (deviation or configuration); 1 otherwise, and when the run proves nothing
    (no JSON, no message accepted, interrupted) or its exit code disagrees with its JSON."""
    try:
        data = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"independent load: no results in {results}: {exc}", file=sys.stderr)
        return 1
    counts = data.get("counts", {})
    seconds = float(data.get("seconds", 0.0))
    accepted = int(counts.get("accepted", 0))
    print(f"independent load: {seconds:.1f} s of load, {accepted} accepted "
          f"({data.get('rates', {}).get('accepted_per_second', 0.0):.1f}/s), "
          f"{counts.get('delivered', 0)} delivered, {counts.get('refused', 0)} refused, "
          f"{counts.get('duplicates', 0)} duplicated, {counts.get('errors', 0)} errors")
    for kind, figures in data.get("latency", {}).items():
        print(f"    {kind:9} p50 {1000 * figures['p50']:8.1f} ms  p99 {1000 * figures['p99']:8.1f} ms"
              f"  max {1000 * figures['max']:8.1f} ms  ({int(figures['count'])})")
    commands = sorted(data.get("imap_commands", {}).items(), key=lambda item: -item[1]["count"])
    if commands:
        print("    IMAP commands: " + ", ".join(f"{name} {int(figures['count'])}"
                                             for name, figures in commands))
    for kind, n in sorted(data.get("errors", {}).items()):
        print(f"    error {kind}: {n}")
    violated: dict[str, int] = data.get("violation_counts", {})
    failed = False
    if accepted == 0:
        print("independent load: no message was accepted, so the run proves nothing",
              file=sys.stderr)
        failed = True
    if data.get("interrupted"):
        print("independent load: the run was interrupted", file=sys.stderr)
        failed = True
    if (load_exit == 1) != bool(violated) or load_exit not in (0, 1):
        print(f"independent load: exit {load_exit} with {sum(violated.values())} violations "
              "in the results", file=sys.stderr)
        failed = True
    explained = load_findings(findings) if violated else {}
    for requirement, n in sorted(violated.items()):
        first: dict[str, object] = next(
            (v for v in data.get("violations", []) if v.get("requirement") == requirement), {})
        print(f"    VIOLATION {requirement}: {n} (first: {first.get('detail', '?')})")
        if requirement in explained:
            print(f"        a finding: {findings.name}, \"{explained[requirement]}\"")
        else:
            print(f"independent load: {requirement} is not explained in the load section of "
                  f"{findings} (a \"### {requirement} — deviation\" or \"— configuration\" "
                  f"heading under a \"## ...{LOAD_SECTION}...\" heading)", file=sys.stderr)
            failed = True
    if not failed:
        print("independent load: no invariant violated" if not violated else
              f"independent load: every violation is a finding of {findings}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("render", "start", "stop", "run", "load", "summary",
                                           "load-verdict"))
    parser.add_argument("dir", help="working directory of this run (configuration, queues, mail, "
                        "logs); for summary and load-verdict: the JSON results file")
    parser.add_argument("--postconf", action="append", default=[], metavar="NAME=VALUE",
                        help="append this setting to both Postfix main.cf files (repeatable)")
    parser.add_argument("--load-exit", type=int, default=None, metavar="N",
                        help="load-verdict: the exit code of the load run")
    parser.add_argument("--findings", default=str(FINDINGS), metavar="FILE",
                        help="load-verdict: the page with the load findings (default "
                        "docs/findings.md)")
    parser.epilog = ("run: arguments after -- go to pytest. load: arguments after -- go to "
                     "mailharness load.")
    words = list(sys.argv[1:] if argv is None else argv)
    passed: list[str] = []  # after --: pytest's arguments (run) or the load's (load)
    if "--" in words:
        cut = words.index("--")
        words, passed = words[:cut], words[cut + 1:]
    args = parser.parse_args(words)
    if args.action == "summary":
        return summary(Path(args.dir))
    if args.action == "load-verdict":
        if args.load_exit is None:
            parser.error("load-verdict needs --load-exit")
        return load_verdict(Path(args.dir), args.load_exit, Path(args.findings))
    # A SIGTERM (e.g. from timeout(1)) unwinds like an error: pytest is killed and the servers
    # this run started are stopped by the `finally` blocks, not left behind.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    layout = Layout(Path(args.dir).resolve())
    try:
        if args.action == "render":
            render(layout, mail_uid=8, mail_gid=8, versions=versions(), postconf=args.postconf)
            print(layout.target_file)
        elif args.action == "start":
            start(layout, postconf=args.postconf)
            print(f"target file: {layout.target_file}")
        elif args.action == "stop":
            return 0 if stop(layout) else 1
        elif args.action == "load":
            return run_load(layout, passed, postconf=args.postconf)
        else:
            return run_suites(layout, passed, postconf=args.postconf)
    except SetupError as exc:
        print(f"independent: {exc}", file=sys.stderr)
        return SETUP_FAILED
    return 0


def summary(results: Path) -> int:
    """Print pass/fail/skip counts per suite folder from a JSON results file; 1 if no test ran."""
    data = json.loads(results.read_text(encoding="utf-8"))
    counts: dict[str, dict[str, int]] = {}
    for test in data.get("tests", []):
        parts = test["nodeid"].split("::")[0].split("/")
        folder = "/".join(parts[:2]) if len(parts) > 2 else parts[0]
        outcome = test["outcome"]
        counts.setdefault(folder, {}).setdefault(outcome, 0)
        counts[folder][outcome] += 1
    total = 0
    for folder, by_outcome in sorted(counts.items()):
        total += sum(by_outcome.values())
        text = ", ".join(f"{by_outcome.get(o, 0)} {o}" for o in ("passed", "failed", "skipped"))
        extra = ", ".join(f"{n} {o}" for o, n in sorted(by_outcome.items())
                          if o not in ("passed", "failed", "skipped"))
        print(f"independent servers, {folder}: {text}{', ' + extra if extra else ''}")
        for test in data["tests"]:
            if test["nodeid"].startswith(folder + "/") and test["outcome"] in ("failed", "error"):
                print(f"    red: {test['nodeid']}")
    if total == 0:
        print(f"independent: {results} records no test", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
