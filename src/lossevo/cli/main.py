"""``lossevo``: run searches and trainings, look at losses, analyse results.

lossevo evolve [key=value ...]   search (as python evolve.py; also lossevo-evolve); likewise
lossevo train|validate|correlate|eliminate|report [key=value ...]   with Hydra's own flags
lossevo list                     the named losses
lossevo show neuroloss1          equation, LaTeX, key, source and integrity verdict
lossevo show my_loss.json        the same for a genome file (JSON or YAML)
lossevo show taylorglo --param params=[0,0,-1,0,0,0,0,0]
lossevo export outputs/evolve/... --best 1 -o my_loss.py   a found loss as one file needing only torch
                                 (also a loss name or a genome/loss YAML)
lossevo stats outputs/train       mean ± std per loss × setting, best marked, Welch p vs cross_entropy
lossevo ttest runs/a runs/b       Welch's t-test between two result sets
lossevo collate outputs/train -o all.csv
lossevo dashboard outputs/evolve/...   a W&B workspace for a search, a study or a multirun root
                                 (online: saved, URL printed; offline: written to <folder>/dashboard.json)
lossevo compare outputs/multirun-evolve/...   replicated searches compared (comparison.md/.csv, plots, W&B)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from lossevo.errors import LossevoError

# Subcommands run by Hydra (lossevo.cli.apps), each with its config of the same name.
HYDRA_COMMANDS = ("evolve", "train", "validate", "correlate", "eliminate", "report")


def _options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise LossevoError(f"--param takes key=value, got {pair!r}")
        options[key] = yaml.safe_load(value)
    return options


def _show(target: str, params: list[str]) -> str:
    from lossevo.analysis.loss_report import describe_loss
    from lossevo.genome.integrity import IntegrityChecker
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


def _results_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lossevo.analysis import statistics as st

    if args.command == "collate":
        rows = st.read_results(args.paths)
        st.write_results(Path(args.output), rows)
        print(f"{len(rows)} runs from {len({r['source'] for r in rows})} files -> {args.output}")
        return 0
    if args.command == "ttest":
        a = st.values(st.read_results([args.a]), args.metric)
        b = st.values(st.read_results([args.b]), args.metric)
        t = st.two_sample(a, b)
        print(f"A: {args.a}: mean {t.mean_a:.4f} over {t.n_a} runs")
        print(f"B: {args.b}: mean {t.mean_b:.4f} over {t.n_b} runs")
        print(f"Welch t = {t.t:.4f}; p (two-sided) = {t.p_two_sided:.4g}; p (A > B) = {t.p_a_greater:.4g}")
        return 0
    rows = st.read_results(args.paths)
    losses, settings, cells = st.summary(rows, args.metric, args.reference)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    st.summary_csv(out / "stats.csv", losses, settings, cells)
    table = st.markdown_table(losses, settings, cells)
    caption = (
        f"{args.metric} in %, mean ± std over seeds; best per setting in bold; p: one-sided Welch "
        f"t-test against {args.reference} (H1: higher)."
    )
    (out / "stats.md").write_text(table + "\n" + caption + "\n")
    (out / "stats.tex").write_text(st.latex_table(losses, settings, cells))
    print(table)
    print(caption)
    print(f"written: {out / 'stats.csv'}, {out / 'stats.md'}, {out / 'stats.tex'}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from rich.progress import track

    from lossevo.analysis.comparison import compare_searches, find_searches
    from lossevo.analysis.comparison_report import sentences, write_comparison
    from lossevo.analysis.comparison_tracking import track_comparison
    from lossevo.analysis.search_record import read_search
    from lossevo.tracking.tracker import saved_logger

    folders = [Path(f) for f in args.folders]
    runs = find_searches(folders)
    records = [read_search(run) for run in track(runs, description="reading journals", transient=True)]
    comparison = compare_searches(records)
    root = (
        folders[0]
        if len(folders) == 1 and not (folders[0] / "journal.sqlite").is_file()
        else Path("comparison")
    )
    files = write_comparison(comparison, Path(args.output) if args.output else root)
    logger = None if args.no_wandb else saved_logger(runs[0])
    mode = track_comparison(comparison, files, logger)
    for line in [*sentences(comparison), *comparison.notes]:
        print(line)
    print(f"written: {', '.join(str(p) for p in files.values())}")
    if mode is not None:
        print(f"W&B run of the comparison ({mode}): lossevo dashboard {files['markdown'].parent}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in and args_in[0] in HYDRA_COMMANDS:
        from lossevo.cli.apps import ENTRIES

        # Hydra reads sys.argv itself: hand it the arguments after the command.
        sys.argv = [f"lossevo {args_in[0]}", *args_in[1:]]
        ENTRIES[args_in[0]]()
        return 0
    parser = argparse.ArgumentParser(
        prog="lossevo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in HYDRA_COMMANDS:
        commands.add_parser(name, help=f"Hydra app, config {name}.yaml (lossevo {name} --help)")
    commands.add_parser("list", help="the named losses")
    show = commands.add_parser("show", help="a named loss or a genome file as an equation")
    show.add_argument("target", help="a loss name (see `lossevo list`) or a genome file")
    show.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="an option of a named loss"
    )
    exporting = commands.add_parser("export", help="a loss as one Python file that needs only torch")
    exporting.add_argument("target", help="a run folder, a loss name (`lossevo list`) or a genome/loss file")
    exporting.add_argument("--best", type=int, default=1, metavar="K", help="which best_K of a run folder")
    exporting.add_argument("-o", "--output", help="the .py file to write (default: <loss name>.py)")
    exporting.add_argument("--name", help="the class name (default: from the loss name)")
    exporting.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="an option of a named loss"
    )
    stats = commands.add_parser(
        "stats", help="mean ± std per loss and setting, best marked, Welch p vs a reference (CSV/MD/LaTeX)"
    )
    stats.add_argument("paths", nargs="+", help="results.csv files of train.py, or folders holding them")
    stats.add_argument("--metric", default="test_acc", choices=["test_acc", "val_acc"])
    stats.add_argument("--reference", default="cross_entropy", help="the loss others are tested against")
    stats.add_argument("--out", default=".", help="folder for stats.csv, stats.md and stats.tex")
    ttest = commands.add_parser("ttest", help="Welch's t-test between two result sets")
    ttest.add_argument("a", help="results.csv (or a folder of them): set A")
    ttest.add_argument("b", help="results.csv (or a folder of them): set B")
    ttest.add_argument("--metric", default="test_acc", choices=["test_acc", "val_acc"])
    collate = commands.add_parser("collate", help="gather results.csv files into one CSV")
    collate.add_argument("paths", nargs="+", help="results.csv files or folders holding them")
    collate.add_argument("-o", "--output", default="collated.csv")
    dashboard = commands.add_parser(
        "dashboard", help="a W&B workspace for a search or study, a multirun root, or a W&B group"
    )
    dashboard.add_argument("target", help="a search or study folder, a multirun root, or a W&B group name")
    dashboard.add_argument("--project", help="W&B project (default: the run's logger.project)")
    dashboard.add_argument("--entity", help="W&B entity (default: the run's logger.entity, or yours)")
    dashboard.add_argument("--offline", action="store_true", help="write the definition only")
    dashboard.add_argument("-o", "--output", help="where the definition goes offline")
    comparing = commands.add_parser(
        "compare", help="replicated searches compared: success rate, leads, anytime curves, equal compute"
    )
    comparing.add_argument("folders", nargs="+", help="search run folders, or a multirun root holding them")
    comparing.add_argument(
        "-o",
        "--output",
        help="folder for comparison.md/.csv and the plots (default: the multirun root, or ./comparison)",
    )
    comparing.add_argument("--no-wandb", action="store_true", help="no W&B run of it")
    args = parser.parse_args(argv)
    try:
        if args.command == "compare":
            return _compare(args)
        if args.command == "dashboard":
            from lossevo.tracking.dashboard import publish, target_from

            target = target_from(args.target, args.project, args.entity)
            where = publish(target, Path(args.output) if args.output else None, args.offline)
            print(f"W&B workspace for group {target.group}: {where}")
            return 0
        if args.command in ("stats", "ttest", "collate"):
            return _results_command(args)
        if args.command == "export":
            from lossevo.export import export

            path = export(args.target, args.output, args.best, _options(args.param), args.name)
            print(f"wrote {path}: from {path.stem} import ...; needs only torch")
            return 0
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
