"""``vbdt directory select``: which agencies a recipient selector names."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from vbdt.cli.options import load_directory

__all__ = ["COMMANDS", "directory_group"]


@click.group("directory")
def directory_group() -> None:
    """Query an agency directory."""


@directory_group.command("select")
@click.argument("selectors", nargs=-1, required=True)
@click.option("--directory", "directory_path", metavar="FILE", help="Directory file (default: the example one).")
@click.option("--national", is_flag=True, help="Use the national 2025 directory (34 provinces, 3,321 communes).")
@click.option("--json", "as_json", is_flag=True)
def directory_select(selectors: Sequence[str], directory_path: str | None, national: bool, as_json: bool) -> None:
    """List the agencies SELECTORS name, e.g. 000.00.00.H54/**:commune or **:province."""
    from vbdt.directory.national import national_directory

    directory = national_directory() if national else load_directory(directory_path)
    agencies = directory.select(*selectors)
    if as_json:
        click.echo(json.dumps([a.model_dump(mode="json", exclude_defaults=True) for a in agencies], ensure_ascii=False, indent=1))
        return
    for agency in agencies:
        click.echo(f"{agency.organ_id}\t{agency.level}\t{agency.name}")
    click.echo(f"{len(agencies)} agencies", err=True)


COMMANDS: list[click.Command] = [directory_group]
