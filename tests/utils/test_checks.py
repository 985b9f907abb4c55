"""The one check vocabulary: errors that name the argument, and validation once per call."""
from unittest import mock

import numpy as np
import pytest

from graphseg.propagation import A2GNNConfig, propagate
from graphseg.utils import checks
from graphseg.utils.checks import (
    check_image,
    check_probabilities,
    check_seed_map,
    trusted_inputs,
)


def test_array_checks_name_the_argument():
    with pytest.raises(TypeError, match="photo must have dtype uint8"):
        check_image(np.zeros((4, 4, 3), np.float32), "photo")
    with pytest.raises(ValueError, match="scribbles has shape"):
        check_seed_map(np.zeros((4, 5), np.uint8), "scribbles", (4, 4))
    with pytest.raises(ValueError, match="probs must sum to 1"):
        check_probabilities(np.full((2, 3, 3), 0.7, np.float32))


def test_trusted_inputs_skip_the_scans_but_still_convert():
    bad = np.zeros((4, 4), np.uint8)  # no colour axis: refused outside the block
    read_only = np.zeros((4, 4, 3), np.uint8)
    read_only.flags.writeable = False
    with trusted_inputs():
        assert check_image(bad) is bad
        assert check_image(read_only).flags.writeable  # still a writable copy
        assert check_probabilities(np.ones((1, 2, 2))).dtype == np.float32
        with trusted_inputs():
            pass
        check_image(bad)  # the nested block's exit leaves the outer one trusted
    with pytest.raises(ValueError, match=r"must have shape \(H, W, 3\)"):
        check_image(bad)


def test_propagate_validates_the_photo_once():
    image = np.zeros((48, 64, 3), np.uint8)
    image[12:36, 16:48] = 220
    config = A2GNNConfig.release("boxes", stage1_epochs=2, stage2_epochs=1, hidden_channels=8)
    with mock.patch.object(checks, "_validate_image", wraps=checks._validate_image) as spy, \
            mock.patch.object(checks, "_validate_probabilities",
                              wraps=checks._validate_probabilities) as probs_spy:
        propagate(image, [[1, 10, 6, 54, 42]], "boxes", 2, config=config, features="colour")
    assert spy.call_count == 1
    assert probs_spy.call_count == 0  # the CRF's input is the pipeline's own output
