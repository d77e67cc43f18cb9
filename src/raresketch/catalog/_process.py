"""Process facts: the process key, scripting engines and user-writable paths per OS, renamed binaries, and the
OS guessed from a path when the event does not say it."""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from ..events import basename

__all__ = ["ProcessInfo", "ProcessRules", "process_key"]


@dataclass(frozen=True)
class ProcessInfo:
    """What the catalogue says of one process (None = unknown: no image name, or no path to judge)."""

    key: str | None
    is_script_engine: bool | None
    script_engine: str | None
    user_writable_path: bool | None
    renamed: bool | None
    allowlisted: bool = False


def process_key(executable: str | None, name: str | None = None, signer: str | None = None) -> str | None:
    """``powershell.exe|microsoft windows``: lower-cased image base name, plus ``|signer`` when known."""
    base = basename(executable) or basename(name)
    if not base:
        return None
    base = base.strip().lower()
    s = signer.strip().lower() if signer and signer.strip() else None
    return f"{base}|{s}" if s else base


def _stem(n: str) -> str:
    n = n.lower()
    return n.rsplit(".", 1)[0] if "." in n else n


_DRIVE = re.compile(r"^[a-z]:/")


def guess_os(path: str | None, base: str | None) -> str | None:
    """``windows`` / ``macos`` / ``linux`` from the shape of an executable path (drive letter or backslash;
    macOS top-level folders; another absolute path) or a ``.exe`` base name; None when nothing tells."""
    if path:
        if "\\" in path or _DRIVE.match(path.lower()):
            return "windows"
        if path.startswith("/"):
            return "macos" if path.startswith(("/Users/", "/Applications/", "/System/", "/private/")) else "linux"
    if base and base.lower().endswith(".exe"):
        return "windows"
    return None


class ProcessRules:
    """Scripting-engine globs and user-writable-path regexes per OS (``any`` = every OS), and the allow-listed
    processes (process keys or base names). :meth:`info` is O(rules of the process's OS)."""

    def __init__(self) -> None:
        self.engines: dict[str, list[tuple[str, str]]] = {}
        self.writable: dict[str, list[re.Pattern]] = {}
        self.allowed: set[str] = set()

    def add_engine(self, os_: str, pattern: str, engine: str) -> None:
        """A case-insensitive ``fnmatch`` glob on the image base name naming a scripting engine."""
        self.engines.setdefault(os_, []).append((pattern.lower(), engine))

    def add_writable(self, os_: str, pattern: str) -> None:
        """A regex searched in the lower-cased executable path with ``/`` separators."""
        self.writable.setdefault(os_, []).append(re.compile(pattern))

    def info(self, executable, name, signer, original_file_name, os_type) -> ProcessInfo:
        """The facts of one process: its key, scripting engine (the first matching glob of its OS — given, else
        guessed from the path — then of ``any``), whether its path is user-writable (None without a path), renamed
        (original file name's stem differs from the image's; None without one) and allow-listing."""
        base = basename(executable) or basename(name)
        key = process_key(executable, name, signer)
        if not base:
            return ProcessInfo(None, None, None, None, None)
        b = base.lower()
        os_ = (os_type or "").lower() or guess_os(executable, base)
        oses = [os_] if os_ in self.engines else list(self.engines)
        engine = None
        for o in oses + ["any"]:
            for pat, eng in self.engines.get(o, ()):
                if fnmatch.fnmatchcase(b, pat):
                    engine = eng
                    break
            if engine:
                break
        writable = None
        if executable:
            p = executable.replace("\\", "/").lower()
            w_oses = [os_] if os_ in self.writable else list(self.writable)
            writable = any(r.search(p) for o in w_oses + ["any"] for r in self.writable.get(o, ()))
        renamed = None
        if original_file_name and original_file_name.strip() not in ("", "-", "?"):
            renamed = _stem(original_file_name.strip()) != _stem(b)
        allowed = bool(self.allowed) and (b in self.allowed or (key or "") in self.allowed)
        return ProcessInfo(key, engine is not None, engine, writable, renamed, allowed)
