"""Datasets, torch-free: layouts and label checks, image decoding, the health scan, the leakage audit.

Like ``engine.contract`` it imports only the standard library, numpy, pandas, Pillow and
SciPy/faiss (never torch, timm or textual), so the app may use it directly: the dataset
screen, the new-run form's dataset check and the leakage view run these functions in
workers. ``engine.contract`` holds the run-folder protocol; this package holds what is
read from a dataset folder.
"""
