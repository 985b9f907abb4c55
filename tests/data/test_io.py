"""Image / label reading policy, atomic writes, annotation file formats."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from graphseg.data import (
    VOC_CLASSES,
    check_boxes,
    largest_first,
    read_boxes,
    read_boxes_json,
    read_classes,
    read_seeds,
    read_tags,
    read_tags_json,
    read_voc_xml,
    write_boxes_json,
    write_label_png,
    write_tags_json,
    write_voc_xml,
)
from graphseg.utils.io import atomic_open, read_image, read_label_map


def test_image_policy_converts_grey_and_rgba_rejects_16_bit(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    rgb = read_image(tmp_path / "grey.png")
    assert rgb.shape == (3, 4, 3) and (rgb == grey[..., None]).all()
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "rgba.png")[..., 0].tolist() == [[200, 200], [200, 200]]
    Image.fromarray(np.full((2, 2), 4000, np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(ValueError, match=r"deep.png: I;16.*not supported"):
        read_image(tmp_path / "deep.png")


def test_missing_and_unreadable_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg: no such file"):
        read_image(tmp_path / "nope.jpg")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="junk.png: cannot read as an image"):
        read_label_map(tmp_path / "junk.png")


def test_label_map_policy(tmp_path):
    Image.fromarray(np.array([[1, 300]], np.uint16)).save(tmp_path / "wide.png")
    with pytest.raises(ValueError, match=r"wide.png: 16-bit label map holds values in \[1, 300\]"):
        read_label_map(tmp_path / "wide.png")
    Image.fromarray(np.array([[1, 255]], np.uint16)).save(tmp_path / "ok16.png")
    assert read_label_map(tmp_path / "ok16.png").tolist() == [[1, 255]]
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "colour.png")
    with pytest.raises(ValueError, match="colour.png: label maps must be single-channel"):
        read_label_map(tmp_path / "colour.png")


def test_palette_png_round_trip_keeps_indices(tmp_path):
    label = np.array([[0, 1, 20], [255, 3, 3]], np.uint8)
    write_label_png(tmp_path / "a.png", label)
    assert Image.open(tmp_path / "a.png").mode == "P"
    assert Image.open(tmp_path / "a.png").getpalette()[3:6] == [128, 0, 0]
    np.testing.assert_array_equal(read_seeds(tmp_path / "a.png", 21), label)
    with pytest.raises(ValueError, match=r"a.png: class ids \[20\] >= num_classes \(4\)"):
        read_seeds(tmp_path / "a.png", 4)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as file:
            file.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    (tmp_path / "plain.txt").write_text("x")
    with atomic_open(tmp_path / "atomic.txt", "w") as file:
        file.write("x")
    assert (tmp_path / "atomic.txt").stat().st_mode == (tmp_path / "plain.txt").stat().st_mode


def test_boxes_json_round_trip_names_and_errors(tmp_path):
    boxes = np.array([[1, 2, 3, 10, 12], [15, 0, 0, 5, 5]])
    write_boxes_json(tmp_path / "x.json", boxes, VOC_CLASSES)
    np.testing.assert_array_equal(read_boxes_json(tmp_path / "x.json"), boxes)
    (tmp_path / "n.json").write_text(json.dumps([{"label": "person", "box": [0, 0, 4, 4]}]))
    assert read_boxes_json(tmp_path / "n.json", VOC_CLASSES)[0].tolist() == [15, 0, 0, 4, 4]
    with pytest.raises(ValueError, match="pass the classes file"):
        read_boxes_json(tmp_path / "n.json")
    (tmp_path / "e.json").write_text(json.dumps([{"label": 1, "box": [5, 0, 5, 4]}]))
    with pytest.raises(ValueError, match=r"e.json: empty box \[5, 0, 5, 4\]"):
        read_boxes_json(tmp_path / "e.json")
    (tmp_path / "c.json").write_text(json.dumps([{"label": 1, "box": [-3, 0, 25, 4]}]))
    with pytest.warns(UserWarning, match=r"c.json: box .* clipped to \[0, 0, 20, 4\]"):
        clipped = read_boxes_json(tmp_path / "c.json", shape=(10, 20))
    assert clipped.tolist() == [[1, 0, 0, 20, 4]]


def test_box_fully_outside_is_an_error():
    with pytest.raises(ValueError, match="lies outside the 10x10 image"):
        check_boxes([[1, 12, 0, 15, 5]], (10, 10), "b")


def test_float_boxes_are_rounded_outward_in_every_format(tmp_path):
    # COCO-style float corners: the smallest half-open pixel box holding the box
    (tmp_path / "f.json").write_text(json.dumps(
        [{"label": 1, "box": [10.2, 4.7, 20.3, 8.0]},
         {"label": 2, "box": [0.5, 1, 3, 2.0000001]}]))
    assert read_boxes_json(tmp_path / "f.json").tolist() == [[1, 10, 4, 21, 8],
                                                             [2, 0, 1, 3, 2]]
    (tmp_path / "g.txt").write_text("1.5 2.5 30.5 8.25")
    assert read_boxes(tmp_path, "g").tolist() == [[1, 1, 2, 31, 9]]
    (tmp_path / "v.xml").write_text(
        "<annotation><object><name>dog</name><bndbox><xmin>1.5</xmin><ymin>5</ymin>"
        "<xmax>30.5</xmax><ymax>20</ymax></bndbox></object></annotation>")
    assert read_voc_xml(tmp_path / "v.xml", VOC_CLASSES).tolist() == [[12, 0, 4, 31, 20]]
    assert check_boxes(np.array([[1, 0.4, 0.4, 0.6, 0.6]])).tolist() == [[1, 0, 0, 1, 1]]
    assert check_boxes([[1, 0, 0, 4, 4]]).dtype == np.int64
    with pytest.raises(ValueError, match="box classes must be integers"):
        check_boxes([[1.5, 0, 0, 4, 4]])


def test_largest_first_orders_by_area_ties_in_file_order():
    boxes = [[1, 0, 0, 2, 2], [2, 0, 0, 6, 6], [3, 4, 4, 6, 6], [4, 0, 0, 3, 3]]
    assert largest_first(boxes).tolist() == [1, 3, 0, 2]
    assert largest_first(np.zeros((0, 5), np.int64)).tolist() == []


def test_voc_xml_round_trip_uses_one_based_corners(tmp_path):
    boxes = np.array([[12, 0, 4, 30, 20]])
    write_voc_xml(tmp_path / "a.xml", boxes, VOC_CLASSES, (40, 50), "a.jpg")
    text = (tmp_path / "a.xml").read_text()
    assert "<xmin>1</xmin>" in text and "<name>dog</name>" in text
    np.testing.assert_array_equal(read_voc_xml(tmp_path / "a.xml", VOC_CLASSES), boxes)


def test_tags_and_classes_files(tmp_path):
    write_tags_json(tmp_path / "t.json", [3, 7], VOC_CLASSES)
    assert read_tags_json(tmp_path / "t.json") == (3, 7)
    (tmp_path / "classes.txt").write_text("bg\n\nobject\n")
    assert read_classes(tmp_path / "classes.txt") == ("bg", "object")


def test_read_boxes_takes_whichever_format_the_folder_holds(tmp_path):
    write_boxes_json(tmp_path / "a.json", [[2, 0, 0, 4, 4]])
    (tmp_path / "a.txt").write_text("1 1 3 3")  # the JSON file wins
    (tmp_path / "b.txt").write_text("1 2 30 8")  # GrabCut: class 1, clipped to the image
    write_voc_xml(tmp_path / "c.xml", [[12, 0, 4, 30, 20]], VOC_CLASSES, (40, 50), "c.jpg")
    assert read_boxes(tmp_path, "a").tolist() == [[2, 0, 0, 4, 4]]
    with pytest.warns(UserWarning, match=r"b.txt: box .* clipped"):
        assert read_boxes(tmp_path, "b", shape=(10, 20)).tolist() == [[1, 1, 2, 20, 8]]
    assert read_boxes(tmp_path, "c", VOC_CLASSES).tolist() == [[12, 0, 4, 30, 20]]
    with pytest.raises(FileNotFoundError, match="c.json: no such boxes file"):
        read_boxes(tmp_path, "c")  # without classes only JSON is tried


def test_read_tags_from_a_folder_or_one_mapping(tmp_path):
    folder = tmp_path / "tags"
    write_tags_json(folder / "a.json", [7, 3])
    write_tags_json(folder / "b.json", [1])
    assert read_tags(folder) == {"a": (3, 7), "b": (1,)}
    assert read_tags(folder, ["b", "missing"]) == {"b": (1,)}
    mapping = tmp_path / "tags.json"
    mapping.write_text(json.dumps({"a": ["dog", 3], "b": []}))
    assert read_tags(mapping, class_names=VOC_CLASSES) == {"a": (3, 12), "b": ()}
    with pytest.raises(ValueError, match=r"tags.json 'a': label 'dog' is a name"):
        read_tags(mapping)
    mapping.write_text(json.dumps({"a": 3}))
    with pytest.raises(ValueError, match=r'tags.json: expected \{"STEM": \[class'):
        read_tags(mapping)
    with pytest.raises(FileNotFoundError, match="nope: no such tags file or folder"):
        read_tags(tmp_path / "nope")


class _Payload:
    """Unpickling it would run ``exec``: a file the user was handed must not."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('RAN').write_text('pwned')",))


def test_weights_and_checkpoints_never_run_pickled_code(tmp_path, monkeypatch):
    import torch

    from graphseg.nn.backbones import load_espnetv2_voc
    from graphseg.nn.backbones.pretrained import BUNDLED_WEIGHTS
    from graphseg.utils.io import read_checkpoint

    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "evil.pth"
    torch.save({"conv.weight": torch.zeros(1), "x": _Payload()}, bad)
    with pytest.raises(ValueError, match=r"evil\.pth: not a PyTorch state dict of tensors"):
        load_espnetv2_voc(bad)
    with pytest.raises(ValueError, match=r"evil\.pth: not a graphseg CAM checkpoint \(it "
                       "holds Python objects other than tensors") as info:
        read_checkpoint(bad, "a graphseg CAM checkpoint")
    assert "\n" not in str(info.value)  # one line, not torch's paragraphs
    assert not (tmp_path / "RAN").exists()
    assert load_espnetv2_voc(BUNDLED_WEIGHTS) is not None  # the bundled file is plain tensors
