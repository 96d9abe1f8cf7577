"""The one base of the app's dialogs: centred over the screen below, a framed box with id ``dialog``, form rows."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen

Result = TypeVar("Result")


class DialogScreen(ModalScreen[Result]):
    """Subclasses compose a container with ``id="dialog"`` and set its width in their own DEFAULT_CSS."""

    DEFAULT_CSS = """
    DialogScreen {
        align: center middle;
    }
    DialogScreen > #dialog {
        width: 64;
        max-width: 100%;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 1 2;
    }

    /* Form rows: a label, an input, the reason it is wrong (or a tick). */
    DialogScreen .field {
        height: 1;
    }
    DialogScreen .field-label {
        width: 16;
        padding: 0 1 0 0;
        text-align: right;
    }
    DialogScreen .field-input {
        width: 30;
    }
    DialogScreen .field-why {
        width: 1fr;
        height: 1;
        padding: 0 0 0 1;
        color: $text-muted;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    DialogScreen .field-why.error {
        color: $error;
    }
    DialogScreen .field-why.ok {
        color: $success;
    }
    DialogScreen #form-buttons {
        height: 3;
        align-horizontal: right;
    }
    DialogScreen #form-buttons Button {
        margin-left: 2;
    }
    """
