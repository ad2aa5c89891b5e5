"""Escape suite: hostile payloads must be blocked by the policy or contained by the OS layers.

Every payload runs twice: with the static check (blocked, or run and contained) and with the check
bypassed, where the OS layers alone must contain it. Containment is checked the same way for all:
no secret or host file content in the output or the workdir, no file written outside the workdir, no
byte reaching the host's listeners, the host victim process alive, no process left behind, and the
server still able to run code afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.core.settings import Settings
from backend.sandbox.manager import SandboxManager
from backend.sandbox.result import SandboxResult

pytestmark = pytest.mark.slow

PAYLOAD_TIMEOUT_SECONDS = 5.0
READ = "print(open({path!r}).read())"


@dataclass
class Host:
    """What lives outside the sandbox: secrets, files, listeners and a victim process."""

    token: str
    marker: str
    secret: str
    canary_file: Path
    canary_text: str
    outside_dir: Path
    other_workdir: Path
    tcp_port: int
    udp_port: int
    unix_path: Path
    victim: subprocess.Popen[bytes]
    received: list[bytes]

    def targets(self) -> list[Path]:
        """Paths a payload tries to create; none may exist afterwards."""
        name = f"pwned_{self.token}"
        return [
            self.outside_dir / name,
            Path("/tmp") / name,
            self.other_workdir / name,
            Path(sys.prefix) / name,
            Path(__file__).resolve().parents[3] / name,
        ]


def _listen(host: Host, kind: int, family: int = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, kind)
    if family == socket.AF_INET:
        sock.bind(("127.0.0.1", 0))
    else:
        sock.bind(str(host.unix_path))
    if kind == socket.SOCK_STREAM:
        sock.listen(8)

    def serve() -> None:
        while True:
            try:
                if kind == socket.SOCK_STREAM:
                    conn, _ = sock.accept()
                    host.received.append(b"connect:" + conn.recv(1024))
                    conn.close()
                else:
                    host.received.append(sock.recv(1024))
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    return sock


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    base = tmp_path_factory.mktemp("host")
    token = secrets.token_hex(6)
    canary = base / "host_secret.txt"
    canary.write_text(f"CANARY-{token}")
    canary.chmod(0o644)  # world-readable on purpose: only the mount namespace may hide it
    marker = str(100000 + secrets.randbelow(900000))  # digits: it ends up in `sleep` arguments
    victim = subprocess.Popen(["sleep", f"3600.{marker}"])
    h = Host(
        token=token,
        marker=marker,
        secret=f"jwt-{secrets.token_hex(24)}",
        canary_file=canary,
        canary_text=f"CANARY-{token}",
        outside_dir=base,
        other_workdir=base / "sessions" / "other" / "work",
        tcp_port=0,
        udp_port=0,
        unix_path=base / "host.sock",
        victim=victim,
        received=[],
    )
    h.other_workdir.mkdir(parents=True)
    socks = [
        _listen(h, socket.SOCK_STREAM),
        _listen(h, socket.SOCK_DGRAM),
        _listen(h, socket.SOCK_STREAM, socket.AF_UNIX),
    ]
    h.tcp_port, h.udp_port = socks[0].getsockname()[1], socks[1].getsockname()[1]
    os.chmod(h.unix_path, 0o777)
    yield h
    for s in socks:
        s.close()
    victim.kill()


@pytest.fixture
async def manager(settings: Settings, host: Host, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SandboxManager]:
    monkeypatch.setenv("APP_JWT_SECRET", host.secret)  # in the server's env: must never reach the child
    monkeypatch.setenv("OPENAI_API_KEY", host.secret)
    (settings.data_dir).mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "jwt_secret").write_text(host.secret)
    mgr = SandboxManager(settings=settings.model_copy(update={"sandbox_pool_size": 0}))
    yield mgr
    await mgr.shutdown()


def _payloads() -> list[tuple[str, str]]:
    """(id, code) with {placeholders} filled per run; grouped by the kind of escape attempted."""
    pwn = "pwned_{token}"
    write_to = "open({path!r}, 'w').write('x')"
    tcp = "('127.0.0.1', {tcp})"
    return [
        # --- filesystem ------------------------------------------------------------------
        ("fs_etc_passwd", READ.format(path="/etc/passwd")),
        ("fs_host_file_absolute", READ.format(path="{canary}")),
        ("fs_dotdot_traversal", READ.format(path="../../../../../../..{canary}")),
        ("fs_list_root", "import os\nprint(sorted(os.listdir('/')))"),
        (
            "fs_walk_for_canary",
            "import os\nfor _, _, fs in os.walk('/'):\n    'host_secret.txt' in fs and print('FOUND')",
        ),
        ("fs_write_outside_dir", write_to.format(path="{outside}/" + pwn)),
        ("fs_write_host_tmp", write_to.format(path="/tmp/" + pwn)),
        ("fs_write_other_session", write_to.format(path="{other}/" + pwn)),
        ("fs_write_venv", "import sys\nopen(sys.prefix + '/" + pwn + "', 'w').write('x')"),
        ("fs_write_project", write_to.format(path="{project}/" + pwn)),
        ("fs_symlink_to_host_file", "import os\nos.symlink('{canary}', 'leak')\nprint(open('leak').read())"),
        ("fs_symlink_for_server", "import os\nos.symlink('{canary}', 'artifact.txt')"),
        ("fs_hardlink_host_file", "import os\nos.link('{canary}', 'hard')\nprint(open('hard').read())"),
        ("fs_proc_root", READ.format(path="/proc/1/root{canary}")),
        ("fs_jwt_secret_file", READ.format(path="{data}/jwt_secret")),
        ("fs_mount_tmpfs", "import subprocess\nprint(subprocess.run(['mount', '-t', 'tmpfs', 'x', '/usr']))"),
        # --- network -----------------------------------------------------------------------
        ("net_tcp_host", f"import socket\nsocket.create_connection({tcp}, timeout=2).send(b'PWNED')"),
        ("net_tcp_internet", "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)\nprint('CONNECTED')"),
        ("net_urllib", "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{tcp}/', timeout=2)"),
        ("net_http_client", "import http.client\nhttp.client.HTTPConnection('127.0.0.1', {tcp}).request('GET', '/')"),
        ("net_dns", "import socket\nprint('RESOLVED', socket.getaddrinfo('pypi.org', 443))"),
        ("net_udp_host", "import socket\nsocket.socket(socket.AF_INET, 2).sendto(b'PWNED', ('127.0.0.1', {udp}))"),
        ("net_unix_socket", "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('{unix}')\ns.send(b'PWNED')"),
        ("net_raw_packet", "import socket\nsocket.socket(socket.AF_PACKET, socket.SOCK_RAW)\nprint('RAW')"),
        # --- environment secrets -----------------------------------------------------------
        ("env_print_all", "import os\nprint(dict(os.environ))"),
        ("env_get_secret", "import os\nprint(os.environ.get('APP_JWT_SECRET'), os.getenv('OPENAI_API_KEY'))"),
        ("env_proc_self", READ.format(path="/proc/self/environ")),
        ("env_proc_pid1", READ.format(path="/proc/1/environ")),
        ("env_server_proc", READ.format(path="/proc/{server_pid}/environ")),
        ("env_shell_echo", "import subprocess\nprint(subprocess.check_output('echo $APP_JWT_SECRET', shell=True))"),
        # --- processes ----------------------------------------------------------------------
        ("proc_kill_victim", "import os\nos.kill({victim}, 9)"),
        ("proc_kill_server", "import os\nos.kill({server_pid}, 9)"),
        ("proc_kill_everything", "import os\nos.kill(-1, 9)"),
        ("proc_killpg_self", "import os, signal\nos.killpg(os.getpgid(0), signal.SIGKILL)"),
        ("proc_ignore_alarm_loop", "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True: pass"),
        ("proc_fork_bomb", "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass"),
        (
            "proc_daemon_survives",
            "import os\nif os.fork() == 0:\n    os.setsid()\n    os.execv('/bin/sleep', ['s', '{daemon}'])",
        ),
        ("proc_setuid_root", "import os\nos.setuid(0)\nprint('ROOT' if os.getuid() == 0 else 'no')"),
        # --- memory -------------------------------------------------------------------------
        ("mem_10gb_bytearray", "x = bytearray(10 * 1024**3)"),
        ("mem_10gb_numpy", "import numpy as np\nx = np.ones(10 * 1024**3 // 8)"),
        ("mem_list_growth", "x = []\nwhile True: x.append(' ' * 10**7)"),
        # --- ctypes -------------------------------------------------------------------------
        ("ctypes_libc_system", "import ctypes\nctypes.CDLL(None).system(b'cat {canary} > leak.txt; env >> leak.txt')"),
        ("ctypes_segfault", "import ctypes\nctypes.string_at(0)"),
        ("ctypes_setuid", "import ctypes, os\nctypes.CDLL(None).setuid(0)\nprint('ROOT' if os.getuid() == 0 else '-')"),
        # --- class-hierarchy walks ----------------------------------------------------------
        (
            "walk_subclasses_popen",
            "p = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen']\n"
            "import subprocess\nprint(p[0](['cat', '{canary}'], stdout=-1).communicate() if p else 'none')",
        ),
        ("walk_func_globals", "g = (lambda: 0).__globals__['__builtins__']\nprint(g['open']('{canary}').read())"),
        ("walk_sys_modules", "import sys\nsys.modules['os'].system('cat {canary} > leak.txt')"),
        # --- import and string tricks --------------------------------------------------------
        ("import_dunder_import", "__import__('subprocess').run(['cat', '{canary}'])"),
        ("import_importlib", "import importlib\nimportlib.import_module('os').system('cat {canary} > leak.txt')"),
        ("import_builtins_open", "import builtins\nprint(builtins.__dict__['open']('{canary}').read())"),
        ("getattr_builtins_eval", "f = getattr(__builtins__, 'ev' + 'al')\nprint(f(\"open('{canary}').read()\"))"),
        ("getattr_concat_system", "import os\ngetattr(os, 'sys' + 'tem')('cat {canary} > leak.txt')"),
        ("exec_hex_encoded", "exec(bytes.fromhex('{hexcode}').decode())"),
        ("compile_hidden", "exec(compile(\"print(open('{canary}').read())\", 'x', 'exec'))"),
    ]


PAYLOADS = _payloads()


def _fill(code: str, host: Host, settings: Settings) -> str:
    hidden = f"print(open('{host.canary_file}').read())".encode().hex()
    values = {
        "canary": str(host.canary_file),
        "outside": str(host.outside_dir),
        "other": str(host.other_workdir),
        "project": str(Path(__file__).resolve().parents[3]),
        "data": str(settings.data_dir),
        "tcp": str(host.tcp_port),
        "udp": str(host.udp_port),
        "unix": str(host.unix_path),
        "victim": str(host.victim.pid),
        "server_pid": str(os.getpid()),
        "token": host.token,
        "daemon": f"999.{host.marker}",
        "hexcode": hidden,
    }
    for key, value in values.items():
        code = code.replace("{" + key + "}", value)
    return code


def _workdir_text(work: Path) -> str:
    chunks = []
    for path in work.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 1_000_000:
            chunks.append(path.read_text(errors="replace"))
    return "\n".join(chunks)


def _leftover_processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _assert_contained(result: SandboxResult, host: Host, work: Path) -> None:
    seen = "\n".join([result.stdout, result.stderr, result.error_message or "", _workdir_text(work)])
    assert host.canary_text not in seen, "host file content leaked"
    assert host.secret not in seen, "server secret leaked"
    assert "root:x:0:0" not in seen, "/etc/passwd leaked"
    assert "FOUND" not in result.stdout and "CONNECTED" not in result.stdout and "RESOLVED" not in result.stdout
    assert "ROOT" not in result.stdout and "RAW" not in result.stdout
    for target in host.targets():
        assert not target.exists(), f"wrote outside the workdir: {target}"
    assert not host.received, f"host listener got {host.received!r}"
    assert host.victim.poll() is None, "host victim process was killed"
    for path in work.rglob("*"):
        if path.is_symlink():
            target = Path(os.path.normpath(path.parent / path.readlink()))
            assert target.is_relative_to(work), f"escaping symlink left for the server: {path} -> {target}"


@pytest.mark.parametrize("enforce_policy", [True, False], ids=["policy", "os-only"])
@pytest.mark.parametrize(("name", "template"), PAYLOADS, ids=[p[0] for p in PAYLOADS])
async def test_payload_is_contained(
    manager: SandboxManager, host: Host, settings: Settings, name: str, template: str, enforce_policy: bool
) -> None:
    code = _fill(template, host, settings)
    result = await manager.run(
        session_id="attacker", code=code, timeout=PAYLOAD_TIMEOUT_SECONDS, enforce_policy=enforce_policy
    )
    if enforce_policy and result.killed_reason == "blocked":
        assert result.error_type == "PolicyViolation" and result.error_message.startswith("blocked:")
    work = manager.workdir("attacker")
    _assert_contained(result, host, work)
    after = await manager.run(session_id="attacker", code="print('still serving')")
    assert after.stdout == "still serving\n", after
    await manager.shutdown()
    await asyncio.sleep(0.2)
    assert _leftover_processes(f"999.{host.marker}") == [], "a sandbox process outlived its worker"


def test_suite_has_at_least_forty_payloads() -> None:
    assert len(PAYLOADS) >= 40


LEFT_TO_THE_OS_LAYER = {
    "fs_list_root",  # listing "/" is harmless inside the mount namespace
    "fs_walk_for_canary",
    "fs_write_host_tmp",  # /tmp/... is allowed: inside the sandbox it is a private tmpfs
    "fs_jwt_secret_file",  # the test data dir lives under /tmp as well
    "fs_write_venv",  # the path is computed (sys.prefix + ...), not a literal
    "env_print_all",  # the environment is cleared, so reading it is allowed
    "env_get_secret",
    "mem_10gb_bytearray",  # ordinary code: only the rlimit can stop it
    "mem_10gb_numpy",
    "mem_list_growth",
}


def test_policy_blocks_every_payload_except_those_only_the_os_can_judge(settings: Settings) -> None:
    from backend.sandbox import policy

    fake = Host(
        token="t", marker="1", secret="s", canary_file=Path("/srv/host_secret.txt"), canary_text="c",
        outside_dir=Path("/srv"), other_workdir=Path("/srv/other"), tcp_port=1, udp_port=2,
        unix_path=Path("/srv/h.sock"), victim=None, received=[],  # type: ignore[arg-type]
    )  # fmt: skip
    fake.victim = type("P", (), {"pid": 1})()  # type: ignore[assignment]
    passed = {name for name, code in PAYLOADS if not policy.check(_fill(code, fake, settings))}
    project = str(Path(__file__).resolve().parents[3])
    # A checkout under /tmp (e.g. a fresh clone there) makes the project path look like the sandbox's own /tmp.
    expected = LEFT_TO_THE_OS_LAYER | ({"fs_write_project"} if project.startswith("/tmp/") else set())
    assert passed == expected
