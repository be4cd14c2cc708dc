"""`python starter.py config status|list|show|adopt|rollback`: which health config is in force.

Adoption is explicit and recorded: `config adopt FILE` validates the file (a full config,
or a partial one merged over the shipped defaults), stores it under its version and makes
it the config in force, with who adopted it and when; running account workflows pick it
up at their next scan and every snapshot keeps its version. `config rollback` restores
what was in force before the last change. `config adopt --environment` returns to
VIM_HEALTH_CONFIG / the shipped defaults.

Wiring (starter.py): ``add_config_parser(subparsers)``; it sets ``run``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from cli.score import CommandError, connect_db, load_config
from domain.config import DEFAULT_CONFIG


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def add_config_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "config",
        help="which health config is in force; adopt a calibrated one, or roll back",
        description="Show, adopt and roll back health configs (recorded in Postgres).",
    )
    sub = p.add_subparsers(dest="config_command", required=True)
    sub.add_parser("status", help="the config in force and where it comes from")
    ls = sub.add_parser("list", help="adoptions, newest first")
    ls.add_argument("--limit", type=int, default=20)
    show = sub.add_parser("show", help="print a stored config (default: the one in force)")
    show.add_argument("version", nargs="?", default=None)
    adopt = sub.add_parser("adopt", help="make a config the one in force")
    what = adopt.add_mutually_exclusive_group(required=True)
    what.add_argument("file", nargs="?", type=Path, default=None, metavar="FILE")
    what.add_argument("--version", dest="stored_version", default=None, metavar="VERSION")
    what.add_argument(
        "--environment", action="store_true", help="back to VIM_HEALTH_CONFIG / shipped defaults"
    )
    adopt.add_argument("--by", default=None, metavar="NAME", help="who adopts it (default: $USER)")
    adopt.add_argument("--note", default=None, metavar="TEXT")
    rb = sub.add_parser("rollback", help="restore the config in force before the last change")
    rb.add_argument("--by", default=None, metavar="NAME")
    p.set_defaults(run=run_config_command)
    return p


async def run_config_command(args: argparse.Namespace) -> int:
    from activities import config_store as store

    by = getattr(args, "by", None) or _default_user()
    try:
        async with connect_db() as conn:
            resolver = store.ConfigResolver(os.environ)
            cmd = args.config_command
            if cmd == "adopt":
                if args.file is not None:
                    config = load_config(args.file)
                    if config.version == DEFAULT_CONFIG.version and config != DEFAULT_CONFIG:
                        raise CommandError(
                            f"{args.file} changes the shipped config but keeps its version "
                            f"{config.version!r}: give it a version of its own",
                            2,
                        )
                    await store.store_and_adopt(conn, config, by, str(args.file), args.note)
                elif args.stored_version is not None:
                    await store.adopt_stored(conn, args.stored_version, by)
                else:
                    await store.adopt_environment(conn, by, args.note)
            elif cmd == "rollback":
                await store.rollback(conn, by)
            elif cmd == "list":
                for a in await store.adoptions(conn, args.limit):
                    print(
                        f"{a.adopted_at:%Y-%m-%d %H:%M} UTC  {a.action:<8}  "
                        f"{a.version or store.ENVIRONMENT:<40}  by {a.adopted_by}"
                        + (f"  ({a.note})" if a.note else "")
                    )
                return 0
            elif cmd == "show":
                if args.version is None:
                    config = (await resolver.in_force(conn)).config
                else:
                    text = await conn.fetchval(
                        "SELECT config::text FROM health_config_versions WHERE version = $1",
                        args.version,
                    )
                    if text is None:
                        raise CommandError(f"no stored config has version {args.version!r}", 2)
                    print(json.dumps(json.loads(text), indent=2))
                    return 0
                print(json.dumps(config.model_dump(mode="json"), indent=2))
                return 0
            in_force = await resolver.in_force(conn)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except store.ConfigStoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cal = in_force.config.calibration
    print(f"config in force: {in_force.config.version} ({in_force.source})")
    if cal is not None:
        print(
            f"  calibrated from {cal.based_on_version}: fit {cal.fit_from}..{cal.fit_to}, "
            f"validated {cal.validate_from}..{cal.validate_to}"
        )
    if args.config_command != "status":
        print("running account workflows use it from their next scan")
    return 0
