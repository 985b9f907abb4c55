"""Training a CAM classifier (the whole network, or the head of a frozen backbone) on
image-level tags: the loops before the engine as references, determinism, exact
resume."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphseg.data.transforms import image_to_tensor
from graphseg.nn.models import load_classifier, save_classifier, small_cam_classifier
from graphseg.seeds import multiscale_cam
from graphseg.training import train_cam_classifier
from graphseg.utils.io import read_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

OPTIONS = dict(epochs=4, size=32, batch_size=3, lr=1e-2, seed=1, progress=False)


class Interrupt(Exception):
    pass


def classifier(frozen, seed=3):
    model = small_cam_classifier((1, 2), width=4, seed=seed)
    if frozen:
        model.backbone.requires_grad_(False)
    return model


def targets_of(tags):
    targets = torch.zeros(len(tags), 2)
    for i, present in enumerate(tags):
        targets[i, [c - 1 for c in present]] = 1
    return targets


def reference_network(model, images, tags, epochs, size, batch_size, lr, seed):
    """The whole-network loop as it was before the engine."""
    data = torch.cat([F.interpolate(image_to_tensor(im, None), size=(size, size),
                                    mode="bilinear", align_corners=False) for im in images])
    targets = targets_of(tags)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = nn.MultiLabelSoftMarginLoss()
    history = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=generator)
        flips = torch.rand(len(data), generator=generator) < 0.5
        total = 0.0
        for start in range(0, len(data), batch_size):
            batch = order[start:start + batch_size]
            x = data[batch]
            x = torch.where(flips[batch].view(-1, 1, 1, 1), x.flip(3), x)
            loss = loss_fn(model(x), targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        history.append(total / len(data))
    return history


def reference_head(model, images, tags, epochs, size, batch_size, lr, seed):
    """The frozen-backbone loop as it was before the engine."""
    model.eval()
    with torch.no_grad():
        features = torch.cat([model.features(view).mean(dim=(2, 3))
                              for image in images for factor in (0.75, 1.0, 1.25)
                              for x in [image_to_tensor(image, max(8, round(factor * size)))]
                              for view in (x, x.flip(3))])
    labels = targets_of(tags).repeat_interleave(6, dim=0)
    weight = model.classifier.weight
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam([weight], lr=lr, weight_decay=1e-4)
    loss_fn = nn.MultiLabelSoftMarginLoss()
    history = []
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator)
        total = 0.0
        for start in range(0, len(features), batch_size):
            batch = order[start:start + batch_size]
            loss = loss_fn(features[batch] @ weight.flatten(1).t(), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        history.append(total / len(features))
    return history


def assert_same_weights(a, b):
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("frozen", [False, True])
def test_training_equals_the_loop_before_the_engine(tagged_squares, frozen):
    images, tags = tagged_squares()
    model = classifier(frozen)
    history = train_cam_classifier(model, images, tags, **OPTIONS)
    reference = classifier(frozen)
    loop = reference_head if frozen else reference_network
    options = {k: v for k, v in OPTIONS.items() if k != "progress"}
    assert history == loop(reference, images, tags, **options)  # the very same numbers
    assert_same_weights(model, reference)


def test_training_is_seeded_and_learns(tagged_squares, tmp_path):
    images, tags = tagged_squares()
    runs = []
    for _ in range(2):
        model = small_cam_classifier((1, 2), width=4, seed=3)
        history = train_cam_classifier(model, images, tags, epochs=4, size=32, batch_size=4,
                                       lr=1e-2, seed=1, progress=False)
        runs.append((model, history))
    assert runs[0][1] == runs[1][1] and runs[0][1][-1] < runs[0][1][0]
    assert train_cam_classifier(small_cam_classifier((1, 2), width=4, seed=3), images, tags,
                                epochs=4, size=32, batch_size=4, lr=1e-2, seed=2,
                                progress=False) != runs[0][1]
    model = runs[0][0]
    assert model.input_size == 32 and not model.training
    save_classifier(model, tmp_path / "cam.pt")
    loaded = load_classifier(tmp_path / "cam.pt")
    assert loaded.classes == (1, 2) and loaded.input_size == 32
    np.testing.assert_allclose(multiscale_cam(loaded, images[0]), multiscale_cam(model, images[0]),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"classes \[7\]"):
        train_cam_classifier(model, images[:1], [(7,)], epochs=1, progress=False)


@pytest.mark.parametrize("frozen", [False, True])
def test_resume_equals_uninterrupted_run(tagged_squares, frozen, tmp_path):
    images, tags = tagged_squares()
    whole = classifier(frozen)
    history = train_cam_classifier(whole, images, tags, checkpoint=tmp_path / "a.pt", **OPTIONS)

    def stop(epoch, loss):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_cam_classifier(classifier(frozen), images, tags, checkpoint=tmp_path / "b.pt",
                             callback=stop, **OPTIONS)
    state = read_checkpoint(tmp_path / "b.pt", "a checkpoint")
    assert state["format"] == "graphseg-cam-training" and state["epoch"] == 2
    assert state["config"]["head_only"] == frozen
    # another start: the checkpoint's weights must win (a frozen backbone is the caller's)
    resumed = classifier(frozen, seed=3 if frozen else 8)
    with torch.no_grad():
        resumed.classifier.weight.normal_()
    seen = []
    again = train_cam_classifier(resumed, images, tags, checkpoint=tmp_path / "b.pt",
                                 callback=lambda e, loss: seen.append(e), **OPTIONS)
    assert seen == [2, 3] and again == history
    assert_same_weights(whole, resumed)
    assert resumed.input_size == 32 and not resumed.training
    with pytest.raises(ValueError, match=r"another configuration .*'lr': \(0.01, 0.02\)"):
        train_cam_classifier(classifier(frozen), images, tags, checkpoint=tmp_path / "b.pt",
                             **dict(OPTIONS, lr=2e-2))
    with pytest.raises(ValueError, match=r"another configuration .*'head_only'"):
        train_cam_classifier(classifier(not frozen), images, tags,
                             checkpoint=tmp_path / "b.pt", **OPTIONS)
