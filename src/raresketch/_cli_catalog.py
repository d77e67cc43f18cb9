"""``raresketch catalog refresh|sources|resolve``: the destination and process catalogues from the command line
(registered on :func:`raresketch.cli.main`)."""
from __future__ import annotations

import click

from ._cli_errors import CliError

# ---- catalog ------------------------------------------------------------------------------------------
@click.group()
def catalog() -> None:
    """The destination and process catalogues: refresh the published networks, show sources, resolve a name."""


@catalog.command("refresh")
@click.argument("dest", required=False, type=click.Path(file_okay=False))
def catalog_refresh(dest: str | None) -> None:
    """Download the providers' published networks into DEST (default ~/.cache/raresketch/ip_ranges)."""
    from .catalog import refresh

    try:
        where = refresh(dest)
    except (RuntimeError, ValueError, OSError) as e:
        raise CliError(str(e).splitlines()[0]) from None
    click.echo(f"wrote {where}; use it with RARESKETCH_IP_RANGES={where}")


@catalog.command("sources")
def catalog_sources() -> None:
    """Each list in use with its source, date and licence."""
    from .catalog import default_catalog

    for name, text in default_catalog().sources().items():
        click.echo(f"{name}: {text}")


@catalog.command("resolve")
@click.argument("name")
@click.option("--ip", "addr", help="The event's destination address (destination.ip).")
def catalog_resolve(name: str, addr: str | None) -> None:
    """What destination NAME (destination.domain; an address works too) resolves to, and why."""
    from .catalog import default_catalog
    from .events import normalize_ip

    if addr is not None and normalize_ip(addr) is None:
        raise CliError(f"--ip {addr!r} is not an IP address")
    info = default_catalog().explain(name, addr)
    for key in ("destination", "cloud_resource", "cloud_provider", "cloud_service", "ip_provider", "ip_class", "ptr",
                "im_service"):
        click.echo(f"{key.replace('_', ' '):15s} {info[key] if info[key] is not None else '-'}")
    click.echo(f"{'allow-listed':15s} {'yes' if info['allowlisted'] else 'no'}")
    for line in info["why"]:
        click.echo(f"{'why':15s} {line}")
