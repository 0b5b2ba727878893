"""The configs a user composes: every option of every group composes with each main config that has
the group, every command a config's comments suggest composes, every ``group=option`` they name
exists, no two option files are the same, and the typed settings read every node they need from
the YAML alone (the YAML is the one source of defaults)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from lossevo.config.settings import (
    DriverSettings,
    FidelitySettings,
    ObjectiveSettings,
    SurrogateSettings,
    TrainerSettings,
    ValidateSettings,
    validated,
)
from tests.conftest import CONF

MAINS = ("evolve", "train", "validate", "correlate", "eliminate", "report")
REQUIRED = {"validate": ["run=outputs/x"]}  # a main config's ??? values
COMMAND = re.compile(r"python (evolve|train|validate|correlate|eliminate|report)\.py\s+(.*)$")
CHOICE = re.compile(r"(?<![\w.+/])([a-z_]+)=([A-Za-z0-9_]+)(?![\w.=/\[{,])")


def _groups() -> dict[str, list[str]]:
    return {
        d.name: sorted(f.stem for f in d.glob("*.yaml"))
        for d in sorted(CONF.iterdir())
        if d.is_dir() and d.name != "hydra" and any(d.glob("*.yaml"))
    }


def _compose(name: str, overrides: list[str]):
    """Compose as the entry script does, with Hydra's config (for the choices made)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(name, [*REQUIRED.get(name, []), *overrides], return_hydra_config=True)


def _choices(name: str) -> dict[str, str | None]:
    choices = _compose(name, []).hydra.runtime.choices
    return {g: c for g, c in choices.items() if not g.startswith("hydra")}


@pytest.mark.parametrize("main", MAINS)
def test_every_option_of_every_group_composes_with_the_main_configs_that_have_it(main: str) -> None:
    groups = _groups()
    mine = [g for g in _choices(main) if g in groups and g != "experiment"]
    assert mine or main == "validate", "found the main config's groups"
    for group in mine:
        for option in groups[group]:
            cfg = _compose(main, [f"{group}={option}"])
            assert cfg.hydra.runtime.choices[group] == option


def _suggested_commands() -> list[tuple[Path, str, list[str]]]:
    out = []
    for path in sorted(CONF.rglob("*.yaml")):
        for line in path.read_text().splitlines():
            comment = line.partition("#")[2]
            match = COMMAND.search(comment)
            text = match.group(2).replace("<folder>", "outputs/x") if match else ""
            if match and not re.search(r"\[[a-z]|\||\.\.\.|<", text):  # a synopsis is not a command
                args = [a for a in shlex.split(text) if not a.startswith("-")]
                # a multirun's first value stands for the sweep
                args = [re.sub(r"=([^,\[\]]+),[^\[\]]*$", r"=\1", a) for a in args]
                out.append((path, match.group(1), args))
    return out


def test_every_command_a_config_suggests_composes() -> None:
    commands = _suggested_commands()
    experiments = {p.stem for p, _, args in commands if p.parent.name == "experiment"}
    assert experiments == set(_groups()["experiment"]), "each experiment says how to run it"
    for path, main, args in commands:
        try:
            _compose(main, args)
        except Exception as err:  # pragma: no cover - the message is the point
            pytest.fail(f"{path.relative_to(CONF)} suggests `python {main}.py {' '.join(args)}`: {err}")


def test_every_option_a_config_comment_names_exists() -> None:
    groups = _groups()
    named = []
    for path in sorted(CONF.rglob("*.yaml")):
        for line in path.read_text().splitlines():
            for group, option in CHOICE.findall(line.partition("#")[2]):
                if group in groups:
                    named.append((path.relative_to(CONF), group, option))
    assert len(named) > 10, "found the options the comments name"
    missing = [n for n in named if n[2] not in _groups()[n[1]] and not re.fullmatch(r"best_\d+", n[2])]
    assert not missing, missing


def test_no_two_option_files_of_a_group_are_the_same_config() -> None:
    seen: dict[tuple[str, str], str] = {}
    for group, options in _groups().items():
        for option in options:
            body = OmegaConf.to_yaml(OmegaConf.load(CONF / group / f"{option}.yaml"), sort_keys=True)
            other = seen.setdefault((group, body), option)
            assert other == option, f"{group}/{other}.yaml and {group}/{option}.yaml are the same config"


SCHEMAS = {
    "surrogate": SurrogateSettings,
    "trainer": TrainerSettings,
    "driver": DriverSettings,
    "objective": ObjectiveSettings,
    "search.fidelity": FidelitySettings,
    "validate": ValidateSettings,
}


@pytest.mark.parametrize("main", ["evolve", "train", "correlate", "eliminate"])
def test_the_typed_settings_take_every_value_from_the_yaml(main: str) -> None:
    cfg = _compose(main, [])
    present = [key for key in SCHEMAS if OmegaConf.select(cfg, key) is not None]
    assert "surrogate" in present and "trainer" in present
    for key in present:
        node = OmegaConf.select(cfg, key)
        settings = validated(node, SCHEMAS[key], key)
        plain = OmegaConf.to_container(node, resolve=True)
        for name, value in plain.items():  # what the YAML says is what the code reads
            got = getattr(settings, name)
            got = (
                OmegaConf.to_container(OmegaConf.structured(got))
                if hasattr(got, "__dataclass_fields__")
                else got
            )
            assert got == value, f"{key}.{name}"


def test_no_schema_has_defaults_of_its_own() -> None:
    """The YAML holds every default: a value missing from it is an error naming the key, never a
    second default that could disagree with it."""
    from dataclasses import MISSING, fields

    from lossevo.config.settings import RuleSettings

    for schema in [*SCHEMAS.values(), RuleSettings]:
        defaults = [
            f.name for f in fields(schema) if f.default is not MISSING or f.default_factory is not MISSING
        ]
        assert not defaults, f"{schema.__name__} defaults {defaults}"


def test_a_multirun_job_folder_name_is_an_unquoted_override_value() -> None:
    """Hydra joins a job's overrides as ``key-value__key-value`` (conf/hydra/default.yaml); what
    Hydra's grammar would take apart becomes ``_``, so ``run=<job folder>`` works as it is."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from lossevo.config.compose import short_dirname

    given = ["dataset-digits__seed-0", "validate.steps-[900,3600]__loss.path-/a b/c.json", "x-" + "y" * 300]
    names = [short_dirname(g) for g in given]
    assert names[:2] == ["dataset-digits__seed-0", "validate.steps-_900_3600___loss.path-_a_b_c.json"]
    assert len(names[2]) == 100
    parser = OverridesParser.create()
    for name in names:
        assert (
            parser.parse_override(f"run=/outputs/multirun-evolve/{name}").value()
            == f"/outputs/multirun-evolve/{name}"
        )


@pytest.mark.parametrize(
    "choice",
    [f"search={s}" for s in _groups()["search"]] + [f"experiment={e}" for e in _groups()["experiment"]],
)
def test_every_strategy_and_experiment_preset_starts(choice: str) -> None:
    """What evolve.py does before its first training: the value checks, the typed settings and the
    strategy built from the config (#27.3: search=taylorglo once stopped at its own default)."""
    from lossevo.config.checks import check
    from lossevo.config.settings import SearchSettings
    from lossevo.search.driver import build_strategy

    cfg = _compose("evolve", [choice])
    check(cfg)
    SearchSettings.from_config(cfg)
    strategy = build_strategy(cfg)
    proposals = [strategy.ask() for _ in range(2)]
    assert all(p is not None and p.genome.structure_problem() is None for p in proposals), choice
