"""Process facts: the process key, scripting engines and user-writable paths per OS, renamed binaries, and the
OS guessed from a path when the event does not say it."""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from ..events import basename

__all__ = ["ProcessInfo", "ProcessRules", "path_shape", "process_key"]


@dataclass(frozen=True)
class ProcessInfo:
    """What the catalogue says of one process (None = unknown: no image name, or no path to judge)."""

    key: str | None
    #: Where the image lives, as :func:`path_shape` (None without a path): with ``key``, the identity a
    #: process's habitual-explorer status belongs to, so that status does not travel to a copy elsewhere.
    shape: str | None
    is_script_engine: bool | None
    script_engine: str | None
    user_writable_path: bool | None
    renamed: bool | None
    allowlisted: bool = False


_USER_HOME = re.compile(r"^([a-z]:/users/|/users/|/home/|[a-z]:/documents and settings/)[^/]+(?=/)")
_GUIDISH = re.compile(r"\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?")
_DIGITS = re.compile(r"[0-9]+")


def path_shape(executable: str | None) -> str | None:
    """The folder an image runs from, made comparable across hosts and versions: lower case, ``/`` separators,
    the user's profile folder as ``*``, GUIDs as ``<id>``, digit runs as ``#``
    (``C:\\Users\\bob\\AppData\\Local\\slack\\app-4.41.105\\slack.exe`` ->
    ``c:/users/*/appdata/local/slack/app-#.#.#``). None without a path (a bare name)."""
    if not executable:
        return None
    p = executable.strip().replace("\\", "/").lower()
    if "/" not in p:
        return None
    d = p.rsplit("/", 1)[0]
    d = _USER_HOME.sub(lambda m: m.group(1) + "*", d)
    d = _GUIDISH.sub("<id>", d)
    return _DIGITS.sub("#", d)


def _flag(v) -> bool | None:
    """A boolean from the event (bool, or its text through the resolver's string columns); None if unknown."""
    if v is None or isinstance(v, bool):
        return v
    t = str(v).strip().lower()
    return True if t in ("true", "1") else False if t in ("false", "0") else None


def process_key(executable: str | None, name: str | None = None, signer: str | None = None,
                exists=None, trusted=None, sha256: str | None = None) -> str | None:
    """The process identity the baseline keeps history for: the lower-cased image base name plus

    - ``|signer`` when the signature is trusted (or its trust is not reported): ``powershell.exe|microsoft
      windows`` — an update with a new hash is not a new process;
    - when the binary is known unsigned or its signature untrusted/invalid, never the claimed signer (anyone can
      self-sign "Telegram FZ-LLC"): ``|untrusted:<path shape>`` (:func:`path_shape`, stable across updates), else
      ``|sha256:<first 16 hex digits>``, else ``|untrusted``;
    - nothing more when nothing is known of the signature (telemetry without it).
    None without an image name."""
    base = basename(executable) or basename(name)
    if not base:
        return None
    base = base.strip().lower()
    s = signer.strip().lower() if signer and signer.strip() else None
    if _flag(trusted) is False or _flag(exists) is False:
        shape = path_shape(executable)
        if shape is not None:
            return f"{base}|untrusted:{shape}"
        h = (sha256 or "").strip().lower()
        return f"{base}|sha256:{h[:16]}" if h else f"{base}|untrusted"
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
        self.allowed: set[tuple[str, str]] = set()      # (base name, signer or '*')

    def add_engine(self, os_: str, pattern: str, engine: str) -> None:
        """A case-insensitive ``fnmatch`` glob on the image base name naming a scripting engine."""
        self.engines.setdefault(os_, []).append((pattern.lower(), engine))

    def add_writable(self, os_: str, pattern: str) -> None:
        """A regex searched in the lower-cased executable path with ``/`` separators."""
        self.writable.setdefault(os_, []).append(re.compile(pattern))

    def add_allowed(self, entry: str) -> None:
        """Allow-list a process: ``name|signer`` (the image base name and its trusted signer's subject, as in the
        process key) or ``name|*`` (any binary of that name, an explicit choice). A bare name is refused: anyone can
        name a binary ``teams.exe``."""
        e = str(entry).strip().lower()
        name, sep, signer = e.partition("|")
        if not sep or not name or not signer:
            raise ValueError(f"[allow] processes: {entry!r} names no signer; write '{name or e}|<signer subject>' "
                             f"(the trusted signer, as in the process key) or '{name or e}|*' to allow any binary "
                             "of that name")
        self.allowed.add((name, signer))

    def _allowed(self, base: str, key: str | None) -> bool:
        if not self.allowed:
            return False
        if (base, "*") in self.allowed:
            return True
        name, _, signer = (key or "").partition("|")
        return bool(signer) and (name, signer) in self.allowed

    def info(self, executable, name, signer, original_file_name, os_type, exists=None, trusted=None,
             sha256=None) -> ProcessInfo:
        """The facts of one process: its key, scripting engine (the first matching glob of its OS — given, else
        guessed from the path — then of ``any``), whether its path is user-writable (None without a path), renamed
        (original file name's stem differs from the image's; None without one) and allow-listing."""
        base = basename(executable) or basename(name)
        key = process_key(executable, name, signer, exists, trusted, sha256)
        if not base:
            return ProcessInfo(None, None, None, None, None, None)
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
        allowed = self._allowed(b, key)
        return ProcessInfo(key, path_shape(executable), engine is not None, engine, writable, renamed, allowed)
