"""``lossevo``: print any named loss or genome file as an equation, and check it.

lossevo list                     the named losses
lossevo show neuroloss1          equation, LaTeX, key, source and integrity verdict
lossevo show my_loss.json        the same for a genome file (JSON or YAML)
lossevo show taylorglo --param params=[0,0,-1,0,0,0,0,0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from lossevo.errors import LossevoError


def _options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise LossevoError(f"--param takes key=value, got {pair!r}")
        options[key] = yaml.safe_load(value)
    return options


def _show(target: str, params: list[str]) -> str:
    from lossevo.cli import describe_loss
    from lossevo.integrity import IntegrityChecker
    from lossevo.losses import available_losses, get_loss, load_loss_file

    path = Path(target)
    if target in available_losses():
        name, loss = target, get_loss(target, **_options(params))
    elif path.suffix in (".json", ".yaml", ".yml") or path.exists():
        name, loss = path.stem, load_loss_file(path)
    else:
        get_loss(target)  # raises the registry's error, with suggestions
        raise AssertionError("unreachable")
    text = describe_loss(name, loss)
    genome = getattr(loss, "genome", None)
    if genome is not None:
        result = IntegrityChecker().check(genome)
        verdict = "passes" if result.ok else f"fails ({result.reason})"
        decided = "" if not result.ok else f"; sign decided on the unflipped curve: {result.sign:+d}"
        text += f"integrity check: {verdict}{decided}\n"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lossevo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the named losses")
    show = commands.add_parser("show", help="a named loss or a genome file as an equation")
    show.add_argument("target", help="a loss name (see `lossevo list`) or a genome file")
    show.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="an option of a named loss"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            from lossevo.losses import available_losses, get_loss

            for name in available_losses():
                try:
                    equation = get_loss(name).equation
                except LossevoError:
                    equation = "(needs options, see `lossevo show`)"
                print(f"{name:14s} {equation}")
        else:
            print(_show(args.target, args.param), end="")
    except LossevoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
