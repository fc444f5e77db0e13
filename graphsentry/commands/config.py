"""``graphsentry config``: check a configuration, print its schema or an example, regenerate the
reference.

- ``check [FILE]``: validate FILE (default ``$GRAPHSENTRY_CONFIG``, else the defaults) with the
  environment's overrides, build its exceptions (``alerts.exceptions``, ``suppress``) as detection
  does, and print the effective configuration with secrets masked; every
  problem is reported at once and the exit status is 2.
- ``schema``: the JSON Schema of the file (for editors: yaml-language-server, VS Code).
- ``example``: every setting with its default and documentation, as a YAML file.
- ``docs [--check]``: rewrite docs/configuration.md's reference, config/graphsentry.example.yaml
  and config/graphsentry.schema.json from the models (``--check``: change nothing, exit 1 when
  one is stale).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graphsentry.errors import GraphsentryError

HELP = "check a configuration file (effective settings, secrets masked), print schema or example"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a configuration and print the effective "
                           "settings with secrets masked")
    check.add_argument("file", nargs="?", metavar="FILE",
                       help="YAML configuration (default: $GRAPHSENTRY_CONFIG or the defaults)")
    check.add_argument("--no-env", action="store_true",
                       help="ignore environment overrides (KAFKA_BOOTSTRAP, GRAPHSENTRY_*__*)")
    check.add_argument("--quiet", "-q", action="store_true",
                       help="only validate: print nothing when the configuration is valid")
    sub.add_parser("schema", help="print the JSON Schema of the configuration file")
    sub.add_parser("example", help="print every setting with its default, as YAML")
    docs = sub.add_parser("docs", help="regenerate docs/configuration.md, the example file and "
                          "the schema from the models")
    docs.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 when a generated file is stale")
    docs.add_argument("--root", default=".", metavar="DIR",
                      help="repository root holding docs/ and config/ (default: .)")


def _check(args: argparse.Namespace) -> int:
    import os

    from graphsentry.config import ConfigError, load_config
    from graphsentry.config_docs import effective_yaml
    from graphsentry.config_loading import dotted, env_overrides
    from graphsentry.engine_config import configured_exceptions

    env = {} if args.no_env else dict(os.environ)
    cfg = load_config(args.file, env=env)
    try:  # the exceptions as detection builds them: the same checks, the same wording
        configured_exceptions(cfg)
    except GraphsentryError as exc:
        raise ConfigError(cfg.source, [str(exc)]) from None
    if args.quiet:
        return 0
    from graphsentry.config import Config

    _, origins, _ = env_overrides(Config, env)
    out = sys.stdout
    out.write(f"# effective configuration: {cfg.source}, secrets masked\n")
    for path, variable in sorted(origins.items()):
        out.write(f"# {dotted(path)} from {variable}\n")
    out.write(effective_yaml(cfg))
    return 0


def _docs(args: argparse.Namespace) -> int:
    from graphsentry import config_docs

    root = Path(args.root)
    schema = config_docs.json_schema()
    doc = root / config_docs.DOC_PATH
    try:
        current = {doc: doc.read_text(encoding="utf-8")}
        for name in (config_docs.EXAMPLE_PATH, config_docs.SCHEMA_PATH):
            path = root / name
            current[path] = path.read_text(encoding="utf-8") if path.exists() else ""
    except OSError as exc:
        raise GraphsentryError(f"cannot read {exc.filename}: {exc.strerror} "
                               f"(run from the repository root or pass --root)") from None
    try:
        wanted = {doc: config_docs.update_doc(current[doc], schema),
                  root / config_docs.EXAMPLE_PATH: config_docs.example_yaml(schema),
                  root / config_docs.SCHEMA_PATH: config_docs.schema_json()}
    except ValueError as exc:
        raise GraphsentryError(f"{doc}: {exc}") from None
    stale = [path for path, text in wanted.items() if current[path] != text]
    for path in stale:
        if args.check:
            print(f"stale: {path}", file=sys.stderr)
        else:
            path.write_text(wanted[path], encoding="utf-8")
            print(f"wrote {path}", file=sys.stderr)
    if not stale:
        print("configuration reference, example and schema are up to date", file=sys.stderr)
    return 1 if stale and args.check else 0


def run(args: argparse.Namespace) -> int:
    if args.action == "check":
        return _check(args)
    if args.action == "docs":
        return _docs(args)
    from graphsentry import config_docs

    if args.action == "schema":
        sys.stdout.write(config_docs.schema_json())
    else:
        sys.stdout.write(config_docs.example_yaml())
    return 0
