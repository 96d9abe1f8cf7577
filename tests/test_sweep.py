"""Sweep files: expansion, names, checks before anything is queued."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_ffdi

from engine.cli import main
from engine.contract.errors import ConfigError
from engine.contract.queue import next_to_start
from engine.contract.sweep import expand_sweep


def sweep_file(tmp_path: Path, body: str, data: str = "") -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text((f'[data]\nroot = "{data}"\n' if data else "") + body)
    return path


def test_a_grid_makes_every_combination_with_readable_names(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, '[train]\nepochs = 2\n[sweep]\n"optim.lr" = [0.001, 0.003]\n'
                                '"model.name" = ["resnet18", "efficientnet_b0"]\n')
    runs = expand_sweep(path)
    assert [run.name for run in runs] == ["lr0.001-resnet18", "lr0.001-efficientnet_b0", "lr0.003-resnet18",
                                          "lr0.003-efficientnet_b0"]
    assert runs[2].config.optim.lr == 0.003 and runs[2].config.model.name == "resnet18"
    assert all(run.config.train.epochs == 2 for run in runs)


def test_unquoted_dotted_keys_and_a_name_prefix(tmp_path: Path) -> None:
    runs = expand_sweep(sweep_file(tmp_path, '[sweep]\nname = "night"\noptim.weight_decay = [0.0, 0.05]\n'))
    assert [run.name for run in runs] == ["night-wd0", "night-wd0.05"]


def test_random_mode_draws_count_distinct_combinations(tmp_path: Path) -> None:
    body = '[sweep]\nmode = "random"\ncount = 3\nseed = 1\n"optim.lr" = [0.001, 0.002, 0.003]\n"train.seed" = [1, 2]\n'
    runs = expand_sweep(sweep_file(tmp_path, body))
    assert len(runs) == 3 and len({run.name for run in runs}) == 3
    assert [run.name for run in runs] == [run.name for run in expand_sweep(sweep_file(tmp_path, body))]
    with pytest.raises(ConfigError, match="count = N, from 1 to 6"):
        expand_sweep(sweep_file(tmp_path, body.replace("count = 3", "count = 7")))


def test_a_parse_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sweep.toml:3: not valid TOML"):
        expand_sweep(sweep_file(tmp_path, '[sweep]\n"optim.lr" = [0.001, 0.003]\n"model.name" = [resnet18]\n'))


def test_an_unknown_setting_lists_close_matches_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sweep.toml:3: .*'optim.lt'.*optim.lr") as caught:
        expand_sweep(sweep_file(tmp_path, '[sweep]\n"train.epochs" = [1]\n"optim.lt" = [0.1]\n'))
    assert "did you mean" in str(caught.value)


def test_a_scalar_instead_of_a_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sweep.toml:2: .*optim.lr must be a list"):
        expand_sweep(sweep_file(tmp_path, '[sweep]\n"optim.lr" = 0.1\n'))


def test_one_bad_combination_names_its_setting_and_nothing_is_queued(tmp_path: Path, capsys) -> None:
    data = write_ffdi(tmp_path / "data", {"train": 4, "val": 2}, size=32)
    runs = tmp_path / "runs"
    path = sweep_file(tmp_path, '[model]\nname = "test_resnet"\n[sweep]\n"optim.lr" = [0.001, 50.0]\n', str(data))
    assert main(["sweep", str(path), "--runs", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "lr50" in err and "optim.lr" in err and "Nothing was queued" in err
    assert not runs.exists() or not any(runs.iterdir())


def test_a_sweep_queues_one_run_per_combination(tmp_path: Path, capsys) -> None:
    data = write_ffdi(tmp_path / "data", {"train": 4, "val": 2}, size=32)
    runs = tmp_path / "runs"
    path = sweep_file(tmp_path, '[model]\nname = "test_resnet"\n[sweep]\n"optim.lr" = [0.001, 0.003]\n'
                                '"train.seed" = [1, 2]\n', str(data))
    assert main(["sweep", str(path), "--runs", str(runs), "--dry-run"]) == 0
    assert not runs.exists()
    assert main(["sweep", str(path), "--runs", str(runs)]) == 0
    assert next_to_start(runs) == ["lr0.001-seed1", "lr0.001-seed2", "lr0.003-seed1", "lr0.003-seed2"]
    unknown = sweep_file(tmp_path, '[sweep]\n"model.name" = ["resnet18", "resnet_typo"]\n', str(data))
    assert main(["sweep", str(unknown), "--runs", str(tmp_path / "other")]) == 2
    assert "resnet_typo" in capsys.readouterr().err and not (tmp_path / "other").exists()
