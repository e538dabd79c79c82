"""``vbdt broker provision``: the vhost, the topology and one broker user per agency.

Credentials are secrets: every file is written mode 600 from its first byte. ``-o FILE`` holds
every agency's URL and is merged into (an agency provisioned earlier keeps its entry);
``--split DIR`` writes one ``<OrganId>.json`` per agency, so that each commune is given only its
own password. ``--rotate ID`` gives one agency a new password (and enables a disabled one);
``--disable ID`` locks one out (its connections are closed, its inbox and mail stay).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from vbdt.cli.files import SMALL_FILE_BYTES, input_path, output_dir, output_file, read_input, write_output
from vbdt.cli.options import check_organ_id, load_directory
from vbdt.cli.progress import progress, tracked
from vbdt.errors import UsageError

__all__ = ["COMMANDS", "broker_group", "merge_credentials"]


@click.group("broker")
def broker_group() -> None:
    """RabbitMQ administration for vbdt."""


def _read_credentials(path: Path) -> dict[str, str]:
    """An existing credentials file (OrganId → URL), refused rather than overwritten when it is not one."""
    if not path.exists():
        return {}
    try:
        data = json.loads(read_input(input_path(path, what="credentials file"), limit=SMALL_FILE_BYTES))
    except ValueError as exc:
        raise UsageError(f"{path}: not a credentials file of vbdt broker provision ({exc}); not overwritten") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise UsageError(f"{path}: not a credentials file of vbdt broker provision (OrganId → URL); not overwritten")
    return data


def merge_credentials(path: Path, urls: Mapping[str, str], removed: Sequence[str] = ()) -> dict[str, str]:
    """Write ``path`` (mode 600) with what it held, updated with ``urls`` and without ``removed``."""
    merged = {k: v for k, v in _read_credentials(path).items() if k not in removed}
    merged.update(urls)
    write_output(path, (json.dumps(dict(sorted(merged.items())), indent=1) + "\n").encode(), mode=0o600)
    return merged


@broker_group.command("provision")
@click.option("--directory", "directory_path", metavar="FILE", help="Agency directory (default: the example one).")
@click.option("--select", "selectors", multiple=True, metavar="SELECTOR", help="Only these agencies (default: all).")
@click.option("--vhost", default="vbdt", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Host the agencies connect to.")
@click.option("--port", default=5672, show_default=True, type=click.IntRange(1, 65535))
@click.option("--admin", default="guest", show_default=True, help="Existing broker user given full rights on the vhost.")
@click.option("--management-url", default=None, help="Use the management API (http://user:pass@host:15672) instead of rabbitmqctl.")
@click.option("-o", "--output", "output", default=None, metavar="FILE",
              help="Credentials file of every agency (JSON OrganId → URL, mode 600), merged into when it exists.")
@click.option("--split", "split_dir", default=None, metavar="DIR",
              help="Also write DIR/<OrganId>.json for each agency (mode 600): give each agency only its own.")
@click.option("--rotate", "rotate", multiple=True, metavar="ORGANID",
              help="Give this agency a new password (repeatable; enables a disabled one). It must reconnect.")
@click.option("--rotate-all", is_flag=True, help="Give every agency provisioned a new password.")
@click.option("--disable", "disable", multiple=True, metavar="ORGANID",
              help="Lock this agency's user out (repeatable): connections closed, password gone, inbox kept.")
def broker_provision(directory_path: str | None, selectors: Sequence[str], vhost: str, host: str, port: int, admin: str,
                     management_url: str | None, output: str | None, split_dir: str | None, rotate: Sequence[str],
                     rotate_all: bool, disable: Sequence[str]) -> None:
    """Create the vhost, topology and one broker user per agency (<vhost>/<OrganId>, own inbox only).

    An existing user keeps its password (and its entry in -o FILE). With only --disable, nothing
    else is provisioned."""
    from vbdt.exchange.broker import disable as disable_users
    from vbdt.exchange.broker import provision
    from vbdt.exchange.rabbitadmin import RabbitAdmin

    if output is None and split_dir is None and not (disable and not (selectors or rotate or rotate_all)):
        raise UsageError("say where the credentials go: -o FILE and/or --split DIR")
    rotating = [check_organ_id(o, "--rotate") for o in rotate]
    disabling = [check_organ_id(o, "--disable") for o in disable]
    if both := sorted(set(rotating) & set(disabling)):
        raise UsageError(f"--rotate and --disable both name {', '.join(both)}")
    # Checked before the broker is changed.
    target = output_file(output) if output else None
    folder = output_dir(split_dir) if split_dir else None
    if target is not None:
        _read_credentials(target)
    directory = load_directory(directory_path)
    for organ_id in (*rotating, *disabling):
        directory.get(organ_id)  # UnknownAgency: exit 1, nothing changed
    admin_api = RabbitAdmin(management_url)
    urls: dict[str, str] = {}
    if selectors or rotating or rotate_all or not disabling:
        agencies = directory.select(*selectors) if selectors else list(directory)
        ids = [str(a.organ_id) for a in agencies if str(a.organ_id) not in disabling]
        ids += [o for o in rotating if o not in ids]
        # one call to the broker however many agencies (vbdt.exchange.rabbitadmin): the bar moves once
        with progress(f"provisioning on {vhost}", total=len(ids)) as advance:
            done = provision(ids, vhost=vhost, host=host, port=port, admin=admin, management_url=management_url,
                             rotate=True if rotate_all else rotating)
            advance(len(ids))
        urls = done.urls
        click.echo(f"provisioned {len(done.urls) + len(done.existing)} agencies on vhost {vhost}; "
                   f"new credentials for {len(done.urls)}")
        kept = [o for o in done.existing if o not in done.disabled]
        if kept:
            click.echo(f"{len(kept)} agencies already had a broker user and keep their password "
                       f"(--rotate ID to change it): {', '.join(kept[:5])}{' …' if len(kept) > 5 else ''}", err=True)
        if done.disabled:
            click.echo(f"{len(done.disabled)} agencies are disabled and stay so (--rotate ID to enable): "
                       f"{', '.join(done.disabled[:5])}{' …' if len(done.disabled) > 5 else ''}", err=True)
    if disabling:
        disable_users(disabling, vhost=vhost, admin=admin_api)
        click.echo(f"disabled {len(disabling)} agencies on vhost {vhost}: {', '.join(disabling)}")
    if target is not None:
        merged = merge_credentials(target, urls, disabling)
        click.echo(f"{target}: {len(merged)} agencies ({len(urls)} new or changed, {len(disabling)} removed)")
    if folder is not None:
        with progress("writing credentials files", total=len(urls)) as advance:
            for organ_id, url in tracked(urls.items(), advance):
                write_output(folder / f"{organ_id}.json", (json.dumps({organ_id: url}, indent=1) + "\n").encode(), mode=0o600)
        for organ_id in disabling:
            (folder / f"{organ_id}.json").unlink(missing_ok=True)
        click.echo(f"{folder}: one credentials file per agency for {len(urls)} agencies")


COMMANDS: list[click.Command] = [broker_group]
