"""Running the stack's programs: as the `postgres` OS user where needed, installing Debian packages when missing,
and the JVM services (the broker, Kafka Connect) in the background, known by a pid file."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from cdc.errors import CdcError


class StackError(CdcError):
    pass


LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_KEEP = 3


def rolling_log4j2(file: str, levels: dict[str, str]) -> str:
    """A log4j2 configuration for a JVM service: one file readable by its owner only, rolled at LOG_MAX_BYTES with
    LOG_KEEP old files kept, so a service's log never grows without bound; `levels` by logger name."""
    lines = [
        "status = warn",
        "appender.file.type = RollingFile",
        "appender.file.name = file",
        f"appender.file.fileName = {file}",
        f"appender.file.filePattern = {file}.%i",
        "appender.file.filePermissions = rw-------",
        "appender.file.policies.type = Policies",
        "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
        f"appender.file.policies.size.size = {LOG_MAX_BYTES}",
        "appender.file.strategy.type = DefaultRolloverStrategy",
        f"appender.file.strategy.max = {LOG_KEEP}",
        "appender.file.layout.type = PatternLayout",
        "appender.file.layout.pattern = [%d] %p %m (%c)%n",
        "rootLogger.level = INFO",
        "rootLogger.appenderRef.file.ref = file",
    ]
    for n, (name, level) in enumerate(levels.items()):
        lines += [f"logger.l{n}.name = {name}", f"logger.l{n}.level = {level}"]
    return "\n".join(lines) + "\n"


def is_root() -> bool:
    return os.geteuid() == 0


def run(cmd: list[str], *, as_user: str | None = None, check: bool = True, timeout: float = 300,
        env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    if as_user and is_root():
        cmd = ["runuser", "-u", as_user, "--", *cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    if check and result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise StackError(f"{Path(cmd[0]).name if not as_user else cmd[3]} failed: {tail[0]}")
    return result


def apt_install(*packages: str) -> None:
    """Install Debian packages (as root); a clear error otherwise."""
    if not is_root() or shutil.which("apt-get") is None:
        raise StackError(f"missing {' '.join(packages)}: install them with your package manager")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=600)
    result = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
                            capture_output=True, text=True, env=env, timeout=1200)
    if result.returncode != 0:
        raise StackError(f"apt-get install {' '.join(packages)} failed: {result.stderr.strip()[-300:]}")


def os_user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def make_reachable(path: Path, user: str) -> None:
    """Let `user` traverse every parent of `path` (root-owned homes are often 0700)."""
    if not is_root():
        return
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def java_command(heap: str, classpath: Path, main: str, *args: str, properties: dict[str, str]) -> list[str]:
    """A JVM with a fixed heap and G1 running `main` from the jars in `classpath`, with `-D` system properties."""
    return ["java", f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", *(f"-D{k}={v}" for k, v in properties.items()),
            "-cp", f"{classpath}/*", main, *args]


class Background:
    """A program running in its own session, in the background, known by its pid file (so `cdc stack` commands
    run later find it)."""

    def __init__(self, pid_file: Path) -> None:
        self.pid_file = pid_file

    def pid(self) -> int | None:
        """Its pid while it runs."""
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def spawn(self, command: list[str], output: Path, cwd: Path) -> None:
        """Start `command`, its output appended to `output`."""
        with output.open("ab") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, cwd=cwd)
        self.pid_file.write_text(str(process.pid))

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (the program shuts down cleanly), SIGKILL after `timeout` seconds."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            _reap(pid)
            time.sleep(0.2)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)


def _reap(pid: int) -> None:
    """Collect a child that exited (when this process started it), so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
