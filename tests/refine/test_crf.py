import numpy as np
import pydensecrf.densecrf as dcrf
import pytest
from pydensecrf.utils import unary_from_softmax

from graphseg.refine import PRESETS, crf_labels, dense_crf


def _inputs(seed=0, shape=(24, 32), classes=3):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    logits = rng.normal(size=(classes, *shape))
    probs = np.exp(logits) / np.exp(logits).sum(axis=0)
    return image, probs.astype(np.float32)


@pytest.mark.parametrize("preset", ["seed", "final"])
def test_matches_direct_pydensecrf_call(preset):
    image, probs = _inputs()
    p = PRESETS[preset]
    crf = dcrf.DenseCRF2D(32, 24, 3)
    crf.setUnaryEnergy(unary_from_softmax(probs))
    crf.addPairwiseGaussian(sxy=p["gaussian_sxy"], compat=p["gaussian_compat"])
    crf.addPairwiseBilateral(sxy=p["bilateral_sxy"], srgb=p["bilateral_srgb"], rgbim=image,
                             compat=p["bilateral_compat"])
    expected = np.array(crf.inference(10)).reshape(3, 24, 32)
    np.testing.assert_allclose(dense_crf(image, probs, preset), expected, rtol=1e-5, atol=1e-6)


def test_presets_are_the_release_settings():
    assert PRESETS["seed"] == {"gaussian_sxy": 3, "gaussian_compat": 3, "bilateral_sxy": 80,
                               "bilateral_srgb": 13, "bilateral_compat": 10}
    assert PRESETS["final"]["bilateral_sxy"] == 50 and PRESETS["final"]["bilateral_srgb"] == 5


def test_labels_marginals_and_class_ids():
    image, probs = _inputs()
    seeds = crf_labels(image, probs, classes=(0, 4, 9))
    assert seeds.labels.dtype == np.uint8 and seeds.labels.shape == (24, 32)
    assert set(np.unique(seeds.labels)) <= {0, 4, 9} and seeds.classes == (0, 4, 9)
    np.testing.assert_allclose(seeds.scores.sum(axis=0), 1, atol=1e-4)


def test_non_contiguous_and_read_only_image_give_the_same_result():
    image, probs = _inputs()
    expected = dense_crf(image, probs)
    strided = np.ascontiguousarray(image.transpose(1, 0, 2)).transpose(1, 0, 2)
    assert not strided.flags.c_contiguous
    np.testing.assert_allclose(dense_crf(strided, probs), expected)
    image.setflags(write=False)
    np.testing.assert_allclose(dense_crf(image, probs), expected)
    np.testing.assert_allclose(dense_crf(image, probs[:, :, ::-1][:, :, ::-1]), expected)


@pytest.mark.parametrize("change, error, match", [
    (lambda im, p: (im.astype(np.float32), p), TypeError, "image must have dtype uint8"),
    (lambda im, p: (im[..., :2], p), ValueError, r"image must have shape \(H, W, 3\)"),
    (lambda im, p: (im, p[:, :10]), ValueError, "probs is 10x32"),
    (lambda im, p: (im, p * 2), ValueError, "probs must sum to 1"),
    (lambda im, p: (im, np.where(p > 0.5, np.nan, p)), ValueError, "probs contains"),
    (lambda im, p: (im, p.astype(np.int64)), TypeError, "probs must be a floating"),
    (lambda im, p: (im, p[0]), ValueError, r"probs must be a non-empty \(C, H, W\)"),
    (lambda im, p: (im, p.tolist()), TypeError, "probs must be a numpy"),
])
def test_bad_input_raises_naming_the_argument(change, error, match):
    image, probs = change(*_inputs())
    with pytest.raises(error, match=match):
        dense_crf(image, probs)


def test_bad_settings():
    image, probs = _inputs()
    with pytest.raises(ValueError, match="preset"):
        dense_crf(image, probs, preset="fast")
    with pytest.raises(ValueError, match="iterations"):
        dense_crf(image, probs, iterations=0)
    with pytest.raises(TypeError, match="unknown CRF parameter 'sxy'"):
        dense_crf(image, probs, sxy=3)
    with pytest.raises(ValueError, match="bilateral_srgb"):
        dense_crf(image, probs, bilateral_srgb=0)
    with pytest.raises(ValueError, match="classes must list one class per row"):
        crf_labels(image, probs, classes=(0, 1))
