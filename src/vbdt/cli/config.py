"""The configuration file ``vbdt.toml``: one agency's settings, so that commands need no long options.

The path comes from ``vbdt --config FILE`` or ``VBDT_CONFIG``; it is read when a command needs it
(``send``, ``listen``, ``health``, ``status``), never by the others. Relative paths in it resolve
against the folder of the file, so a command works from any current directory. An option on the
command line (or its environment variable, such as ``VBDT_AMQP_URL``) wins over the file::

    as = "000.00.01.H14"
    credentials = "secrets/000.00.01.H14.json"   # or: amqp = "amqp://…"
    directory = "directory.json"
    trust = "keys/ca.pem"
    ledger = "state/000.00.01.H14.db"
    out = "inbox"                                 # optional: also write each received package there
    retention_days = 90                          # optional: drop acknowledged bodies after 90 days
    log_format = "json"

    [keys]                                       # or: keys = "keys" (the folder of `vbdt pki init`)
    dir = "keys"
    key = "keys/000.00.01.H14.key.pem"
    cert = "keys/000.00.01.H14.cert.pem"
    person_key = "keys/signer.key.pem"
    person_cert = "keys/signer.cert.pem"

The keys are documented in ``docs/cli.md``; ``examples/vbdt.toml`` is a complete example.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from vbdt.cli.files import SMALL_FILE_BYTES, input_path, read_input
from vbdt.cli.options import check_amqp_url, check_organ_id
from vbdt.errors import UsageError

__all__ = ["MAX_RETENTION_DAYS", "Config", "KeyFiles", "check_retention_days", "current_config", "load_config", "pick",
           "pick_path"]

_META = "vbdt.config"
_TOP = {"as": str, "amqp": str, "credentials": Path, "trust": Path, "directory": Path, "ledger": Path, "out": Path,
        "log_format": str, "admin_amqp": str, "keys": None, "retention_days": int}
_KEYS = ("dir", "key", "cert", "person_key", "person_cert", "seal_key", "seal_cert")
LOG_FORMATS = ("text", "json")
MAX_RETENTION_DAYS = 36500
"""The longest retention a setting may ask for (100 years): past it a date is out of range."""


def check_retention_days(value: object, what: str) -> int:
    """A number of days to keep acknowledged bodies: an integer from 0 (drop at the next pass) to
    :data:`MAX_RETENTION_DAYS`; UsageError naming ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETENTION_DAYS:
        shown = repr(value)[:40]
        raise UsageError(f"{what} must be a whole number of days from 0 to {MAX_RETENTION_DAYS}, not {shown}")
    return value


@dataclass(frozen=True)
class KeyFiles:
    """Where an agency's keys are: a folder as `vbdt pki init` writes it, and/or the files one by one."""

    dir: Path | None = None
    key: Path | None = None
    cert: Path | None = None
    person_key: Path | None = None
    person_cert: Path | None = None
    seal_key: Path | None = None
    seal_cert: Path | None = None


@dataclass(frozen=True)
class Config:
    """The settings of ``vbdt.toml``, paths already absolute (resolved against :attr:`path`'s folder)."""

    path: Path | None = None
    organ_id: str | None = None
    amqp: str | None = None
    credentials: Path | None = None
    trust: Path | None = None
    directory: Path | None = None
    ledger: Path | None = None
    out: Path | None = None
    log_format: str | None = None
    keys: KeyFiles = field(default_factory=KeyFiles)
    admin_amqp: str | None = None
    """An operator's broker URL, for what an agency user may not see (``vbdt status``: recipients' inboxes)."""
    retention_days: int | None = None
    """Drop the bodies of received items acknowledged this many days ago (``listen``, ``inbox prune``);
    None: keep them."""


def load_config(path: str | Path) -> Config:
    """Read and check a ``vbdt.toml``: unknown keys, wrong types and bad values are a UsageError naming the file."""
    where = input_path(path, what="configuration file")
    try:
        data = tomllib.loads(read_input(where, limit=SMALL_FILE_BYTES).decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not UTF-8 text; a vbdt.toml is TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: not valid TOML ({exc})") from None
    base = where.resolve().parent
    if unknown := sorted(set(data) - set(_TOP)):
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_TOP))}")
    values: dict[str, Any] = {}
    for key, kind in _TOP.items():
        if key == "keys" or key not in data:
            continue
        value = data[key]
        if kind is int:
            values[key] = check_retention_days(value, f"{where}: {key}")
            continue
        if not isinstance(value, str) or not value:
            raise UsageError(f"{where}: {key} must be a non-empty string")
        values[key] = base / Path(value).expanduser() if kind is Path else value
    organ_id = check_organ_id(values["as"], f"{where}: as") if "as" in values else None
    amqp = check_amqp_url(values["amqp"], f"{where}: amqp") if "amqp" in values else None
    admin_amqp = check_amqp_url(values["admin_amqp"], f"{where}: admin_amqp") if "admin_amqp" in values else None
    log_format = values.get("log_format")
    if log_format is not None and log_format not in LOG_FORMATS:
        raise UsageError(f"{where}: log_format must be one of {', '.join(LOG_FORMATS)}")
    return Config(where, organ_id, amqp, values.get("credentials"), values.get("trust"), values.get("directory"),
                  values.get("ledger"), values.get("out"), log_format, _key_files(where, base, data.get("keys")),
                  admin_amqp=admin_amqp, retention_days=values.get("retention_days"))


def _key_files(where: Path, base: Path, value: object) -> KeyFiles:
    if value is None:
        return KeyFiles()
    if isinstance(value, str) and value:
        return KeyFiles(dir=base / Path(value).expanduser())
    if not isinstance(value, dict):
        raise UsageError(f"{where}: keys must be a folder (a string) or a table [keys]")
    if unknown := sorted(set(value) - set(_KEYS)):
        raise UsageError(f"{where}: unknown key(s) in [keys]: {', '.join(unknown)}; known: {', '.join(_KEYS)}")
    paths: dict[str, Path] = {}
    for key, path in value.items():
        if not isinstance(path, str) or not path:
            raise UsageError(f"{where}: keys.{key} must be a non-empty string")
        paths[key] = base / Path(path).expanduser()
    for a, b in (("key", "cert"), ("person_key", "person_cert"), ("seal_key", "seal_cert")):
        if (a in paths) != (b in paths):
            raise UsageError(f"{where}: keys.{a} and keys.{b} go together")
    return KeyFiles(**paths)


def current_config() -> Config:
    """The configuration of this run (``vbdt --config`` or ``VBDT_CONFIG``), read once; empty without one."""
    context = click.get_current_context(silent=True)
    if context is None:
        return Config()
    root = context.find_root()
    cached = root.meta.get(_META)
    if isinstance(cached, Config):
        return cached
    path = root.params.get("config_path")
    config = load_config(path) if path else Config()
    root.meta[_META] = config
    return config


def pick(option: str | None, configured: str | None) -> str | None:
    """The command line's value when given, else the file's."""
    return option if option is not None else configured


def pick_path(option: str | None, configured: Path | None) -> str | None:
    """A path from the command line (relative to the current folder) when given, else the file's (absolute)."""
    return option if option is not None else (str(configured) if configured is not None else None)
