"""engine.contract.runstore: the run folder as a queue (events, commands, atomic files, run names)."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest

from engine.contract.protocol import Paused, RunWarning, Step, UnknownEvent
from engine.contract.runstore import (
    Command,
    CommandReader,
    EventReader,
    EventWriter,
    JsonLinesTail,
    RunPaths,
    append_command,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    check_run_name,
    create_run_dir,
    read_events,
    write_engine_info,
)


def _step(i: int) -> Step:
    return Step(epoch=1, step=i, epoch_step=i, steps_per_epoch=100, loss=1.0 / i, lr=0.01, images_per_sec=50.0)


def _emit_steps(path, n: int, start: int = 1) -> list[int]:
    with EventWriter(path) as writer:
        return [writer.emit(_step(i)).seq for i in range(start, start + n)]


# ---------------------------------------------------------------- EventWriter


def test_writer_assigns_increasing_seq_from_one(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as writer:
        assert writer.seq == 0
        seqs = [writer.emit(_step(i)).seq for i in range(1, 6)]
        assert writer.seq == 5
    assert seqs == [1, 2, 3, 4, 5]
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # ends with a newline
    assert [json.loads(line)["seq"] for line in lines[:-1]] == [1, 2, 3, 4, 5]


def test_writer_sets_time_on_emit(tmp_path):
    with EventWriter(tmp_path / "events.jsonl") as writer:
        event = writer.emit(_step(1))
    assert event.time > 1_600_000_000  # a wall-clock timestamp, not the 0.0 default


def test_writer_reopened_on_existing_log_continues_numbering(tmp_path):
    path = tmp_path / "events.jsonl"
    assert _emit_steps(path, 3) == [1, 2, 3]
    with EventWriter(path) as writer:
        assert writer.seq == 3
        assert writer.emit(_step(4)).seq == 4
    assert _emit_steps(path, 2, start=5) == [5, 6]
    assert [e.seq for e in read_events(path)] == [1, 2, 3, 4, 5, 6]


def test_writer_continues_numbering_after_a_last_line_longer_than_the_tail_window(tmp_path):
    path = tmp_path / "events.jsonl"
    _emit_steps(path, 2)
    with EventWriter(path) as writer:
        writer.emit(RunWarning(message="x" * 200_000))  # one line far longer than the 64 KiB first read
    with EventWriter(path) as writer:
        assert writer.emit(_step(9)).seq == 4
    assert [e.seq for e in read_events(path)] == [1, 2, 3, 4]


def test_writer_after_half_written_last_line_keeps_its_own_events_whole(tmp_path):
    path = tmp_path / "events.jsonl"
    _emit_steps(path, 8)
    with open(path, "ab") as fh:  # the engine was killed in the middle of a write
        fh.write(b'{"v":1,"seq":9,')
    with EventWriter(path) as writer:
        assert writer.seq == 8  # the broken line does not count
        first = writer.emit(Paused(epoch=1, step=8))
        second = writer.emit(_step(9))
    assert (first.seq, second.seq) == (9, 10)

    lines = path.read_bytes().split(b"\n")
    assert lines[8] == b'{"v":1,"seq":9,'  # line 9 stays broken, but is ended
    assert json.loads(lines[9])["kind"] == "paused"  # line 10: our event, whole
    assert json.loads(lines[10])["seq"] == 10
    assert lines[11:] == [b""]

    reader = EventReader(path)
    events = reader.poll()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert isinstance(events[8], Paused)
    assert len(reader.problems) == 1
    assert f"{path}:9:" in reader.problems[0]


def test_writer_on_a_log_that_ends_in_a_newline_adds_no_blank_line(tmp_path):
    path = tmp_path / "events.jsonl"
    _emit_steps(path, 2)
    size = path.stat().st_size
    EventWriter(path).close()
    assert path.stat().st_size == size


def test_writer_creates_the_log_with_readable_permissions(tmp_path):
    path = tmp_path / "events.jsonl"
    _emit_steps(path, 1)
    assert stat.S_IMODE(path.stat().st_mode) & 0o444 == 0o444 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------- EventReader


def test_reader_poll_returns_only_new_lines_across_calls(tmp_path):
    path = tmp_path / "events.jsonl"
    reader = EventReader(path)
    assert reader.poll() == []  # no file yet
    with EventWriter(path) as writer:
        writer.emit(_step(1))
        writer.emit(_step(2))
        assert [e.seq for e in reader.poll()] == [1, 2]
        assert reader.poll() == []
        writer.emit(_step(3))
        assert [e.seq for e in reader.poll()] == [3]
        assert reader.poll() == []
    assert reader.problems == []


def test_reader_holds_back_a_partial_last_line_until_its_newline(tmp_path):
    path = tmp_path / "events.jsonl"
    _emit_steps(path, 1)
    line = json.dumps({"v": 1, "seq": 2, "time": 0.0, "kind": "paused", "epoch": 1, "step": 5}).encode()
    reader = EventReader(path)
    with open(path, "ab") as fh:
        fh.write(line[:10])
    assert [e.seq for e in reader.poll()] == [1]
    with open(path, "ab") as fh:
        fh.write(line[10:25])
    assert reader.poll() == []
    with open(path, "ab") as fh:
        fh.write(line[25:])
    assert reader.poll() == []  # complete JSON but no newline yet: still held back
    with open(path, "ab") as fh:
        fh.write(b"\n")
    events = reader.poll()
    assert len(events) == 1
    assert isinstance(events[0], Paused)
    assert (events[0].seq, events[0].step) == (2, 5)
    assert reader.problems == []


def test_reader_from_seq_filters_earlier_events(tmp_path):
    path = tmp_path / "events.jsonl"
    _emit_steps(path, 6)
    assert [e.seq for e in EventReader(path, from_seq=4).poll()] == [4, 5, 6]
    assert [e.seq for e in read_events(path, from_seq=6)] == [6]
    assert read_events(path, from_seq=7) == []
    assert [e.seq for e in read_events(path, from_seq=0)] == [1, 2, 3, 4, 5, 6]


def test_read_events_on_missing_file_returns_empty_list(tmp_path):
    assert read_events(tmp_path / "nope" / "events.jsonl") == []


def test_read_events_returns_typed_events_in_order(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as writer:
        writer.emit(_step(1))
        writer.emit(Paused(epoch=1, step=1))
    events = read_events(path)
    assert [type(e) for e in events] == [Step, Paused]
    assert events[0].loss == 1.0


def test_reader_skips_bad_lines_and_reports_each_with_its_line_number(tmp_path):
    path = tmp_path / "events.jsonl"
    good = [json.dumps({"v": 1, "seq": i, "kind": "paused", "epoch": 1, "step": i}) for i in (1, 2, 3)]
    path.write_text(f"{good[0]}\nnot json\n\n[1, 2]\n{good[1]}\n{{broken\n{good[2]}\n")
    reader = EventReader(path)
    assert [e.seq for e in reader.poll()] == [1, 2, 3]
    assert len(reader.problems) == 3  # the blank line 3 is not a problem
    assert [re.search(r":(\d+): ", p).group(1) for p in reader.problems] == ["2", "4", "6"]
    assert all(str(path) in p for p in reader.problems)


def test_reader_keeps_unknown_kinds(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"v":2,"seq":1,"kind":"future_thing","x":1}\n')
    (event,) = read_events(path)
    assert isinstance(event, UnknownEvent)
    assert event.kind_name == "future_thing"
    assert event.extra == {"x": 1}


def test_reader_survives_a_line_whose_seq_is_null(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"v":1,"seq":null,"kind":"paused","epoch":1,"step":1}\n{"v":1,"seq":2,"kind":"paused","epoch":1,"step":2}\n')
    reader = EventReader(path)
    events = reader.poll()  # must not raise: one odd line may not take a viewer down
    assert events[-1].seq == 2


def test_tail_counts_blank_lines_in_line_numbers(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"a\n\nb\npartial")
    tail = JsonLinesTail(path)
    assert tail.read_lines() == [(1, b"a"), (3, b"b")]
    with open(path, "ab") as fh:
        fh.write(b"-done\n")
    assert tail.read_lines() == [(4, b"partial-done")]
    assert tail.read_lines() == []


# ---------------------------------------------------------------- commands


@pytest.fixture
def run(tmp_path) -> RunPaths:
    return create_run_dir(tmp_path / "runs", "r")


def test_command_reader_skips_commands_written_before_it_was_created(run):
    append_command(run, "pause")
    append_command(run, "stop")
    reader = CommandReader(run.commands)
    assert reader.poll() == ([], [])
    new_id = append_command(run, "checkpoint_now")
    commands, problems = reader.poll()
    assert problems == []
    assert [(c.name, c.id, c.args, c.line_no) for c in commands] == [("checkpoint_now", new_id, {}, 3)]
    assert reader.poll() == ([], [])


def test_command_reader_without_skip_existing_returns_old_commands(run):
    first = append_command(run, "pause")
    second = append_command(run, "resume")
    commands, problems = CommandReader(run.commands, skip_existing=False).poll()
    assert problems == []
    assert [(c.name, c.id) for c in commands] == [("pause", first), ("resume", second)]
    assert all(isinstance(c, Command) for c in commands)


def test_command_reader_on_missing_file_then_created(run):
    assert not run.commands.exists()
    reader = CommandReader(run.commands)
    assert reader.poll() == ([], [])
    command_id = append_command(run, "pause")
    commands, problems = reader.poll()
    assert [(c.name, c.id, c.line_no) for c in commands] == [("pause", command_id, 1)]
    assert problems == []


def test_command_reader_reports_and_skips_corrupt_lines(run):
    reader = CommandReader(run.commands)
    append_command(run, "pause")
    with open(run.commands, "a") as fh:
        fh.write("{not json\n")
        fh.write('{"id": "x", "args": {}}\n')  # no name
        fh.write('{"id": "y", "name": "pause", "args": [1]}\n')  # args not an object
        fh.write("[]\n")
    append_command(run, "resume")
    commands, problems = reader.poll()
    assert [c.name for c in commands] == ["pause", "resume"]
    assert [c.line_no for c in commands] == [1, 6]
    assert len(problems) == 4
    assert [re.search(r":(\d+): ", p).group(1) for p in problems] == ["2", "3", "4", "5"]
    assert all(str(run.commands) in p for p in problems)


def test_command_reader_holds_back_a_half_written_command(run):
    reader = CommandReader(run.commands)
    with open(run.commands, "a") as fh:
        fh.write('{"id": "abc", "name": "st')
    assert reader.poll() == ([], [])
    with open(run.commands, "a") as fh:
        fh.write('op", "args": {}}\n')
    commands, problems = reader.poll()
    assert [(c.id, c.name) for c in commands] == [("abc", "stop")]
    assert problems == []


def test_append_command_writes_one_json_line_with_id_name_and_args(run):
    command_id = append_command(run, "pause")
    assert re.fullmatch(r"[0-9a-f]{12}", command_id)
    (line,) = run.commands.read_text().splitlines()
    data = json.loads(line)
    assert data["id"] == command_id
    assert data["name"] == "pause"
    assert data["args"] == {}
    assert isinstance(data["time"], float)


def test_append_command_ids_are_unique(run):
    ids = {append_command(run, "pause") for _ in range(50)}
    assert len(ids) == 50


def test_append_command_rejects_unknown_command_name(run):
    with pytest.raises(ValueError, match="unknown command 'explode'"):
        append_command(run, "explode")
    assert not run.commands.exists()


# ---------------------------------------------------------------- run folders


def test_create_run_dir_makes_unique_names(tmp_path):
    root = tmp_path / "runs"
    first = create_run_dir(root, "exp")
    second = create_run_dir(root, "exp")
    third = create_run_dir(root, "exp")
    assert [p.root.name for p in (first, second, third)] == ["exp", "exp-2", "exp-3"]
    assert all(p.root.is_dir() and p.root.parent == root for p in (first, second, third))


def test_create_run_dir_without_a_name_uses_a_timestamp(tmp_path):
    root = tmp_path / "runs"
    first = create_run_dir(root, None)
    second = create_run_dir(root, None, default_stem="resnet10t")
    assert re.fullmatch(r"\d{8}-\d{6}-run", first.root.name)
    assert re.fullmatch(r"\d{8}-\d{6}-resnet10t", second.root.name)
    assert first.root.is_dir() and second.root.is_dir()


def test_create_run_dir_without_a_name_twice_gives_two_folders(tmp_path):
    root = tmp_path / "runs"
    names = {create_run_dir(root, None).root.name for _ in range(3)}
    assert len(names) == 3
    assert len(list(root.iterdir())) == 3


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "run\n"])
def test_create_run_dir_rejects_bad_names(tmp_path, name):
    root = tmp_path / "runs"
    with pytest.raises(ValueError):
        create_run_dir(root, name)
    assert not (tmp_path / "x").exists()
    assert not root.exists() or list(root.iterdir()) == []


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", " ", "a b", "-", "x" * 129, "a\\b", "run\n"])
def test_check_run_name_rejects(name):
    with pytest.raises(ValueError, match="not usable as a folder name"):
        check_run_name(name)


@pytest.mark.parametrize("name", ["exp", "resnet10t_lr1e-3", "A.b+c-d_e", "1", "x" * 128])
def test_check_run_name_accepts(name):
    assert check_run_name(name) == name


def test_run_paths_layout(tmp_path):
    paths = RunPaths(tmp_path)
    assert paths.events == tmp_path / "events.jsonl"
    assert paths.commands == tmp_path / "commands.jsonl"
    assert paths.config == tmp_path / "config.toml"
    assert paths.log == tmp_path / "engine.log"
    assert paths.engine == tmp_path / "engine.json"
    assert paths.checkpoints == tmp_path / "checkpoints"
    assert paths.predictions == tmp_path / "predictions"
    assert paths.submissions == tmp_path / "submissions"


def test_write_engine_info(run):
    write_engine_info(run, rank=0, command="train")
    info = json.loads(run.engine.read_text())
    assert info["pid"] == os.getpid()
    assert info["rank"] == 0
    assert info["command"] == "train"
    assert isinstance(info["host"], str) and info["host"]
    assert info["started"] > 1_600_000_000


# ---------------------------------------------------------------- atomic files


def test_atomic_write_bytes_text_json_leave_no_temp_file(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "b.txt", "héllo\n")
    atomic_write_json(tmp_path / "c.json", {"x": [1, 2], "y": None})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.json"]
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "héllo\n".encode()
    assert json.loads((tmp_path / "c.json").read_text()) == {"x": [1, 2], "y": None}


def test_atomic_write_replaces_existing_file(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_creates_parent_folders(tmp_path):
    path = tmp_path / "a" / "b" / "f.json"
    atomic_write_json(path, [1])
    assert json.loads(path.read_text()) == [1]
    assert os.listdir(path.parent) == ["f.json"]


def test_atomic_file_is_readable_by_others(tmp_path):
    path = tmp_path / "f.bin"
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)  # like safetensors: a private file
        os.write(fd, b"x")
        os.close(fd)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_atomic_path_writer_raising_keeps_old_file_and_removes_temp(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old contents")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(path) as tmp:
        assert tmp.parent == path.parent
        assert tmp != path
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_atomic_path_keyboard_interrupt_keeps_old_file_and_removes_temp(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_path(path) as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_path_writer_raising_before_writing_anything(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(ValueError), atomic_path(path):
        raise ValueError("nothing written")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_json_with_nan_raises_and_keeps_old_file(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"auc": 0.5})
    with pytest.raises(ValueError):
        atomic_write_json(path, {"auc": float("nan")})
    assert json.loads(path.read_text()) == {"auc": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
