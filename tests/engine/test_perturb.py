"""Perturbation specs parse as documented, and each perturbation changes an image the way it says."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from conftest import synthetic_image
from PIL import Image

from engine.contract.perturbspec import (
    STANDARD_SUITE,
    PerturbationError,
    check_spec,
    parse_perturbation,
    parse_suite,
)
from engine.perturb import perturb_image, perturb_tensor, perturbation_seed


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A 3 x 96 x 128 image with edges and texture (JPEG and blur have something to lose)."""
    rng = np.random.default_rng(3)
    img = np.asarray(synthetic_image(rng, 1, size=128))[:96].copy()
    img[20:60, 30:90] = rng.integers(0, 255, (40, 60, 3))
    return torch.from_numpy(img).permute(2, 0, 1).contiguous()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def laplacian_energy(x: torch.Tensor) -> float:
    g = x.float().mean(0)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(lap.var())


def test_specs_parse_to_their_canonical_names() -> None:
    assert parse_perturbation("none").is_clean
    assert parse_perturbation("JPEG:60").name == "jpeg:60"
    assert parse_perturbation(" resize:0.50 + jpeg:75 ").name == "resize:0.5+jpeg:75"
    assert parse_perturbation("jpeg:50").jpeg_quality == 50
    assert parse_perturbation("resize:0.5+jpeg:75").jpeg_quality is None


def test_standard_suite_is_the_documented_one_with_the_clean_row_first() -> None:
    names = [p.name for p in parse_suite(["standard"])]
    assert names == list(STANDARD_SUITE)
    assert names[0] == "none" and "resize:0.5+jpeg:75" in names
    mixed = [p.name for p in parse_suite(["jpeg:60,blur:1.5", "standard", "jpeg:60"])]
    assert mixed[:3] == ["none", "jpeg:60", "blur:1.5"] and mixed.count("jpeg:60") == 1


@pytest.mark.parametrize(("spec", "named"), [
    ("jpg:60", "'jpg'"), ("jpeg:101", "out of range"), ("jpeg:7.5", "whole numbers"), ("resize:1.5", "out of range"),
    ("blur", "needs a value"), ("noise:abc", "'abc'"), ("jpeg:60++blur:1", "empty step"), ("crop:0", "out of range"),
])
def test_a_bad_spec_names_the_token_and_the_accepted_forms(spec: str, named: str) -> None:
    with pytest.raises(PerturbationError) as caught:
        parse_suite([spec])
    message = str(caught.value)
    assert named in message
    assert repr(spec) in message
    assert "jpeg:Q" in message and "resize:F" in message and "standard" in message
    assert check_spec(spec) == message
    assert check_spec("jpeg:60+noise:0.03") is None


def test_a_toml_suite(tmp_path) -> None:
    good = tmp_path / "suite.toml"
    good.write_text('perturbations = ["jpeg:60", "resize:0.7+jpeg:80"]\n')
    assert [p.name for p in parse_suite([str(good)])] == ["none", "jpeg:60", "resize:0.7+jpeg:80"]
    bad = tmp_path / "bad.toml"
    bad.write_text('perturbations = ["jpeg:60", "sharpen:2"]\n')
    with pytest.raises(PerturbationError, match=r"bad\.toml.*'sharpen'"):
        parse_suite([str(bad)])
    (tmp_path / "empty.toml").write_text("x = 1\n")
    with pytest.raises(PerturbationError, match=r"expected perturbations = "):
        parse_suite([str(tmp_path / "empty.toml")])


def test_jpeg_quality_lowers_file_size_and_psnr_monotonically(photo: torch.Tensor) -> None:
    sizes, psnrs = [], []
    pil = Image.fromarray(photo.permute(1, 2, 0).numpy())
    for quality in (95, 90, 75, 50, 20):
        out = perturb_tensor(parse_perturbation(f"jpeg:{quality}"), photo, 0)
        assert out.shape == photo.shape and out.dtype == torch.uint8
        buffer = io.BytesIO()
        pil.save(buffer, format="JPEG", quality=quality)
        sizes.append(len(buffer.getvalue()))
        psnrs.append(psnr(out, photo))
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    assert psnrs == sorted(psnrs, reverse=True) and len(set(psnrs)) == len(psnrs)
    assert psnrs[0] < 60  # it did re-compress


def test_resize_and_blur_soften_the_image_measurably_and_keep_its_size(photo: torch.Tensor) -> None:
    sharp = laplacian_energy(photo)
    half = perturb_tensor(parse_perturbation("resize:0.5"), photo, 0)
    quarter = perturb_tensor(parse_perturbation("resize:0.25"), photo, 0)
    assert half.shape == quarter.shape == photo.shape
    assert laplacian_energy(quarter) < laplacian_energy(half) < 0.8 * sharp
    blur1 = perturb_tensor(parse_perturbation("blur:1"), photo, 0)
    blur2 = perturb_tensor(parse_perturbation("blur:2"), photo, 0)
    assert blur1.shape == photo.shape
    assert laplacian_energy(blur2) < laplacian_energy(blur1) < 0.8 * sharp
    assert psnr(blur2, photo) < psnr(blur1, photo)


def test_crop_keeps_the_centre(photo: torch.Tensor) -> None:
    out = perturb_tensor(parse_perturbation("crop:0.5"), photo, 0)
    assert tuple(out.shape) == (3, 48, 64)
    assert torch.equal(out, photo[:, 24:72, 32:96])


def test_seeded_noise_repeats_and_has_its_sigma(photo: torch.Tensor) -> None:
    spec = parse_perturbation("noise:0.03")
    grey = torch.full((3, 64, 64), 128, dtype=torch.uint8)
    a = perturb_tensor(spec, grey, perturbation_seed(0, spec, 5))
    b = perturb_tensor(spec, grey, perturbation_seed(0, spec, 5))
    other = perturb_tensor(spec, grey, perturbation_seed(0, spec, 6))
    assert torch.equal(a, b)
    assert not torch.equal(a, other)
    assert abs(float((a.float() - 128).std()) - 0.03 * 255) < 0.5
    assert perturbation_seed(0, spec, 5) != perturbation_seed(1, spec, 5)


def test_the_clean_row_leaves_the_image_untouched_and_a_chain_applies_in_order(photo: torch.Tensor) -> None:
    pil = Image.fromarray(photo.permute(1, 2, 0).numpy())
    assert perturb_image(parse_perturbation("none"), pil, 0) is pil
    chain = perturb_tensor(parse_perturbation("crop:0.5+jpeg:75"), photo, 0)
    by_hand = perturb_tensor(parse_perturbation("jpeg:75"), perturb_tensor(parse_perturbation("crop:0.5"), photo, 0), 0)
    assert torch.equal(chain, by_hand)
