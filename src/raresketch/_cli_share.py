"""``raresketch share keygen|export|merge|lookup``: prevalence sharing between organisations from the command
line (docs/SHARING.md), and the ``--global`` options of ``raresketch run`` (registered on
:func:`raresketch.cli.main`)."""
from __future__ import annotations

import functools
import json
import os
import time

import click

from ._cli_errors import CliError

__all__ = ["share", "global_options", "global_changes", "check_global"]


def _check_out(out: str, force: bool) -> None:
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise CliError(f"--out {out}: folder {folder} does not exist")
    if os.path.lexists(out) and not force:
        raise CliError(f"--out {out} exists: give --force to replace it")


def _key(path: str, what: str = "consortium key file") -> bytes:
    from .share import read_key

    try:
        return read_key(path, what)
    except OSError as e:
        raise CliError(f"{what} {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise CliError(str(e)) from None


@click.group()
def share() -> None:
    """Globally rare: exchange privacy-preserving summaries of common destinations between organisations."""


@share.command("keygen")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The new key file (never replaced).")
def share_keygen(out: str) -> None:
    """Write a new random 32-byte key (a consortium key, or an organisation's own --org-key)."""
    from .share import new_key_file

    _check_out(out, False)
    try:
        new_key_file(out)
    except (OSError, ValueError) as e:
        raise CliError(f"cannot write {out}: {getattr(e, 'strerror', None) or e}") from None
    click.echo(f"raresketch: wrote a new key to {out} (keep it secret; share a consortium key only with members)",
               err=True)


@share.command("export")
@click.option("--state", required=True, type=click.Path(exists=True, dir_okay=False), help="The organisation's state.")
@click.option("--key-file", required=True, type=click.Path(exists=True, dir_okay=False), help="The consortium key.")
@click.option("--org-key", required=True, type=click.Path(exists=True, dir_okay=False),
              help="This organisation's own secret key (share keygen): its noise and id; never shared.")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace an existing --out.")
@click.option("--bits", default=1 << 20, show_default=True, help="Filter size (a power of two).")
@click.option("--flip", default=0.1, show_default=True, help="Randomised-response probability f (0 < f < 1).")
@click.option("--sample", default=1.0, show_default=True, help="Keep each common destination with this probability.")
@click.option("--min-share", default=0.05, show_default=True, help="Common: used by at least this share of active agents ...")
@click.option("--min-agents", default=3, show_default=True, help="... and by at least this many agents.")
def share_export(state, key_file, org_key, out, force, bits, flip, sample, min_share, min_agents) -> None:
    """Export the destinations common in this organisation as a keyed, randomised filter (no names)."""
    from .detect import Engine
    from .share import epsilon, export_prevalence

    _check_out(out, force)
    key, okey = _key(key_file), _key(org_key, "organisation key file")
    if key == okey:
        raise CliError("--org-key is the consortium key: the organisation's key must be its own secret")
    try:
        engine = Engine.load(state)
    except (OSError, ValueError) as e:
        raise CliError(f"cannot load state {state}: {getattr(e, 'strerror', None) or e}") from None
    t0 = time.perf_counter()
    try:
        exp, st = export_prevalence(engine, key, okey, bits=bits, flip=flip, sample=sample, min_share=min_share,
                                    min_agents=min_agents)
        exp.save(out)
    except OSError as e:
        raise CliError(f"cannot write {out}: {e.strerror or e}") from None
    except ValueError as e:
        raise CliError(str(e)) from None
    click.echo(f"raresketch: exported {st['inserted']:,} of {st['common']:,} common destinations "
               f"({st['resources']:,} in the window, {st['active_agents']:,} active agents; {st['unnamed']:,} "
               f"without a name skipped, {st['sampled_out']:,} sampled out) to {out} in "
               f"{time.perf_counter() - t0:.2f} s; epsilon {epsilon(flip):.2f} per destination", err=True)


@share.command("merge")
@click.argument("exports", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace an existing --out.")
def share_merge(exports, out, force) -> None:
    """Merge organisations' exports into a consortium file: one vote per organisation."""
    from .share import PrevalenceExport, merge_exports

    _check_out(out, force)
    if os.path.abspath(out) in {os.path.abspath(e) for e in exports}:
        raise CliError(f"--out {out} is one of the exports")
    loaded = []
    for p in exports:
        try:
            loaded.append(PrevalenceExport.load(p))
        except (OSError, ValueError) as e:
            raise CliError(f"{p}: {getattr(e, 'strerror', None) or e}") from None
    try:
        cons = merge_exports(loaded, list(exports))
        cons.save(out)
    except OSError as e:
        raise CliError(f"cannot write {out}: {e.strerror or e}") from None
    except ValueError as e:
        raise CliError(str(e)) from None
    click.echo(f"raresketch: merged {cons.n_orgs} organisations into {out}", err=True)
    for w in cons.warnings:
        click.echo(f"  warning: {w}", err=True)


@share.command("lookup")
@click.argument("names", nargs=-1, required=True)
@click.option("--consortium", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--key-file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--own", type=click.Path(exists=True, dir_okay=False), help="This organisation's export (excluded).")
def share_lookup(names, consortium, key_file, own) -> None:
    """How many organisations hold each cloud resource NAME (e.g. aws/s3/my-bucket) as common: JSON lines."""
    from .share import Consortium, PrevalenceExport

    try:
        cons = Consortium.load(consortium)
        mine = PrevalenceExport.load(own) if own else None
        r = cons.lookup(_key(key_file), list(names), exclude=mine)
    except (OSError, ValueError) as e:
        raise CliError(str(getattr(e, "strerror", None) or e)) from None
    for i, n in enumerate(names):
        click.echo(json.dumps({"resource": n, "estimate": round(float(r["estimate"][i]), 2),
                               "interval": [round(float(r["low"][i]), 2), round(float(r["high"][i]), 2)],
                               "votes": int(r["votes"][i]), "contributing_orgs": int(r["orgs"][i]),
                               "own_vote_excluded": bool(r["excluded"])}))


# ---- raresketch run --global ----------------------------------------------------------------------------
def global_options(f):
    """The ``--global``, ``--global-key``, ``--global-own`` and ``--no-global`` options of ``raresketch run``,
    passed on as ``share_opts``."""
    opts = [
        click.option("--global", "global_file", type=click.Path(exists=True, dir_okay=False),
                     help="Consortium file (share merge): global prevalence in every alert's evidence, and its "
                     "policy (docs/SHARING.md)."),
        click.option("--global-key", type=click.Path(exists=True, dir_okay=False), help="The consortium key file."),
        click.option("--global-own", type=click.Path(exists=True, dir_okay=False),
                     help="This organisation's own export: its vote is taken out."),
        click.option("--no-global", is_flag=True, help="Stop using a consortium file a saved state names."),
    ]

    @functools.wraps(f)
    def wrapper(*args, global_file, global_key, global_own, no_global, **kw):
        return f(*args, share_opts=(global_file, global_key, global_own, no_global), **kw)
    for o in reversed(opts):
        wrapper = o(wrapper)
    return wrapper


def global_changes(share_opts) -> dict:
    """The configuration keys the ``--global`` options set."""
    if share_opts is None:
        return {}
    global_file, global_key, global_own, no_global = share_opts
    if no_global:
        if global_file:
            raise CliError("--global and --no-global exclude each other")
        return {"global_prevalence": None, "global_key_file": None, "global_own_export": None}
    out = {k: v for k, v in (("global_prevalence", global_file), ("global_key_file", global_key),
                             ("global_own_export", global_own)) if v}
    return {k: os.path.abspath(v) for k, v in out.items()}


def check_global(engine):
    """``engine`` once its consortium file (if any) loaded: a wrong one ends the run before anything is read."""
    try:
        engine.global_prevalence()
    except (OSError, ValueError) as e:
        raise CliError(str(e)) from None
    return engine
