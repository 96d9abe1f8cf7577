"""Unreadable images met during a run: warned about (the first few), listed in bad_images.txt, or fatal on request."""

from __future__ import annotations

from engine.contract.errors import DataError
from engine.contract.protocol import RunWarning
from engine.contract.runstore import RunPaths, atomic_write_text
from engine.data.dataset import Split
from engine.distributed import DistContext, gather_objects
from engine.sink import EventSink

MAX_BAD_IMAGE_WARNINGS = 20


class BadImages:
    """``split/name -> reason`` of every image that could not be decoded, kept across a resume."""

    def __init__(self, paths: RunPaths, sink: EventSink, policy: str, dist: DistContext):
        self.paths = paths
        self.sink = sink
        self.policy = policy  # data.on_bad_image: "skip" or "fail"
        self.dist = dist
        self.found: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.found)

    def load(self) -> None:
        """What the run met before it was resumed."""
        if self.paths.bad_images.is_file():
            for line in self.paths.bad_images.read_text(encoding="utf-8").splitlines():
                name, _, reason = line.partition("\t")
                if name:
                    self.found[name] = reason

    def note(self, split: Split, bad: list[tuple[int, str]] | dict[int, str]) -> None:
        items = bad.items() if isinstance(bad, dict) else bad
        for index, reason in items:
            name = f"{split.folder.name}/{split.names[index]}"
            if self.policy == "fail":
                raise DataError(
                    f"{split.folder / split.names[index]}: cannot decode the image ({reason}). The run stops because "
                    "data.on_bad_image = \"fail\"; fix or remove the file, or set it to \"skip\"."
                )
            if name in self.found:
                continue
            self.found[name] = reason
            if len(self.found) <= MAX_BAD_IMAGE_WARNINGS:
                self.sink.emit(RunWarning(message=f"skipped unreadable image {name}: {reason}", code="bad_image",
                                          detail={"name": name, "reason": reason}))
            elif len(self.found) == MAX_BAD_IMAGE_WARNINGS + 1:
                self.sink.emit(RunWarning(message=f"more unreadable images; all are listed in {self.paths.bad_images}",
                                          code="bad_image"))

    def merge(self) -> None:
        """Unreadable images seen by any rank (a collective: every rank calls it at the same point)."""
        for found in gather_objects(self.dist, self.found):
            for name, reason in found.items():
                self.found.setdefault(name, reason)

    def write(self) -> None:
        if self.found and self.dist.is_main:
            text = "".join(f"{name}\t{reason}\n" for name, reason in sorted(self.found.items()))
            atomic_write_text(self.paths.bad_images, text)
