"""The ffdv training engine. Importing this package is cheap: heavy modules load on first use."""

__version__ = "0.1.0"
