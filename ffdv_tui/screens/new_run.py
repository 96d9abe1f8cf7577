"""The new-run form: every field checked as you type, with the reason beside it; Start only when all pass.

Field checks reuse the engine's own (``engine.contract.config`` rules, ``engine.data.dataset`` label
checks, run-name rules), so the form says exactly what ``ffdv train`` would. The
dataset check reads label files, so it runs in a worker; model names come from the
engine once (``ffdv_tui.model_names``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Select, Static

from engine.contract.config import AMP_MODES, AUGMENT_PRESETS, OPTIMIZERS, SCHEDULES, STEMS, Config, load_config
from engine.contract.errors import FfdvError
from engine.contract.runstore import check_run_name
from engine.contract.text import printable
from ffdv_tui.screens.dialog import DialogScreen

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@dataclass(frozen=True)
class Field:
    name: str  # widget id
    label: str
    key: str | None  # config setting, "section.key"
    kind: type | None = None  # int / float for numbers, None for text
    choices: tuple[str, ...] = ()


# shown under the form while the field has focus, with the setting it becomes
FIELD_HELP = {
    "data": "a dataset folder: the FFDI layout (trainset/, trainset_label.txt, ...) or train/ and val/ class folders",
    "model": "any timm model name; type to see completions",
    "img_size": "images are resized to this many pixels a side",
    "epochs": "passes over the training images",
    "batch_size": "images per step on each GPU (or on the CPU)",
    "lr": "auto: 1e-3 from scratch, 2e-4 fine-tuning, scaled by batch/32; or a number",
    "optimizer": "adamw, adam or sgd (timm's optimizer factory)",
    "schedule": "cosine with warmup, step, or constant learning rate",
    "augment": "none; light: flip, random resized crop; strong: + colour jitter, blur, JPEG re-compression",
    "stem": "srm: the backbone sees fixed high-pass residuals (generalises best here); rgb: the image; rgb+srm: both",
    "pseudo_fakes": "share of real images blended with a changed copy of themselves into fakes each epoch (0: off)",
    "amp": "auto: bf16 on CUDA, off elsewhere; bf16; fp16; off",
    "pretrained": "empty: from scratch; a .safetensors/.pth weights file; hub: timm's download (needs internet)",
    "gpus": "processes on this machine, one per GPU, through torchrun",
    "name": "the run's folder under the runs folder; taken names get -2, -3...; empty: a timestamp",
}


FIELDS = [
    Field("data", "Dataset", "data.root"),
    Field("model", "Model", "model.name"),
    Field("img_size", "Image size", "data.img_size", int),
    Field("epochs", "Epochs", "train.epochs", int),
    Field("batch_size", "Batch size", "train.batch_size", int),
    Field("lr", "Learning rate", "optim.lr", float),
    Field("optimizer", "Optimizer", "optim.optimizer", choices=OPTIMIZERS),
    Field("schedule", "Schedule", "optim.schedule", choices=SCHEDULES),
    Field("augment", "Augmentation", "data.augment", choices=AUGMENT_PRESETS),
    Field("stem", "Input filter", "model.stem", choices=STEMS),
    Field("pseudo_fakes", "Pseudo-fakes", "data.pseudo_fakes", float),
    Field("amp", "Mixed precision", "train.amp", choices=AMP_MODES),
    Field("pretrained", "Pretrained file", "model.pretrained"),
    Field("gpus", "GPUs", None, int),
    Field("name", "Run name", "run.name"),
]
BY_NAME = {field.name: field for field in FIELDS}


def default_values(config: Config) -> dict[str, str]:
    return {
        "data": config.data.root, "model": config.model.name, "img_size": str(config.data.img_size),
        "epochs": str(config.train.epochs), "batch_size": str(config.train.batch_size),
        "lr": "auto" if not config.optim.lr else repr(config.optim.lr), "optimizer": config.optim.optimizer,
        "schedule": config.optim.schedule, "augment": config.data.augment, "stem": config.model.stem,
        "pseudo_fakes": repr(config.data.pseudo_fakes), "amp": config.train.amp,
        "pretrained": config.model.pretrained, "gpus": str(config.dist.nproc_per_node), "name": config.run.name,
    }


def parse(field: Field, text: str) -> Any:
    """The typed value of a field; ValueError says what is wrong with the text."""
    text = text.strip()
    if field.name == "lr" and text.lower() in ("", "auto", "0"):
        return 0.0
    if field.kind is int:
        if not text.lstrip("-").isdigit():
            raise ValueError("a whole number, please")
        return int(text)
    if field.kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError("a number (e.g. 0.001), or auto") from None
    return text


def check_setting(field: Field, value: Any) -> str | None:
    """The engine's own rule for one setting, applied on top of the defaults."""
    if field.key is None:
        return None
    try:
        load_config(overrides={field.key: value})
    except FfdvError as exc:
        return str(exc)
    return None


def check_pretrained(value: str) -> str | None:
    if not value or value == "hub":
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        return "no such file"
    if path.suffix not in WEIGHT_SUFFIXES:
        return f"expected a weights file ({', '.join(WEIGHT_SUFFIXES)})"
    return None


def check_name(value: str, runs_dir: Path) -> tuple[str | None, str | None]:
    """(error, note): a taken name is not an error, the run gets the next free one."""
    if not value:
        return None, "empty: a timestamped name"
    try:
        check_run_name(value)
    except ValueError as exc:
        return str(exc), None
    if (runs_dir / value).exists():
        return None, f"taken: it will be {value}-2 or the next free"
    return None, None


class NewRunScreen(DialogScreen[str | None]):
    """Returns the run's folder name once its engine is started (or it is queued), None when cancelled.

    What the workers find (the dataset check, timm's model names, a failed start) comes back
    as messages; the reasons shown are plain text, as a label-file header may hold anything.
    """

    DEFAULT_CSS = """
    NewRunScreen > #dialog {
        width: 100;
        height: 100%;
        max-height: 40;
        padding: 0 1;
    }
    NewRunScreen #form-title {
        height: 1;
        margin-bottom: 1;
    }
    NewRunScreen #form {
        height: 1fr;
    }
    NewRunScreen #field-help {
        height: 2;
        color: $text-muted;
    }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "start", "Start", priority=True),
    ]

    @dataclass
    class Checked(Message):
        """A field's check that ran in a worker is done (``error`` or ``note``)."""

        field: str
        error: str | None
        note: str | None
        checked: str | None = None  # the text that was checked; a newer one makes this answer stale

    @dataclass
    class ModelsLoaded(Message):
        names: list[str]

    @dataclass
    class Started(Message):
        """The run's engine was started (``name``), or could not be (``error``)."""

        name: str | None
        error: str | None = None

    def __init__(self, defaults: Config, runs_dir: Path, model_names: Callable[[], list[str]],
                 start_run: Callable[[Config, int, bool], str], gpus_available: int) -> None:
        super().__init__()
        self.defaults = defaults
        self.runs_dir = runs_dir
        self.load_model_names = model_names
        self.start_run = start_run
        self.gpus_available = gpus_available
        self.model_names: set[str] | None = None
        self.errors: dict[str, str | None] = {f.name: None for f in FIELDS}
        self.pending: set[str] = {"data", "model"}
        self.checked: dict[str, str] = {}  # field -> the text its check last started on

    def compose(self) -> ComposeResult:
        values = default_values(self.defaults)
        with Vertical(id="dialog"):
            yield Static("[b]New run[/b]  [dim]every field is checked as you type · ctrl+s starts · escape cancels",
                         id="form-title")
            with VerticalScroll(id="form"):
                for field in FIELDS:
                    with Horizontal(classes="field"):
                        yield Label(field.label, classes="field-label")
                        if field.choices:
                            yield Select([(c, c) for c in field.choices], value=values[field.name], id=field.name,
                                         allow_blank=False, classes="field-input", compact=True)
                        else:
                            yield Input(values[field.name], id=field.name, classes="field-input",
                                        placeholder=_placeholder(field), compact=True)
                        yield Static("", id=f"{field.name}-why", classes="field-why")
            yield Static("", id="field-help")
            with Horizontal(id="form-buttons"):
                yield Button("Start", variant="success", id="start", disabled=True)
                yield Button("Queue", variant="primary", id="queue", disabled=True,
                             tooltip="Queue the run instead: the queue runner starts it in its turn (u: the queue)")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        for field in FIELDS:
            if not field.choices:
                self._check(field, self.query_one(f"#{field.name}", Input).value)
        self._load_models()
        self.query_one("#data", Input).focus()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """The focused field's meaning and the setting it becomes: where Tab went is always on screen."""
        field = next((BY_NAME[w.id] for w in event.widget.ancestors_with_self if w.id in BY_NAME), None)
        if field is not None:
            setting = field.key or "--nproc-per-node"
            self.query_one("#field-help", Static).update(Text(f"{field.label}: {FIELD_HELP[field.name]} · {setting}"))

    # ------------------------------------------------------------ checks

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        field = BY_NAME.get(event.input.id or "")
        if field is not None:
            self._check(field, event.value)

    def _check(self, field: Field, text: str) -> None:
        self.checked[field.name] = text
        note = None
        try:
            value = parse(field, text)
        except ValueError as exc:
            self._show(field.name, str(exc), None)
            return
        if field.name == "data":
            self._show(field.name, None, "checking the label files…", pending=True)
            self._check_dataset(value)
            return
        if field.name == "model":
            if self.model_names is None:
                self._show(field.name, None, "loading timm's model list…", pending=True)
                return
            error = None if value in self.model_names else _unknown_model(value, self.model_names)
            self._show(field.name, error, None)
            return
        if field.name == "pretrained":
            error = check_pretrained(value)
            note = "downloads from the hub: needs internet" if value == "hub" else None
        elif field.name == "gpus":
            error = _check_gpus(value, self.gpus_available)
        elif field.name == "name":
            error, note = check_name(value, self.runs_dir)
        else:
            error = check_setting(field, value)
            if field.name == "lr" and value == 0 and not error:
                note = "auto: 1e-3 from scratch, 2e-4 fine-tuning, ×batch/32"
        self._show(field.name, error, note)

    @work(thread=True, exclusive=True, group="dataset-check")
    def _check_dataset(self, root: str) -> None:
        from engine.data.dataset import training_splits  # pandas: loaded on first use, not at start-up

        try:
            train, val = training_splits(os.path.expanduser(root)) if root else training_splits("")
            error, note = None, f"{len(train):,} train · {len(val):,} val images ({train.layout})"
        except FfdvError as exc:
            error, note = str(exc), None
        except OSError as exc:
            error, note = f"cannot read it: {exc}", None
        self.post_message(self.Checked("data", error, note, checked=root))

    @on(Checked)
    def _checked(self, message: Checked) -> None:
        if message.checked is None or self.query_one(f"#{message.field}", Input).value.strip() == message.checked:
            self._show(message.field, message.error, message.note)

    @work(thread=True, exclusive=True, group="model-names")
    def _load_models(self) -> None:
        try:
            names = self.load_model_names()
        except Exception as exc:
            self.post_message(self.Checked("model", f"cannot list timm models: {exc}", None))
            return
        self.post_message(self.ModelsLoaded(names))

    @on(ModelsLoaded)
    def _models_loaded(self, message: ModelsLoaded) -> None:
        names = message.names
        self.model_names = set(names)
        model = self.query_one("#model", Input)
        model.suggester = SuggestFromList(sorted(names), case_sensitive=False)
        self._check(BY_NAME["model"], model.value)

    def _show(self, name: str, error: str | None, note: str | None, pending: bool = False) -> None:
        self.errors[name] = error
        self.pending.discard(name)
        if pending:
            self.pending.add(name)
        why = self.query_one(f"#{name}-why", Static)
        text = error or note or "✓"
        why.update(Text(printable(text.splitlines()[0] if text else "", 400) + (" …" if text.count("\n") else "")))
        why.tooltip = Text(printable(text, multiline=True)) if text.count("\n") or len(text) > 40 else None
        why.set_class(bool(error), "error")
        why.set_class(not error and not note, "ok")
        self.query_one("#start", Button).disabled = not self.ready
        self.query_one("#queue", Button).disabled = not self.ready

    @property
    def ready(self) -> bool:
        return not self.pending and not any(self.errors.values())

    # ------------------------------------------------------------ actions

    @on(Button.Pressed, "#start")
    def action_start(self, queued: bool = False) -> None:
        if not self.ready:
            self.notify("Fix the fields marked in red first.", severity="warning")
            return
        overrides: dict[str, Any] = {}
        for field in FIELDS:
            widget = self.query_one(f"#{field.name}")
            text = str(widget.value) if isinstance(widget, Select) else widget.value
            if field.key:
                overrides[field.key] = parse(field, text)
        gpus = parse(BY_NAME["gpus"], self.query_one("#gpus", Input).value)
        overrides["run.runs"] = str(self.runs_dir)
        config = load_config(overrides=overrides)
        self.query_one("#start", Button).disabled = True
        self.query_one("#queue", Button).disabled = True
        self._start(config, gpus, queued)

    @on(Button.Pressed, "#queue")
    def _queue_pressed(self) -> None:
        self.action_start(queued=True)

    @work(thread=True, exclusive=True, group="start")
    def _start(self, config: Config, gpus: int, queued: bool) -> None:
        try:
            name = self.start_run(config, gpus, queued)
        except (FfdvError, OSError) as exc:
            self.post_message(self.Started(None, str(exc)))
            return
        self.post_message(self.Started(name))

    @on(Started)
    def _started(self, message: Started) -> None:
        if message.error is not None:
            self.notify(f"could not start: {printable(message.error)}", severity="error", timeout=10, markup=False)
            self._show("name", None, None)
        else:
            self.dismiss(message.name)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def _placeholder(field: Field) -> str:
    return {"pretrained": "empty = from scratch", "name": "empty: a timestamped name",
            "lr": "auto or a number", "data": "dataset folder"}.get(field.name, "")


def _unknown_model(name: str, names: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    return f"not a timm model{'; did you mean ' + ', '.join(close) + '?' if close else ''}"


def _check_gpus(count: int, available: int) -> str | None:
    if count < 1:
        return "at least 1"
    if available == 0 and count > 1:
        return "no GPU found here: 1 process on the CPU"
    if available and count > available:
        return f"this machine has {available} GPU{'s' if available > 1 else ''}"
    return None
