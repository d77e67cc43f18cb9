"""The ``raresketch`` command line: ``demo``, ``run``, ``inspect``, ``simulate``.

Errors end with a one-line message on stderr and exit code 1 (bad input, unreadable file, corrupt state) or 2
(bad arguments); never a traceback. Progress bars go to stderr and only when it is a terminal.
"""
from __future__ import annotations

import collections
import datetime as _dt
import json
import logging
import os
import sys
import time
from collections import Counter
from typing import Any, Iterator

import click
import pyarrow as pa
from tqdm import tqdm

from ._cli_catalog import catalog
from ._cli_errors import CliError
from ._cli_share import check_global, global_changes, global_options, share
from ._version import __version__
from ._readers import FORMATS, ReadStats, read_events
from ._readers._source import MAX_LINE_BYTES
from .alerts import Alert, write_alerts
from .config import Config
from .detect import Engine
from .detect._prepare import INPUT_COLUMNS
from .events import conform

#: Events held back to put inputs into one event-time order (see ``_batches``); ``--sort-buffer`` overrides it.
SORT_BUFFER = 1_000_000
_RUN_BATCH = 100_000


def _progress(total: int | None, desc: str, unit: str = "ev"):
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr,
                disable=not sys.stderr.isatty(), leave=False, unit_divisor=1024 if unit == "B" else 1000)


def _fmt_table(rows: list[list[str]], headers: list[str], widths: list[int | None]) -> str:
    """A fixed-width table; a column of width None is never cut (as wide as its longest value)."""
    widths = [max([len(str(h))] + [len("" if r[k] is None else str(r[k])) for r in rows]) if w is None else w
              for k, (h, w) in enumerate(zip(headers, widths))]

    def cut(s: str, w: int) -> str:
        s = "" if s is None else str(s)
        return s if len(s) <= w else s[: w - 1] + "…"
    line = "  ".join(cut(h, w).ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(cut(c, w).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def _alert_rows(alerts: list[Alert]) -> list[list[str]]:
    return [[a.timestamp.strftime("%Y-%m-%d %H:%M"), a.name, a.severity, a.event.get("host.name") or a.host_id,
             a.event.get("process.name") or a.process_key or "",
             a.event.get("destination.domain") or a.event.get("destination.ip") or a.destination,
             a.explain()] for a in alerts]


ALERT_HEADERS = ["time (UTC)", "alert", "severity", "host", "process", "destination", "why"]
#: The alert name and the why are never cut (width None); the why is the last column.
ALERT_WIDTHS = [16, None, 13, 16, 18, 34, None]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="raresketch")
def main() -> None:
    """Find command-and-control traffic hiding in ordinary endpoint network events."""
    # The command line streams ~100 MB batches through Arrow: the system allocator keeps freed pages where
    # mimalloc hands them back and faults them in again (measured: 4.6 s -> 1.1 s system time on 3.5 M events).
    # ARROW_DEFAULT_MEMORY_POOL, when set, still decides.
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())


# ---- demo ---------------------------------------------------------------------------------------------
@main.command()
@click.option("--agents", default=150, show_default=True, help="Simulated agents (hosts).")
@click.option("--days", default=45, show_default=True, help="Simulated days.")
@click.option("--seed", default=0, show_default=True, help="Simulation seed.")
@click.option("--show", default=40, show_default=True, help="Alerts to print (0 = all).")
@click.option("--format", "out_format", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table: the alerts and the ground truth as text; json: one JSON object (alerts in ECS).")
def demo(agents: int, days: int, seed: int, show: int, out_format: str) -> None:
    """Simulate an organisation with injected attacks, run both detectors, compare with the ground truth."""
    from .simulate import Organisation, match_ground_truth

    if agents < 1 or days < 1:
        raise click.BadParameter("agents and days must be positive")
    t0 = time.perf_counter()
    org = Organisation(agents=agents, days=days, seed=seed)
    engine = Engine()
    alerts: list[Alert] = []
    n = 0
    with _progress(int(org.expected_events()), "demo") as bar:
        for batch in org.batches(100_000):
            alerts += engine.process(batch)
            n += batch.num_rows
            bar.update(batch.num_rows)
    elapsed = time.perf_counter() - t0
    gt = org.ground_truth
    hits, unmatched = match_ground_truth(alerts, gt)
    if out_format == "json":
        _demo_json(agents, days, seed, n, alerts if show == 0 else alerts[:show], alerts, gt, hits, unmatched, engine)
        return
    click.echo(f"raresketch demo: {agents} agents, {days} days, seed {seed}: {n:,} events in {elapsed:.1f} s "
               f"({n / elapsed:,.0f} events/s, simulation included)\n")
    shown = alerts if show == 0 else alerts[:show]
    click.echo(f"Alerts ({len(alerts)}; first {len(shown)} shown):")
    click.echo(_fmt_table(_alert_rows(shown), ALERT_HEADERS, ALERT_WIDTHS))
    click.echo("\nDetection against the injected ground truth:")
    rows = []
    for g, found in zip(gt.to_pylist(), hits):
        rows.append(["yes" if found else "MISSED", g["scenario"], "attack" if g["malicious"] else "benign",
                     g["host.name"], g["process.name"], g["destination.domain"] or g["destination.ip"],
                     ", ".join(sorted({alerts[k].name for k in found})) or "-"])
    click.echo(_fmt_table(rows, ["found", "scenario", "kind", "host", "process", "destination", "alerts"],
                          [6, 30, 6, 16, 18, 34, 70]))
    caught = sum(1 for f, g in zip(hits, gt.to_pylist()) if f and g["malicious"])
    total_mal = sum(1 for g in gt.to_pylist() if g["malicious"])
    scored_days = max(0, days - engine.config.activation_days)
    per_k = 1000 * len(unmatched) / max(1, agents * scored_days)
    click.echo(f"\nInjected attacks caught: {caught}/{total_mal}. Alerts not explained by an injection: "
               f"{len(unmatched)} ({per_k:.1f} per 1000 agent-days after activation).")
    click.echo(f"Suppressed: {dict(engine.suppressed)}.")
    click.echo(f"Baseline memory: {engine.baseline.nbytes / 2**20:.0f} MiB.")


def _demo_json(agents, days, seed, n, shown, alerts, gt, hits, unmatched, engine) -> None:
    from .alerts import to_ecs

    truth = [{"found": bool(found), "scenario": g["scenario"], "malicious": bool(g["malicious"]),
              "host": g["host.name"], "process": g["process.name"],
              "destination": g["destination.domain"] or g["destination.ip"],
              "alerts": sorted({alerts[k].name for k in found})} for g, found in zip(gt.to_pylist(), hits)]
    click.echo(json.dumps({"agents": agents, "days": days, "seed": seed, "events": n, "alerts_total": len(alerts),
                           "alerts": [to_ecs(a) for a in shown], "ground_truth": truth,
                           "attacks_caught": sum(t["found"] and t["malicious"] for t in truth),
                           "attacks_total": sum(t["malicious"] for t in truth),
                           "alerts_not_explained": len(unmatched), "suppressed": dict(engine.suppressed)},
                          default=str))


# ---- run ----------------------------------------------------------------------------------------------
def _batches(inputs: tuple[str, ...], fmt: str, stats: ReadStats, window: int = SORT_BUFFER,
             stop=lambda: False, failed: list[str] | None = None,
             max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[pa.Table]:
    """All inputs' events (files, folders, stdin, in the order given) in event-time order within a window of
    ``window`` events: events are held back until ``window`` newer ones have been read, and the held events
    are sorted only when a batch arrives out of order. In-order input streams with no sort; an event that
    arrives more than ``window`` events late is scored as a late event. Memory: about ``window`` events.
    A file that fails to read is reported (one warning line), added to ``failed``, and the next one is read;
    ``stop()`` ends the reading (what is held is still yielded)."""
    from ._readers._dns import DnsJoin

    dns = DnsJoin()   # one DNS join for the whole run: answers in one input name connections in the next

    def read_one(path: str) -> Iterator[pa.Table]:
        if stop():
            return
        src: Any = sys.stdin.buffer if path == "-" else path
        try:
            # Parquet and Arrow: only the columns the Engine reads, text kept dictionary-encoded (resolved and
            # hashed once per distinct value)
            for t in read_events(src, format=fmt, stats=stats, dns_join=dns, max_line_bytes=max_line_bytes,
                                 columns=INPUT_COLUMNS, dictionary=True):
                yield t
                if stop():
                    return
        except (OSError, ValueError) as e:
            if path == "-" and "<stdin>" in str(e):
                raise CliError("this input cannot be read from stdin (Parquet, Arrow and .evtx need a seekable "
                               "file): give its path") from None
            if failed is not None:
                failed.append(path)
            click.echo(f"raresketch: warning: {path}: {getattr(e, 'strerror', None) or e}; the rest of it is "
                       "skipped, the next input is read", err=True)

    held: collections.deque[pa.Table] = collections.deque()   # in time order as a whole
    total, newest = 0, None
    for b in (b for path in inputs for b in read_one(path)):
        if not b.num_rows:
            continue
        ts = b.column("@timestamp")                   # each reader batch is sorted within itself
        first, last = ts[0].value, ts[-1].value
        if newest is not None and first < newest:     # out of order: sort what is held with it
            parts = [*held, b]
            if any(not x.schema.equals(b.schema) for x in held):   # dictionary and dense text: all dense
                parts = [conform(x) for x in parts]
            t = pa.concat_tables(parts, promote_options="default").sort_by([("@timestamp", "ascending")])
            held = collections.deque(t.slice(off, _RUN_BATCH) for off in range(0, t.num_rows, _RUN_BATCH))
        else:
            held.append(b)
        newest = last if newest is None else max(newest, last)
        total += b.num_rows
        while held and total - held[0].num_rows >= window:
            total -= held[0].num_rows
            yield held.popleft()
    yield from held


@main.command()
@click.argument("inputs", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Input format.")
@click.option("--out", type=click.Path(dir_okay=False, allow_dash=True), default="-", show_default=True,
              help="Where to write alerts (JSON lines). An existing file needs --append or --force.")
@click.option("--append", is_flag=True, help="Add the alerts to an existing --out file.")
@click.option("--force", is_flag=True, help="Replace an existing --out file.")
@click.option("--output-format", type=click.Choice(["ecs", "ocsf"]), default="ecs", show_default=True)
@click.option("--state", type=click.Path(dir_okay=False), help="Baseline file: loaded if it exists, saved at the end "
              "(locked for the run; never a symbolic link).")
@click.option("--wait", "wait_lock", is_flag=True, help="Wait for another run holding --state instead of refusing.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="TOML configuration (thresholds, allow-lists, catalogue additions); with an existing --state, "
              "what a saved baseline allows to change is applied.")
@click.option("--activation-days", type=int, help="Override activation_days.")
@click.option("--training-days", type=int, help="Override training_days.")
@click.option("--dedup-hours", type=float, help="Override dedup_hours.")
@click.option("--sort-buffer", type=click.IntRange(min=0), default=SORT_BUFFER, show_default=True,
              help="Files: events held back to put the inputs into one time order (memory grows with it).")
@click.option("--follow", "follow", multiple=True, type=click.Path(dir_okay=False),
              help="Follow this file as it grows (tail -F: survives rotation); repeatable. Runs until a signal.")
@click.option("--max-lateness", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Live input (- or --follow): seconds of event time an event may arrive late and still be put "
              "in order; alerts wait up to that long (0: each alert within about a second).")
@click.option("--checkpoint-every", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Save --state every this many seconds (0: only at the end).")
@click.option("--max-line-bytes", type=click.IntRange(min=1), default=MAX_LINE_BYTES, show_default=True,
              help="A longer input line is skipped without being held in memory (counted line_too_long).")
@global_options
def run(inputs, fmt, out, append, force, output_format, state, wait_lock, config_file, activation_days,
        training_days, dedup_hours, sort_buffer, follow, max_lateness, checkpoint_every, max_line_bytes,
        share_opts=None) -> None:
    """Score-then-learn over INPUTS (files, folders, or - for stdin) in event-time order; write alerts.

    SIGTERM and SIGINT end the run cleanly: alerts flushed, state saved, summary printed, exit 128+signal."""
    from ._run import RunError, preflight
    from ._state import StateLock, StateLocked

    if not inputs and not follow:
        raise click.UsageError("give INPUTS (files, folders, -) or --follow FILE")
    if fmt in ("parquet", "arrow", "evtx") and ("-" in inputs or follow):
        raise CliError(f"{fmt} cannot be read from stdin or followed (the reader needs a whole, seekable file): "
                       "give its path")
    try:
        preflight(tuple(inputs) + tuple(follow), out, state, append, force)
        changes = _config_changes(config_file, activation_days, training_days, dedup_hours)
        changes.update(global_changes(share_opts))
    except (RunError, ValueError) as e:
        raise CliError(str(e)) from None
    lock = None
    if state:
        try:
            lock = StateLock(state, wait=None if wait_lock else 0.0).acquire()
        except StateLocked as e:
            raise CliError(str(e)) from None
        except OSError as e:
            raise CliError(f"cannot lock --state {state}: {e.strerror or e}") from None
    try:
        _run(inputs, fmt, out, append, output_format, state, changes, sort_buffer, follow, max_lateness,
             checkpoint_every, max_line_bytes)
    finally:
        if lock is not None:
            lock.release()


def _config_changes(config_file, activation_days, training_days, dedup_hours) -> dict[str, Any]:
    """The configuration keys given (TOML file, then options), checked; applied to a new or a loaded baseline."""
    changes = Config.read_toml(config_file) if config_file else {}
    changes.update({k: v for k, v in (("activation_days", activation_days), ("training_days", training_days),
                                      ("dedup_hours", dedup_hours)) if v is not None})
    if changes:
        Config.from_dict(changes)                   # checked now, before anything is read
    return changes


class _Stop:
    """SIGTERM / SIGINT: remember the signal; the run stops reading at the next batch or poll (a second signal
    stops at once)."""

    def __init__(self):
        import signal

        self.signum = 0
        self._old = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)}

    def _handle(self, signum, frame) -> None:
        if self.signum:
            raise KeyboardInterrupt
        self.signum = signum

    def __call__(self) -> bool:
        return bool(self.signum)

    def restore(self) -> None:
        import signal

        for sig, h in self._old.items():
            signal.signal(sig, h)


def _run(inputs, fmt, out, append, output_format, state, changes, sort_buffer, follow, max_lateness,
         checkpoint_every, max_line_bytes=MAX_LINE_BYTES) -> None:
    from ._run import RunError, by_first_timestamp, input_bytes, open_sink, regular_stdin

    had_state = bool(state and os.path.exists(state))
    t_load = time.perf_counter()
    engine = check_global(_open_engine(state, changes))
    load_s = time.perf_counter() - t_load if had_state else None
    before, before_supp = Counter(engine.stats), Counter(engine.suppressed)
    log = logging.getLogger("raresketch")
    if not log.handlers:                  # the engine's warnings are printed below, once (not by logging's default)
        log.addHandler(logging.NullHandler())
    n_warned = len(engine.warnings)
    shown = [n_warned, 0]   # warnings already printed: the engine's (earlier runs' too), the reader's
    stats = ReadStats()
    try:
        sink = open_sink(out, append)
    except RunError as e:
        raise CliError(str(e)) from None
    stop = _Stop()
    t0 = time.perf_counter()
    n_alerts, by_name, failed, files_failed = 0, Counter(), None, []
    last_ckpt = time.monotonic()
    live = bool(follow) or ("-" in inputs and not regular_stdin())
    files = tuple(p for p in inputs if not (live and p == "-"))
    save_s = None

    def emit(batch) -> None:
        nonlocal n_alerts, last_ckpt, save_s
        alerts = engine.process(batch)
        n_alerts += write_alerts(alerts, sink, output_format)
        write_alerts(engine.take_health(), sink, output_format)   # hosts whose clock hides their events
        sink.flush()                                  # a state saved later never holds events of unwritten alerts
        by_name.update(a.name for a in alerts)
        for w in (*engine.warnings[shown[0]:], *stats.warnings[shown[1]:]):
            tqdm.write(f"raresketch: warning: {w}", file=sys.stderr)   # as it happens (the summary lists them)
        shown[:] = [len(engine.warnings), len(stats.warnings)]
        if size is None:
            bar.update(batch.num_rows)
        else:                                         # bytes of the inputs read, events in the postfix
            bar.update(min(stats.bytes_read, size) - bar.n)
            bar.set_postfix_str(f"{stats.emitted:,} events", refresh=False)
        if state and checkpoint_every and time.monotonic() - last_ckpt >= checkpoint_every:
            save_s = _save(engine, state)
            last_ckpt = time.monotonic()

    size = None if live or not files else input_bytes(files)
    try:
        with _progress(size, "run", "B" if size is not None else "ev") as bar:
            if files:
                files = by_first_timestamp(files, fmt)
                for batch in _batches(files, fmt, stats, sort_buffer, stop, files_failed, max_line_bytes):
                    emit(batch)
            if live and not stop():
                _live(inputs, follow, fmt, stats, max_lateness, stop, emit, max_line_bytes)
        sink.flush()
    except BrokenPipeError:
        failed = "the alerts' reader closed the pipe"
    except OSError as e:
        failed = f"cannot write alerts to {out}: {e.strerror or e}"
    except KeyboardInterrupt:
        failed = "interrupted twice: stopped at once"
    finally:
        stop.restore()
        if sink is not sys.stdout:
            try:
                sink.close()
            except OSError as e:
                failed = failed or f"cannot write alerts to {out}: {e.strerror or e}"
    elapsed = time.perf_counter() - t0
    saved = None
    if state and not failed:
        save_s = _save(engine, state)
        saved = state
    _summary(stats, engine, by_name, n_alerts, elapsed, before, state, saved, load_s, save_s, before_supp,
             engine.warnings[n_warned:])
    if failed:
        if failed.startswith("the alerts' reader") and not state:
            return
        raise CliError(f"{failed}; {n_alerts:,} alerts written, state not saved (the next run with this input "
                       "repeats them rather than lose any)" if state else failed)
    if stop.signum:
        sys.exit(128 + stop.signum)
    if files_failed:
        raise CliError(f"{len(files_failed)} input(s) could not be read to the end: {', '.join(files_failed)} "
                       "(the rest was processed" + (" and the state saved)" if state else ")"))


def _save(engine: Engine, state: str) -> float:
    t = time.perf_counter()
    try:
        engine.save(state)
    except OSError as e:
        raise CliError(f"cannot save state to {state}: {e.strerror or e}") from None
    return time.perf_counter() - t


def _live(inputs, follow, fmt, stats, max_lateness, stop, emit, max_line_bytes=MAX_LINE_BYTES) -> None:
    """Live sources: lines parsed as they arrive (at least every 0.2 s), reordered within ``max_lateness``."""
    from ._run import LiveLines, Reorder, regular_stdin

    from ._readers._dns import DnsJoin

    lines = LiveLines("-" in inputs and not regular_stdin(), tuple(follow), max_line=max_line_bytes)
    order = Reorder(max_lateness)
    dns = DnsJoin()   # one DNS join for the stream: an answer names the connections of later chunks
    try:
        for chunk in lines.chunks(stop):
            now = time.monotonic()
            for t in read_events(chunk, format=fmt, stats=stats, dns_join=dns, max_line_bytes=max_line_bytes):
                for b in order.push(t, now):
                    emit(b)
            for b in order.tick(now):
                emit(b)
        for b in order.flush():
            emit(b)
    finally:
        if lines.too_long:
            stats.skipped["line_too_long"] += lines.too_long
        lines.close()


def _open_engine(state: str | None, changes: dict[str, Any]) -> Engine:
    """The engine of ``state`` (with ``changes`` applied where a saved baseline allows them), else a new one."""
    from ._state import read_state_bytes

    if state and os.path.exists(state):
        try:
            engine = Engine.from_bytes(read_state_bytes(state, follow_symlinks=False))
        except (OSError, ValueError) as e:
            raise CliError(f"cannot load state {state}: {getattr(e, 'strerror', None) or e}") from None
        if changes:
            try:
                engine.reconfigure(engine.config.replace(**changes))
            except (OSError, ValueError) as e:
                raise CliError(f"{state}: {e}") from None
        return engine
    try:
        return Engine(Config().replace(**changes) if changes else Config())
    except MemoryError:
        raise CliError("not enough memory for the baseline: lower capacity (docs/DETECTORS.md)") from None
    except (OSError, ValueError) as e:
        raise CliError(str(e)) from None


def _summary(stats: ReadStats, engine: Engine, by_name: Counter, n_alerts: int, elapsed: float,
             before: Counter, state: str | None, saved: str | None, load_s: float | None,
             save_s: float | None, before_supp: Counter, warnings: list[str]) -> None:
    """This run's counts, suppressions and warnings (the engine's minus what the loaded state held), and the
    state's fate."""
    err = lambda s: click.echo(s, err=True)  # noqa: E731
    err(f"raresketch: read {stats.read:,} records, {stats.emitted:,} network events in {elapsed:.1f} s "
        f"({stats.emitted / max(elapsed, 1e-9):,.0f} events/s)")
    skipped = dict(stats.skipped)
    for k in ("skipped_invalid", "skipped_timestamp_out_of_range", "skipped_future", "too_old", "skipped_inbound",
              "skipped_internal_destination", "late"):
        if engine.stats.get(k, 0) - before.get(k, 0):
            skipped[k] = engine.stats[k] - before.get(k, 0)
    skipped = {k: v for k, v in skipped.items() if v}
    if skipped:
        err("  skipped: " + ", ".join(f"{k} {v:,}" for k, v in sorted(skipped.items())))
    err(f"  alerts: {n_alerts:,}" + (" (" + ", ".join(f"{v} {k}" for k, v in by_name.most_common()) + ")"
                                    if by_name else ""))
    supp = {k: v - before_supp.get(k, 0) for k, v in engine.suppressed.items() if v - before_supp.get(k, 0)}
    if supp:
        err("  suppressed: " + ", ".join(f"{k} {v:,}" for k, v in sorted(supp.items())))
    if state:
        how = f"loaded in {load_s:.1f} s, " if load_s is not None else "new, "
        err(f"  state: {state} ({how}" + (f"saved in {save_s:.1f} s, {os.path.getsize(saved) / 2**20:,.1f} MiB)"
                                         if saved else "NOT saved)"))
    for w in (*stats.warnings, *warnings):
        err(f"  warning: {w}")


# ---- inspect ------------------------------------------------------------------------------------------
@main.command()
@click.argument("state", type=click.Path(exists=True, dir_okay=False))
@click.option("--top", default=10, show_default=True, help="Top cloud resources by prevalence.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(state: str, top: int, as_json: bool) -> None:
    """Show a saved baseline: window, activation, memory by structure, top destinations, health."""
    try:
        engine = Engine.load(state)
    except (OSError, ValueError) as e:
        raise CliError(f"cannot load state {state}: {e}") from None
    info = engine.baseline.info(top)
    info["top_resources"] = [(engine.resource_name(int(k, 16)) or k, c) for k, c in info.pop("top_resource_keys")]
    info["first_party"] = [(engine.resource_name(int(k, 16)) or k, c) for k, c in info.pop("first_party_keys")]
    info["habitual_explorers"] = engine.habitual_explorers()
    info["window_first_day"] = max(info["first_day"], info["today"] - info["window_days"] + 1) if info["today"] else 0
    info["stats"] = dict(engine.stats)
    info["suppressed"] = dict(engine.suppressed)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    day = lambda d: str(_dt.date.fromordinal(719163 + d)) if d else "-"  # noqa: E731
    lo = max(info["first_day"], info["today"] - info["window_days"] + 1) if info["today"] else 0
    click.echo(f"window: {day(lo)} .. {day(info['today'])} (the last {info['window_days']} days of event time; "
               f"activation {info['activation_days']} days: {'active' if info['activated'] else 'not yet active'}"
               + (f", learning since {day(info['first_day'])}" if info["first_day"] and info["first_day"] < lo
                  else "") + ")")
    click.echo(f"agents: {info['agents_tracked']:,} tracked, {info['active_agents']:,} active in the window")
    click.echo(f"memory: {info['total_bytes'] / 2**20:.1f} MiB")
    for k, v in info["memory_bytes"].items():
        h = info["health"].get(k, {})
        click.echo(f"  {k:18s} {v / 2**20:8.1f} MiB  keys {h.get('num_keys', 0):>10,}  pairs "
                   f"{h.get('num_pairs', 0):>10,}  evictions {h.get('evictions', 0):,}  dropped "
                   f"{h.get('dropped_keys', 0):,}")
    click.echo(f"estimates: exact below {info['exact_limit']} distinct members per key; beyond, a sampled "
               "estimate (relative error about sqrt(2/exact_limit))")
    click.echo("top cloud resources by prevalence (agents):")
    for name, c in info["top_resources"]:
        click.echo(f"  {c:8,}  {name}")
    if info["first_party"]:
        click.echo("providers' first-party services reached (agents; learned, never tenant resources):")
        for name, c in info["first_party"]:
            click.echo(f"  {c:8,}  {name}")
    if info["habitual_explorers"]:
        click.echo(f"habitual explorers (>= {engine.config.habitual_explorer_n} first rare contacts):")
        for name, c in info["habitual_explorers"]:
            click.echo(f"  {c:8,}  {name}")
    click.echo(f"alerts: {sum(v for k, v in info['stats'].items() if k.startswith('alerts:')):,}; suppressed: "
               f"{info['suppressed']}")


# ---- simulate -----------------------------------------------------------------------------------------
@main.command()
@click.option("--agents", default=200, show_default=True)
@click.option("--days", default=45, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .parquet, or .jsonl / .jsonl.gz (ECS JSON lines).")
@click.option("--ground-truth", type=click.Path(dir_okay=False), help="Also write the injected attacks (JSON lines).")
def simulate(agents: int, days: int, seed: int, out: str, ground_truth: str | None) -> None:
    """Write a simulated organisation's network events (and optionally its ground truth)."""
    from .simulate import Organisation

    if agents < 1 or days < 1:
        raise click.BadParameter("agents and days must be positive")
    for path, what in ((out, "--out"), (ground_truth, "--ground-truth")):
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if folder and not os.path.isdir(folder):
            raise CliError(f"{what} {path}: folder {folder} does not exist")
    if not out.endswith((".parquet", ".jsonl", ".json", ".jsonl.gz", ".ndjson")):
        raise CliError(f"{out}: use a .parquet or .jsonl(.gz) file name")
    org = Organisation(agents=agents, days=days, seed=seed)
    try:
        with _progress(int(org.expected_events()), "simulate") as bar:
            if out.endswith(".parquet"):
                n = org.write_parquet(out, progress=bar.update)
            else:
                n = org.write_ecs_jsonl(out, progress=bar.update)
        if ground_truth:
            with open(ground_truth, "w", encoding="utf-8") as f:
                for row in org.ground_truth.to_pylist():
                    f.write(json.dumps(row, default=str) + "\n")
    except OSError as e:
        for path in (out, ground_truth):             # no partial output left behind
            if path and os.path.isfile(path):
                os.unlink(path)
        raise CliError(f"cannot write {e.filename or out}: {e.strerror or e}") from None
    click.echo(f"raresketch: wrote {n:,} events to {out}", err=True)


main.add_command(catalog)   # raresketch catalog refresh|sources|resolve
main.add_command(share)     # raresketch share keygen|export|merge|lookup


if __name__ == "__main__":  # pragma: no cover
    main()
