"""The torch-free half of the engine: the contract between the engine and any viewer.

Everything here imports only the standard library, pandas, numpy, Pillow and rich, never
torch, timm or textual. The app (``ffdv_tui``) may import this package and nothing else
of the engine; import-linter (``pyproject.toml``) and ``tests/test_layering.py`` hold
that line. What lives here: the event protocol and its schemas, the run store (the
folder that is the queue between UI and engine), the fold of events into a run's state,
launching and liveness of engine processes, starting and resuming a run (``runstart``, the
one module here that reads a dataset, through ``engine.data``), configuration, checkpoint
sidecars, submissions, engine jobs, errors and number formatting. What is read from a
dataset folder lives in the sibling torch-free package ``engine.data``.
"""
