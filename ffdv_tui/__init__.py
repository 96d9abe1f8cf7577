"""ffdv-tui: the terminal workbench. Never imports torch, timm or torchvision (DESIGN.md, "Layers")."""

__version__ = "0.1.0"
