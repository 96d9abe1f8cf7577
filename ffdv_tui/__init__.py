"""ffdv-tui: the terminal workbench. Never imports torch, timm or torchvision (ARCHITECTURE.md, the layers)."""

__version__ = "0.1.0"
