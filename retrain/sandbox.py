"""Run project-supplied code isolated from Warden's control plane.

Pipeline steps and evaluation readers are code a project's data scientists wrote. The worker
that runs them holds everything an attacker wants: the session-signing key, the audit signing
key, the key sealing every project's channel secrets, the database and every project's data.
So that code never runs *as* the worker. A :class:`StepExecutor` starts it in a sandbox that
sees only:

* the system's programs and libraries, the Python environment and Warden's own packages,
  read-only (code, not data);
* the run's inputs, read-only, each bound at its own path (:attr:`SandboxSpec.read_only`);
* its own output folder, read-write (:attr:`SandboxSpec.writable`): the only way it reports
  back — metrics, a saved model, data — is by writing files there, which the worker reads
  without following links (no token, no network call, no database access);
* a scrubbed environment the runner builds from nothing (no ``WARDEN_*`` settings, no
  credentials), a private ``/tmp``, no network unless the operator allows it for the project.

:class:`BubblewrapExecutor` does this on one machine with bubblewrap (``bwrap``, from the system
packages): new user, mount, PID, IPC, UTS and network namespaces, the unprivileged uid/gid
65534 (``nobody``) with every capability dropped, and ``--die-with-parent`` plus a guard
process so the code dies with the worker that supervises it. Production implementations of
the same interface would be containers or Kubernetes jobs (a pod per step with the inputs
mounted read-only, an emptyDir for the output, no service-account token and a deny-all
network policy).

Without ``bwrap`` Warden refuses to run project code. ``WARDEN_SANDBOX=none`` selects
:class:`UnsandboxedExecutor` for development on a machine without bubblewrap: the code then
runs as the worker with a scrubbed environment but can read everything the worker can, and a
warning says so every time.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from lineage.errors import InvalidInput, Unavailable

__all__ = [
    "SANDBOX_SETTINGS",
    "BubblewrapExecutor",
    "SandboxSpec",
    "StepExecutor",
    "UnsandboxedExecutor",
    "executor_for",
    "python_roots",
    "source_root",
]

_log = logging.getLogger("warden.sandbox")

SANDBOX_SETTINGS = ("bubblewrap", "none")
"""The values of ``WARDEN_SANDBOX``: the real sandbox (default) or, for development, none."""

# System locations a Python process needs; none of them holds Warden's data.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/mime.types",
)
_NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/ssl", "/etc/ca-certificates")
_WARDEN_PACKAGES = ("api", "governance", "lineage", "monitors", "reports", "retrain")

# Runs the command in its own process group and kills that group when its parent (the worker)
# is gone: the parent's pid is argv[1], the command follows. The exit status is the command's.
_GUARD = """
import os, signal, subprocess, sys, threading, time
parent = int(sys.argv[1])
child = subprocess.Popen(sys.argv[2:])
def watch():
    while os.getppid() == parent:
        time.sleep(0.2)
    os.killpg(0, signal.SIGKILL)
threading.Thread(target=watch, daemon=True).start()
code = child.wait()
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What one piece of project code may see and do.

    Attributes:
        argv: The program and its arguments (no shell).
        env: The whole environment of the program; nothing is inherited from the worker.
        cwd: Its working directory (one of ``writable``).
        read_only: Host files or directories visible read-only, each at its own path.
        writable: Host directories visible read-write, each at its own path.
        hidden: Host paths that must stay invisible even if they lie under a bound path
            (the data directory): an empty directory is mounted over each.
        network: Whether it may use the network (otherwise it has only a loopback device).
    """

    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    read_only: Sequence[Path] = ()
    writable: Sequence[Path] = ()
    hidden: Sequence[Path] = ()
    network: bool = False


class StepExecutor(Protocol):
    """Starts project code under a :class:`SandboxSpec`.

    The returned process leads its own process group, so the runner can stop all of it; its
    stdout and stderr go to ``log``. Implementations on one machine use namespaces
    (:class:`BubblewrapExecutor`); in production, containers or Kubernetes jobs.
    """

    @property
    def name(self) -> str:
        """A short name for logs (``bubblewrap``, ``none``, ``kubernetes`` …)."""
        ...

    def start(self, spec: SandboxSpec, *, log: IO[bytes]) -> subprocess.Popen[bytes]:
        """Start the program; raise :class:`~lineage.errors.Unavailable` if it cannot be."""
        ...


def source_root() -> Path:
    """Return the directory Warden's packages are imported from (the ``PYTHONPATH`` of code)."""
    return Path(__file__).resolve().parents[1]


def python_roots() -> list[Path]:
    """Return the directories the sandboxed interpreter needs: its prefixes and Warden's code.

    Warden's packages are bound one by one (not the checkout they live in, which may hold a
    data directory or a ``.env`` file).
    """
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent}
    source = source_root()
    for package in _WARDEN_PACKAGES:
        if (source / package / "__init__.py").is_file():
            roots.add(source / package)
    return sorted(roots)


@dataclass(frozen=True, slots=True)
class BubblewrapExecutor:
    """Run project code with bubblewrap as uid/gid 65534, in fresh namespaces, no network.

    Attributes:
        bwrap: The bubblewrap program (looked up on ``PATH``).
        uid: The unprivileged user the code runs as inside the sandbox.
        gid: Its group.
    """

    bwrap: str = "bwrap"
    uid: int = 65534
    gid: int = 65534
    name: str = field(default="bubblewrap", init=False)

    def argv(self, spec: SandboxSpec) -> list[str]:
        """Return the full ``bwrap …  -- program …`` command line for ``spec``."""
        program = shutil.which(self.bwrap)
        if program is None:
            raise Unavailable(
                "bubblewrap (bwrap) is not installed, so Warden will not run project code: "
                "install it (apt-get install bubblewrap), or for development only set "
                "WARDEN_SANDBOX=none"
            )
        args = [program, "--unshare-all", "--die-with-parent", "--new-session"]
        if spec.network:
            args.append("--share-net")
        args += ["--uid", str(self.uid), "--gid", str(self.gid), "--cap-drop", "ALL"]
        args += ["--hostname", "warden-sandbox", "--dev", "/dev", "--proc", "/proc"]
        args += ["--tmpfs", "/tmp", "--dir", "/etc"]  # noqa: S108 - a private, empty tmpfs
        for name in _SYSTEM_DIRS:
            path = Path(name)
            if path.is_symlink():
                args += ["--symlink", str(path.readlink()), name]
            elif path.is_dir():
                args += ["--ro-bind", name, name]
        for name in _SYSTEM_FILES + (_NETWORK_FILES if spec.network else ()):
            args += ["--ro-bind-try", name, name]
        for root in python_roots():
            args += ["--ro-bind", str(root), str(root)]
        for path in spec.hidden:
            args += ["--tmpfs", str(path)]
        for path in spec.read_only:
            args += ["--ro-bind", str(path), str(path)]
        for path in spec.writable:
            args += ["--bind", str(path), str(path)]
        # Mount points are made; now nothing but the output folder and /tmp stays writable.
        args += ["--remount-ro", "/"]
        for path in spec.hidden:
            args += ["--remount-ro", str(path)]
        args += ["--chdir", str(spec.cwd), "--", *spec.argv]
        return args

    def start(self, spec: SandboxSpec, *, log: IO[bytes]) -> subprocess.Popen[bytes]:
        """Start ``spec.argv`` inside the sandbox, under a guard that dies with this process.

        bubblewrap's ``--die-with-parent`` alone proved racy when the worker is SIGKILLed (the
        sandbox sometimes ran on), so a tiny guard process between the worker and ``bwrap``
        kills its process group — ``bwrap`` and with it the sandbox — once the worker is gone.
        """
        guard = [sys.executable, "-I", "-S", "-c", _GUARD, str(os.getpid())]
        return subprocess.Popen(
            [*guard, *self.argv(spec)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(spec.env),
            start_new_session=True,
        )


@dataclass(frozen=True, slots=True)
class UnsandboxedExecutor:
    """Development only (``WARDEN_SANDBOX=none``): run project code as the worker itself.

    The environment is still scrubbed, but the code can read the keys, the database and every
    project's data, and outlives a killed worker. Every start logs a warning saying so.
    """

    name: str = field(default="none", init=False)

    def start(self, spec: SandboxSpec, *, log: IO[bytes]) -> subprocess.Popen[bytes]:
        """Start ``spec.argv`` as the worker's own user, without isolation."""
        _log.warning(
            "WARDEN_SANDBOX=none: running project code WITHOUT a sandbox (%s); it can read "
            "Warden's keys, database and every project's data. Never use this in production",
            " ".join(spec.argv[:3]),
        )
        return subprocess.Popen(
            list(spec.argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=spec.cwd,
            env=dict(spec.env),
            start_new_session=True,
        )


def executor_for(setting: str) -> StepExecutor:
    """Return the executor named by ``WARDEN_SANDBOX`` (``bubblewrap``, or ``none``).

    Raises:
        InvalidInput: The setting names no executor.
    """
    if setting == "bubblewrap":
        return BubblewrapExecutor()
    if setting == "none":
        _log.warning(
            "WARDEN_SANDBOX=none: pipeline steps and evaluation readers will run WITHOUT a "
            "sandbox, as this process's user. Development only"
        )
        return UnsandboxedExecutor()
    raise InvalidInput(
        f"WARDEN_SANDBOX must be one of {list(SANDBOX_SETTINGS)}, not {setting!r}",
        field="sandbox",
    )
