"""engine.contract.config: defaults, TOML files, overrides and the checks, with messages a user can act on."""

from __future__ import annotations

import dataclasses

import pytest

from engine.contract.config import (
    AMP_MODES,
    AUGMENT_PRESETS,
    BAD_IMAGE_POLICIES,
    BEST_METRICS,
    CROP_MODES,
    EVAL_REDUCES,
    LR_FINE_TUNE,
    LR_FROM_SCRATCH,
    OPTIMIZERS,
    SCHEDULES,
    STEMS,
    Config,
    apply_values,
    check_config,
    load_config,
    resolve,
    resolve_lr,
    to_toml,
)
from engine.contract.errors import ConfigError


def write(tmp_path, text: str, name: str = "cfg.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- loading


def test_defaults_load():
    config = load_config()
    assert config == Config()
    assert config.data.img_size == 128
    assert config.model.name == "resnet10t"
    assert config.optim.optimizer == "adamw"
    assert config.optim.lr == 0.0
    assert config.train.epochs == 8
    assert config.train.batch_size == 32
    assert config.train.best_metric == "auc"
    assert config.run.runs == "runs"


def test_toml_file_sets_values(tmp_path):
    path = write(tmp_path, """
[data]
root = "/data/ffdi"
img_size = 224
augment = "strong"

[model]
name = "efficientnet_b1"
drop_rate = 0.2

[optim]
optimizer = "sgd"
lr = 0.05

[train]
epochs = 3
compile = true
device = "cuda:1"
best_metric = "eer"

[run]
name = "my-run"
""")
    config = load_config(path)
    assert config.data.root == "/data/ffdi"
    assert config.data.img_size == 224
    assert config.data.augment == "strong"
    assert config.model.name == "efficientnet_b1"
    assert config.model.drop_rate == 0.2
    assert config.optim.optimizer == "sgd"
    assert config.optim.lr == 0.05
    assert config.train.epochs == 3
    assert config.train.compile is True
    assert config.train.device == "cuda:1"
    assert config.train.best_metric == "eer"
    assert config.run.name == "my-run"
    # untouched values keep their defaults
    assert config.optim.weight_decay == Config().optim.weight_decay
    assert config.train.batch_size == 32


def test_overrides_beat_the_file(tmp_path):
    path = write(tmp_path, "[train]\nepochs = 3\nbatch_size = 16\n[optim]\nlr = 0.05\n")
    config = load_config(path, overrides={"train.epochs": 10, "optim.lr": 0.001, "data.root": "/x"})
    assert config.train.epochs == 10
    assert config.optim.lr == 0.001
    assert config.data.root == "/x"
    assert config.train.batch_size == 16  # from the file, not overridden


def test_none_overrides_are_ignored(tmp_path):
    path = write(tmp_path, "[train]\nepochs = 3\n")
    config = load_config(path, overrides={"train.epochs": None, "optim.lr": None, "data.root": None})
    assert config.train.epochs == 3
    assert config.optim.lr == 0.0
    assert config.data.root == ""


def test_overrides_without_a_file():
    config = load_config(overrides={"train.batch_size": 8, "model.pretrained": "hub"})
    assert config.train.batch_size == 8
    assert config.model.pretrained == "hub"


def test_int_accepted_for_float(tmp_path):
    config = load_config(write(tmp_path, "[optim]\nweight_decay = 0\nlr = 1\n[data]\neval_crop = 1\n"))
    assert config.optim.weight_decay == 0.0 and isinstance(config.optim.weight_decay, float)
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.data.eval_crop == 1.0 and isinstance(config.data.eval_crop, float)


def test_whole_float_accepted_for_int():
    config = load_config(overrides={"train.epochs": 4.0})
    assert config.train.epochs == 4 and isinstance(config.train.epochs, int)


def test_utf8_bom_file_loads(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[train]\nepochs = 2\n")
    assert load_config(path).train.epochs == 2


@pytest.mark.parametrize(
    ("section", "key", "toml_value", "expected_words"),
    [
        ("data", "img_size", '"big"', "a whole number"),
        ("data", "img_size", "224.5", "a whole number"),
        ("train", "epochs", "true", "a whole number"),
        ("optim", "lr", '"fast"', "a number"),
        ("optim", "lr", "true", "a number"),
        ("model", "name", "3", "a string"),
        ("train", "compile", "1", "true or false"),
        ("train", "ema", '"yes"', "true or false"),
    ],
)
def test_wrong_type_rejected_naming_section_key_and_line(tmp_path, section, key, toml_value, expected_words):
    path = write(tmp_path, f"# comment\n[{section}]\n{key} = {toml_value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{section}.{key} must be {expected_words}" in message
    assert f"{path}:3:" in message


def test_wrong_type_in_override_names_section_key():
    with pytest.raises(ConfigError, match=r"train\.batch_size must be a whole number, got 'many'"):
        load_config(overrides={"train.batch_size": "many"})


def test_unknown_key_names_file_line_and_suggestion(tmp_path):
    path = write(tmp_path, """# my config
[data]
img_size = 224

[optim]
lr = 0.01
wieght_decay = 0.1
""")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:7: ")
    assert "unknown setting 'wieght_decay' in [optim]" in message
    assert "did you mean 'weight_decay'?" in message


def test_unknown_key_line_is_found_in_its_own_section(tmp_path):
    # the same (misspelt) key exists as text in an earlier section; the line must be the one in [train]
    path = write(tmp_path, "[model]\nname = 'resnet10t'\n\n[train]\nepochs = 2\nbatch_sise = 8\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}:6: " in message
    assert "did you mean 'batch_size'?" in message


def test_unknown_key_without_a_close_match_lists_the_section_keys(tmp_path):
    path = write(tmp_path, "[run]\nzzzzzz = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}:2: " in message
    assert "[run] takes runs, name" in message


def test_unknown_key_in_override_suggests():
    with pytest.raises(ConfigError, match=r"unknown setting 'lrr' in \[optim\]; did you mean 'lr'\?"):
        load_config(overrides={"optim.lrr": 0.1})


def test_unknown_section_in_override():
    with pytest.raises(ConfigError, match=r"unknown setting optimm\.lr"):
        load_config(overrides={"optimm.lr": 0.1})


def test_unknown_section_names_file_line_and_suggestion(tmp_path):
    path = write(tmp_path, "[data]\nimg_size = 64\n\n[trian]\nepochs = 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:4: ")
    assert "unknown section [trian]" in message
    assert "did you mean [train]?" in message


def test_unknown_section_without_a_close_match_lists_sections(tmp_path):
    path = write(tmp_path, "[zzz]\nx = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}:1: " in message
    assert "[data], [model], [optim], [train], [dist], [run]" in message


def test_setting_before_any_section_header_names_its_line(tmp_path):
    # a forgotten [train] header: the message must still point at the line (errors.py: file, line, fix)
    path = write(tmp_path, "# settings\nepochs = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}:2:" in str(info.value)


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[train]\nepochs = 2\ndevice = cuda\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid TOML")
    assert "line 3" in message


def test_missing_file_raises_config_error(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="config file not found") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_non_utf8_file_raises_config_error(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(b"[run]\nname = \"caf\xe9\"\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_a_folder_as_config_file_raises_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_meta_section_is_ignored(tmp_path):
    path = write(tmp_path, "[meta]\ntorch = '2.4'\nanything = 1\n[meta.versions]\ntimm = '1.0'\n[model]\nstem = 'srm'\n"
                           "[train]\nepochs = 2\n")
    config = load_config(path)
    assert config.train.epochs == 2
    assert dataclasses.replace(config, train=Config().train) == Config()


def test_a_run_config_saved_before_stems_keeps_the_rgb_model_and_a_new_config_gets_srm(tmp_path):
    """A run folder's config.toml (it has [meta]) without model.stem was an rgb run: resuming it must rebuild that."""
    old_run = write(tmp_path, "[meta]\neffective_batch_size = 32\n[model]\nname = 'resnet10t'\n")
    assert load_config(old_run).model.stem == "rgb"
    user = tmp_path / "user.toml"
    user.write_text("[model]\nname = 'resnet10t'\n")
    assert load_config(user).model.stem == "srm" == Config().model.stem


def test_section_given_as_a_plain_value_is_rejected(tmp_path):
    path = write(tmp_path, "train = 3\n")
    with pytest.raises(ConfigError, match=r"train must be a \[section\]"):
        load_config(path)


# ---------------------------------------------------------------- choices and checks

CHOICE_FIELDS = [
    ("data.augment", AUGMENT_PRESETS),
    ("data.on_bad_image", BAD_IMAGE_POLICIES),
    ("optim.optimizer", OPTIMIZERS),
    ("optim.schedule", SCHEDULES),
    ("train.amp", AMP_MODES),
    ("train.channels_last", ("auto", "on", "off")),
    ("train.best_metric", tuple(BEST_METRICS)),
    ("data.crop", CROP_MODES),
    ("data.eval_reduce", EVAL_REDUCES),
    ("model.stem", STEMS),
]


@pytest.mark.parametrize(("name", "choices"), CHOICE_FIELDS, ids=[c[0] for c in CHOICE_FIELDS])
def test_choice_field_rejects_a_bad_value(name, choices):
    with pytest.raises(ConfigError) as info:
        load_config(overrides={name: "bogus-value"})
    message = str(info.value)
    assert f"{name} = 'bogus-value' is not one of" in message
    for choice in choices:
        assert choice in message


@pytest.mark.parametrize(("name", "choices"), CHOICE_FIELDS, ids=[c[0] for c in CHOICE_FIELDS])
def test_choice_field_accepts_every_listed_value(name, choices):
    section, key = name.split(".")
    for choice in choices:
        config = load_config(overrides={name: choice})
        assert getattr(getattr(config, section), key) == choice


def test_choice_field_suggests_a_close_value():
    with pytest.raises(ConfigError, match=r"did you mean 'adamw'\?"):
        load_config(overrides={"optim.optimizer": "adamww"})


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"data.img_size": 15}, "data.img_size"),
        ({"data.img_size": 4097}, "data.img_size"),
        ({"data.eval_crop": 0.05}, "data.eval_crop"),
        ({"data.eval_crop": 1.01}, "data.eval_crop"),
        ({"data.workers": -2}, "data.workers"),
        ({"model.name": "  "}, "model.name"),
        ({"model.drop_rate": 1.0}, "drop_rate"),
        ({"model.drop_rate": -0.1}, "drop_rate"),
        ({"model.drop_path_rate": 1.0}, "drop_path_rate"),
        ({"optim.lr": -0.001}, "optim.lr"),
        ({"optim.lr": 10.0}, "optim.lr"),
        ({"optim.weight_decay": -0.1}, "optim.weight_decay"),
        ({"optim.warmup_epochs": -1}, "optim.warmup_epochs"),
        ({"optim.min_lr": -1e-6}, "optim.min_lr"),
        ({"optim.step_epochs": 0}, "optim.step_epochs"),
        ({"optim.step_gamma": 0.0}, "optim.step_gamma"),
        ({"optim.step_gamma": 1.5}, "optim.step_gamma"),
        ({"optim.clip_grad": -1.0}, "optim.clip_grad"),
        ({"optim.accum_steps": 0}, "optim.accum_steps"),
        ({"optim.label_smoothing": 1.0}, "optim.label_smoothing"),
        ({"optim.label_smoothing": -0.1}, "optim.label_smoothing"),
        ({"optim.mixup": -0.2}, "optim.mixup"),
        ({"optim.cutmix": 11.0}, "optim.cutmix"),
        ({"optim.mixup_prob": 0.0}, "optim.mixup_prob"),
        ({"data.eval_grid": 0}, "data.eval_grid"),
        ({"data.eval_grid": 9}, "data.eval_grid"),
        ({"data.crop": "native", "data.eval_crop": 0.875}, "data.eval_crop applies to crop = \"resize\""),
        ({"train.epochs": 0}, "train.epochs"),
        ({"train.batch_size": 0}, "train.batch_size"),
        ({"train.ema_decay": 0.0}, "train.ema_decay"),
        ({"train.ema_decay": 1.0}, "train.ema_decay"),
        ({"train.keep_top_k": 0}, "train.keep_top_k"),
        ({"train.val_every": 0}, "train.val_every"),
        ({"train.device": "gpu"}, "train.device"),
        ({"train.device": "cuda:x"}, "train.device"),
        ({"run.name": "../escape"}, "run.name"),
        ({"run.name": ".hidden"}, "run.name"),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else ",".join(f"{k}={v[k]!r}" for k in v),
)
def test_each_check_fires(overrides, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(overrides=overrides)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"data.img_size": 16},
        {"data.img_size": 4096},
        {"data.eval_crop": 0.1},
        {"data.workers": -1},
        {"data.workers": 0},
        {"optim.lr": 9.99},
        {"optim.step_gamma": 1.0},
        {"optim.warmup_epochs": 0},
        {"train.device": "cpu"},
        {"train.device": "cuda"},
        {"train.device": "cuda:3"},
        {"train.device": "mps"},
        {"run.name": "ok_name-1"},
    ],
    ids=lambda v: ",".join(f"{k}={v[k]!r}" for k in v),
)
def test_boundary_values_pass_the_checks(overrides):
    load_config(overrides=overrides)  # raises on failure
    config = Config()
    apply_values(config, overrides)
    check_config(config)
    key = next(iter(overrides))
    section, name = key.split(".")
    assert getattr(getattr(config, section), name) == overrides[key]


def test_check_config_accepts_defaults():
    check_config(Config())


# ---------------------------------------------------------------- round trip and learning rate


def test_to_toml_loads_back_to_an_equal_config(tmp_path):
    config = load_config(overrides={
        "data.root": "/data/with \"quotes\" and \\backslash",
        "data.img_size": 224,
        "model.pretrained": "weights/model.safetensors",
        "optim.lr": 0.0123,
        "optim.min_lr": 1e-7,
        "train.compile": True,
        "train.device": "cuda:1",
        "run.name": "exp-1",
    })
    path = write(tmp_path, to_toml(config))
    assert load_config(path) == config


def test_to_toml_with_meta_loads_back_to_an_equal_config(tmp_path):
    config = resolve(load_config(overrides={"train.batch_size": 64}))
    text = to_toml(config, meta={"versions": {"torch": "2.4.0"}, "git": "abc123", "created": 1.5})
    assert "[meta" in text
    loaded = load_config(write(tmp_path, text))
    assert loaded == config
    assert loaded.optim.lr == pytest.approx(2e-3)


def test_to_toml_of_defaults_loads_back_to_defaults(tmp_path):
    assert load_config(write(tmp_path, to_toml(Config()))) == Config()


@pytest.mark.parametrize(
    ("pretrained", "batch_size", "accum", "expected"),
    [
        ("", 32, 1, LR_FROM_SCRATCH),
        ("", 64, 1, 2 * LR_FROM_SCRATCH),
        ("", 16, 1, 0.5 * LR_FROM_SCRATCH),
        ("", 16, 4, 2 * LR_FROM_SCRATCH),
        ("hub", 32, 1, LR_FINE_TUNE),
        ("w.safetensors", 128, 2, 8 * LR_FINE_TUNE),
        ("hub", 8, 1, LR_FINE_TUNE / 4),
    ],
)
def test_resolve_lr_automatic(pretrained, batch_size, accum, expected):
    config = Config()
    config.model.pretrained = pretrained
    config.train.batch_size = batch_size
    config.optim.accum_steps = accum
    assert resolve_lr(config) == pytest.approx(expected)


def test_lr_constants():
    assert pytest.approx(1e-3) == LR_FROM_SCRATCH
    assert pytest.approx(2e-4) == LR_FINE_TUNE


def test_resolve_lr_keeps_an_explicit_lr():
    config = Config()
    config.optim.lr = 0.05
    config.train.batch_size = 256
    config.optim.accum_steps = 4
    config.model.pretrained = "hub"
    assert resolve_lr(config) == 0.05


def test_resolve_writes_the_automatic_lr_into_the_config():
    config = Config()
    config.train.batch_size = 96
    resolved = resolve(config)
    assert resolved.optim.lr == pytest.approx(3 * LR_FROM_SCRATCH)
    assert resolve_lr(resolved) == resolved.optim.lr  # resolving again changes nothing


# ---------------------------------------------------------------- issue 24: values no setting can mean


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "+inf"])
@pytest.mark.parametrize("key", ["optim.weight_decay", "optim.lr", "train.recovery_every_min", "data.max_image_mpix"])
def test_non_finite_values_are_refused_naming_the_setting(tmp_path, key, value):
    section, name = key.split(".")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"[{section}]\n{name} = {value}\n"))
    assert f"{key} must be a finite number" in str(caught.value) and "cfg.toml:2" in str(caught.value)


def test_a_derived_learning_rate_out_of_the_rules_is_refused_with_the_config(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "[train]\nbatch_size = 1e9\n"))
    message = str(caught.value)
    assert "automatic learning rate would be 31250" in message and "batch_size" in message


def test_a_toml_nested_100000_deep_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "[data]\nroot = " + "[" * 100_000 + "]" * 100_000 + "\n"))
    assert "nested too deeply" in str(caught.value)


@pytest.mark.parametrize(("key", "value", "fragment"), [("data.workers", 100_000, "data.workers = 100000 is more"),
                                                        ("dist.nproc_per_node", 100_000, "dist.nproc_per_node = 100000")])
def test_processes_are_capped_by_the_machine(key, value, fragment):
    with pytest.raises(ConfigError) as caught:
        load_config(overrides={key: value})
    assert fragment in str(caught.value) and "CPU cores" in str(caught.value)
