"""Fault injection: hostile text and broken files reach the engine, its console and the CLI, and never kill them.

Names, messages and commands come from files anyone can write. Each test here plants one
(Rich markup such as ``boom[/]`` and ``[link=...]``, terminal escapes such as a title change
or a screen clear, a megabyte message, wrong field types, an event log that is a folder) and
checks that the engine finishes its run, the CLI answers with an exit status and a message,
and nothing from the data reaches the terminal as markup or as a raw escape sequence.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from rich.console import Console

from engine.cli import main
from engine.console import ConsoleView
from engine.contract.protocol import (
    CheckpointSaved,
    EpochEnded,
    Event,
    Paused,
    Resumed,
    RunError,
    RunFinished,
    RunStarted,
    RunWarning,
    Step,
    UnknownEvent,
    Validated,
    decode_event,
    encode_event,
)
from engine.contract.runstate import RunFollower, load_run
from engine.contract.runstore import EventReader, EventWriter, RunPaths
from engine.sink import EventSink

HOSTILE = ["boom[/]", "[link=http://evil.example]click[/link]", "\x1b]0;TITLE\x07", "\x1b[2J", "[bold red]x", "a\\"]
ESCAPES = ["\x1b]0;TITLE\x07", "\x1b[2J"]


def hostile_events(text: str) -> list[Event]:
    """A whole run whose every free-text field carries ``text``."""
    return [
        RunStarted(run_id=text, config={"train": {"best_metric": "auc"}}, model=text, device=text, epochs=2,
                   steps_per_epoch=4, num_train=8, num_val=4, host=text),
        Step(epoch=0, step=4, epoch_step=4, steps_per_epoch=4, loss=0.5, lr=1e-3, images_per_sec=10.0),
        RunWarning(message=text, code=text),
        RunError(message=text, traceback=text),
        EpochEnded(epoch=0, train_loss=0.5, duration_s=1.0, images_per_sec=10.0),
        Validated(epoch=1, metrics={"auc": 0.5, "ap": text}, num_images=4, best_metric=text, is_best=True),
        CheckpointSaved(epoch=1, step=4, path=text, reason=text),
        Paused(epoch=1, step=4),
        Resumed(epoch=1, step=4, reason=text, checkpoint=text),
        RunFinished(status=text, epochs_completed=1, best_metric=text, best_value=0.5, best_epoch=1, message=text),
    ]


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100, color_system=None, force_terminal=False), out


def assert_no_raw_escapes(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output, repr(output[:300])


# ---------------------------------------------------------------- the console


@pytest.mark.parametrize("text", HOSTILE)
def test_console_shows_event_text_as_plain_text(text: str) -> None:
    console, out = plain_console()
    view = ConsoleView(console)
    for event in hostile_events(text):
        view(event)
    view.close()
    output = out.getvalue()
    assert_no_raw_escapes(output)
    if "\x1b" in text:
        assert text.replace("\x1b", "\\x1b").replace("\x07", "\\x07") in output  # shown visibly escaped
    else:
        assert text in output  # shown as written, not parsed as markup


def test_console_on_a_colour_terminal_plants_no_link_title_or_clear() -> None:
    out = io.StringIO()
    view = ConsoleView(Console(file=out, width=100, force_terminal=True, color_system="truecolor"))
    for text in HOSTILE:
        for event in hostile_events(text):
            view(event)
    view.close()
    output = out.getvalue()
    assert "\x1b]" not in output  # no OSC: neither a hyperlink (OSC 8) nor a title (OSC 0)
    assert "\x1b[2J" not in output and "\x07" not in output


def test_a_megabyte_message_is_cut_for_display() -> None:
    console, out = plain_console()
    view = ConsoleView(console)
    view(RunError(message="x" * 1_000_000 + "\x1b[2J"))
    output = out.getvalue()
    assert 1000 < len(output) < 10_000 and "more characters" in output
    assert_no_raw_escapes(output)


# ---------------------------------------------------------------- the sink


def test_a_failing_listener_never_stops_the_sink(tmp_path: Path, caplog) -> None:
    seen = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug [/]")

    sink = EventSink(EventWriter(tmp_path / "events.jsonl"), [broken, seen.append])
    with caplog.at_level(logging.WARNING, logger="engine.sink"):
        for i in range(3):
            sink.emit(RunWarning(message=f"w{i}"))
    sink.close()
    assert [e.message for e in seen] == ["w0", "w1", "w2"]  # the next listener still hears every event
    assert len(EventReader(tmp_path / "events.jsonl").poll()) == 3  # and every event is written
    failures = [r for r in caplog.records if "listener" in r.getMessage()]
    assert len(failures) == 1  # said once, not once per event


# ---------------------------------------------------------------- decoding


def test_wrong_field_types_are_left_out_and_the_event_kept() -> None:
    event = decode_event(json.dumps({"kind": "run_started", "seq": 3, "run_id": "r", "config": {}, "model": "m",
                                     "device": "cpu", "epochs": 2, "steps_per_epoch": 4, "num_train": 8, "num_val": 4,
                                     "world_size": None, "host": ["not", "text"]}))
    assert isinstance(event, RunStarted) and event.seq == 3 and event.epochs == 2
    assert event.world_size == 1 and event.host == ""  # the defaults, not the bad values
    assert len(event.problems) == 2 and any("world_size" in p for p in event.problems)
    assert event.extra == {"world_size": None, "host": ["not", "text"]}  # kept, for whoever wants to look


def test_a_required_field_of_the_wrong_type_keeps_the_line_as_unknown() -> None:
    event = decode_event(json.dumps({"kind": "step", "epoch": 0, "step": "4", "epoch_step": 4, "steps_per_epoch": 4,
                                     "loss": 0.5, "lr": 1e-3, "images_per_sec": 10.0}))
    assert isinstance(event, UnknownEvent) and event.kind_name == "step"
    assert any("'step'" in p for p in event.problems)


def test_ints_are_fine_floats_and_bools_are_not_ints() -> None:
    event = decode_event(json.dumps({"kind": "epoch_ended", "epoch": True, "train_loss": 1, "duration_s": 2,
                                     "images_per_sec": 3}))
    assert isinstance(event, UnknownEvent)  # epoch true is not an epoch
    event = decode_event(json.dumps({"kind": "epoch_ended", "epoch": 1, "train_loss": 1, "duration_s": 2,
                                     "images_per_sec": 3}))
    assert isinstance(event, EpochEnded) and not event.problems


# ---------------------------------------------------------------- the CLI on hostile run folders


def write_run(runs: Path, name: str, lines: list[str]) -> RunPaths:
    paths = RunPaths(runs / name)
    paths.root.mkdir(parents=True)
    paths.config.write_text("")
    paths.events.write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return paths


def encoded(events: list[Event]) -> list[str]:
    for seq, event in enumerate(events, 1):
        event.seq, event.time = seq, 1_700_000_000.0 + seq
    return [encode_event(e) for e in events]


@pytest.mark.parametrize("text", HOSTILE)
def test_watch_shows_a_hostile_run_and_exits(text: str, tmp_path: Path, capsys) -> None:
    events = hostile_events(text)
    events[-1].status = "completed"
    write_run(tmp_path, "r", encoded(events))
    assert main(["watch", "r", "--runs", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert_no_raw_escapes(captured.out + captured.err)


def test_watch_survives_wrong_field_types(tmp_path: Path, capsys) -> None:
    started = json.loads(encoded(hostile_events("r"))[0])
    started["world_size"] = None
    started["epochs"] = "many"
    finished = {"v": 1, "seq": 2, "time": 1.0, "kind": "run_finished", "status": "completed", "epochs_completed": 2,
                "duration_s": None, "bad_images": "x", "best_value": "high"}
    step = {"v": 1, "seq": 3, "time": 1.0, "kind": "step", "epoch": 0, "step": 1, "epoch_step": 1,
            "steps_per_epoch": 4, "loss": None, "lr": 1e-3, "images_per_sec": 1.0}
    write_run(tmp_path, "r", [json.dumps(started), json.dumps(step), json.dumps(finished)])
    assert main(["watch", "r", "--runs", str(tmp_path)]) == 0
    assert load_run(tmp_path / "r").status == "finished"


def test_watch_cuts_a_megabyte_message(tmp_path: Path, capsys) -> None:
    events = hostile_events("r")
    events[3].message = "y" * 1_000_000
    events[-1].status = "completed"
    write_run(tmp_path, "r", encoded(events))
    assert main(["watch", "r", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "more characters" in out and len(out) < 50_000


def test_runs_lists_hostile_names_as_text(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # room for whole names (rich reads the width from it)
    names = ["[red]x", "bad[link=http:evil]x", "t\x1b]0;TITLE\x07", "c\x1b[2J"]  # a folder name holds no "/"
    for name in names:
        write_run(tmp_path, name, encoded(hostile_events(name)))
    assert main(["runs", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert_no_raw_escapes(out)
    assert "[red]x" in out and "bad[link=http:evil]x" in out and "t\\x1b]0;TITLE\\x07" in out


def test_an_event_log_that_is_a_folder_is_a_problem_not_a_crash(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    paths = write_run(tmp_path, "r", [])
    paths.events.unlink()
    paths.events.mkdir()
    reader = EventReader(paths.events)
    assert reader.poll() == [] and reader.poll() == []
    assert len(reader.problems) == 1 and str(paths.events) in reader.problems[0]  # said once, not per poll
    state = load_run(paths.root)
    assert state.warnings and "events.jsonl" in state.warnings[0]
    follower = RunFollower(paths.root)
    assert follower.poll() == [] and "events.jsonl" in (follower.problem or "")
    assert main(["runs", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "events.jsonl" in out  # listed with its problem


# ---------------------------------------------------------------- a real run


@pytest.mark.slow
def test_engine_finishes_a_run_despite_hostile_commands_and_image_names(tiny_copy: Path, tmp_path: Path) -> None:
    from conftest import FAST_TRAIN  # noqa: F401  (the same tiny settings as the other training tests)

    from engine.contract.config import load_config, resolve, save_config
    from engine.contract.runstore import create_run_dir, read_events
    from engine.train import Trainer

    bad_name = "boom[/]x[link=https:evil]y.jpg"  # a folder "boom[" holding "]x[link=https:evil]y.jpg"
    (tiny_copy / "trainset" / bad_name).parent.mkdir()
    (tiny_copy / "trainset" / bad_name).write_text("not an image")
    with open(tiny_copy / "trainset_label.txt", "a") as fh:
        fh.write(f"{bad_name},1\n")
    overrides = {"data.root": str(tiny_copy), "data.img_size": 64, "data.workers": 0, "train.batch_size": 16,
                 "train.epochs": 2, "run.runs": str(tmp_path), "optim.lr": 0.002}
    config = resolve(load_config(overrides=overrides))
    paths = create_run_dir(tmp_path, "hostile")
    save_config(paths, config)
    injected = []

    def inject(event: Event) -> None:  # what a stranger appends to commands.jsonl while the run trains
        if isinstance(event, Step) and not injected:
            injected.append(True)
            with open(paths.commands, "a") as fh:
                for name in ("boom[/]", "\x1b]0;TITLE\x07", "[link=http://evil.example]x"):
                    fh.write(json.dumps({"id": f"c{len(name)}", "name": name}) + "\n")

    console, out = plain_console()
    view = ConsoleView(console)
    sink = EventSink(EventWriter(paths.events), [view, inject])
    try:
        finished = Trainer(paths, config, sink).run()
    finally:
        view.close()
        sink.close()
    assert finished.status == "completed" and finished.epochs_completed == 2
    events = read_events(paths.events)
    answers = [e for e in events if isinstance(e, RunError) and "unknown command" in e.message]
    assert len(answers) == 3
    assert any(isinstance(e, RunWarning) and "boom[/]" in e.message for e in events)  # the unreadable image, skipped
    assert isinstance(events[-1], RunFinished) and events[-1].status == "completed"
    output = out.getvalue()
    assert_no_raw_escapes(output)
    assert "boom[/]" in output and "\\x1b]0;TITLE\\x07" in output
