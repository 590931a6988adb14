"""Running the stack's programs: as the `postgres` OS user where needed, installing Debian packages when missing."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from cdc.errors import CdcError


class StackError(CdcError):
    pass


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
