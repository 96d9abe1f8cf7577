"""`ffdv --help` and every visible command's help follow the conventions of engine/cli/help.py."""

from __future__ import annotations

import argparse
import re

import pytest

from engine.cli import build_parser

DOTTED_METAVAR = re.compile(r"\b[A-Z][A-Z_]*\.[A-Z_]+\b")  # DATA.ROOT: the dest of a config flag shown as is
HIDDEN = {"run", "supervise"}  # the engine's own processes (engine/contract/launch.py)


def visible_commands(parser: argparse.ArgumentParser, path: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command a user can see, nested ones (`queue run`) included, with its parser."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest for choice in action._choices_actions}
            for name, command in action.choices.items():
                if name in listed:
                    key = f"{path} {name}".strip()
                    found += [(key, command), *visible_commands(command, key)]
    return found


COMMANDS = visible_commands(build_parser()[0])


def test_the_internal_commands_are_hidden_not_listed_as_suppressed(capsys) -> None:
    parser, handlers = build_parser()
    text = parser.format_help()
    assert "==SUPPRESS==" not in text and "supervise" not in text
    assert not re.search(r"^\s+run\b", text, re.M)
    assert set(handlers) >= HIDDEN and not HIDDEN & {name for name, _ in COMMANDS}
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    assert "==SUPPRESS==" not in capsys.readouterr().out


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_commands_help_says_what_to_type_and_shows_an_example(name: str, command: argparse.ArgumentParser) -> None:
    text = command.format_help()
    assert "==SUPPRESS==" not in text, name
    assert not DOTTED_METAVAR.search(text), (name, DOTTED_METAVAR.findall(text))
    undocumented = [a.option_strings or [a.dest] for a in command._actions
                    if a.help is None and not isinstance(a, argparse._SubParsersAction)]
    assert not undocumented, (name, undocumented)
    assert command.epilog and "example" in command.epilog, f"{name}: no example in its epilog"


def test_choices_in_braces_and_defaults_are_shown() -> None:
    train = dict(COMMANDS)["train"].format_help()
    assert "--optimizer {adamw,adam,sgd}" in train and "--data DIR" in train and "--lr LR" in train
    assert "(default: resnet10t)" in train and "(default: 8)" in train  # the config's defaults, not None
    assert "(default: None)" not in train
    evaluate = dict(COMMANDS)["evaluate"].format_help()
    assert "--batch-size N" in evaluate and "(default: 64)" in evaluate
