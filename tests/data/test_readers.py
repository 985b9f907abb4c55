"""Readers on the bundled sample, the data kit, a written VOC folder and Planetoid."""
import numpy as np
import pytest
from PIL import Image

from graphseg.data import (
    MSRC_STUFF,
    GrabCutDataset,
    MaskFolderDataset,
    MSRCDataset,
    Sample,
    VOCDataset,
    boxes_from_labels,
    detect_layout,
    load_planetoid,
    open_dataset,
    sample_root,
    write_voc_sample,
)


def test_bundled_sample_reads_without_the_kit():
    grabcut = open_dataset(sample_root() / "grabcut")
    assert isinstance(grabcut, GrabCutDataset) and grabcut.names == ["llama", "memorial", "teddy"]
    llama = grabcut.load("llama")
    assert llama.image.shape == (371, 513, 3) and set(np.unique(llama.label)) == {0, 1}
    assert llama.boxes.tolist() == [[1, 112, 106, 370, 371]] and llama.tags == (1,)
    scribbles = grabcut.scribbles("llama", 2)
    assert set(np.unique(scribbles)) == {0, 1, 255}
    msrc = open_dataset(sample_root() / "msrc_v2", split="val")
    assert len(msrc) == 5 and msrc.class_names[3] == "cow"
    assert [msrc.class_names[c] for c in msrc.background_classes] == list(MSRC_STUFF)
    cow = msrc.load("1_16_s")
    assert cow.tags == (3,)  # grass is stuff, so only the cow is tagged


def test_msrc_val_split_from_the_kit(data_kit):
    dataset = MSRCDataset(data_kit / "msrc_v2", "val")
    assert len(dataset) == 59 and len(dataset.class_names) == 23
    sample = dataset[0]
    assert sample.label.dtype == np.uint8 and sample.label.shape == sample.image.shape[:2]
    assert ((sample.label < 23) | (sample.label == 255)).all()


def test_grabcut_kit_box_reaching_the_border_needs_no_clip(data_kit, recwarn):
    dataset = GrabCutDataset(data_kit / "grabcut")
    assert len(dataset) == 13
    for sample in dataset:
        x1, y1, x2, y2 = sample.boxes[0, 1:]
        assert 0 <= x1 < x2 <= sample.shape[1] and 0 <= y1 < y2 <= sample.shape[0]
        # the object lies in its box
        ys, xs = np.nonzero(sample.label)
        assert (xs >= x1).mean() > 0.99 and (ys < y2).mean() > 0.99
    assert not [w for w in recwarn if "clipped" in str(w.message)]


def test_voc_folder_written_then_read_back(tmp_path):
    source = open_dataset(sample_root() / "msrc_v2", "val").load("7_21_s")
    label = np.where(source.label == 11, 7, 0).astype(np.uint8)  # car -> VOC car
    label[source.label == 255] = 255
    instances = (label == 7).astype(np.uint8)
    boxes = boxes_from_labels(label, instances)
    sample = Sample("car", source.image, label, instances, boxes)
    write_voc_sample(tmp_path, sample)
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("car\n")
    assert detect_layout(tmp_path) == "voc"
    back = VOCDataset(tmp_path, "val")[0]
    np.testing.assert_array_equal(back.label, label)
    np.testing.assert_array_equal(back.instances, instances)
    np.testing.assert_array_equal(back.boxes, boxes)
    assert back.tags == (7,)
    assert Image.open(tmp_path / "SegmentationClass" / "car.png").mode == "P"


def test_plain_folder_with_binary_masks_and_mismatch_error(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    mask = np.zeros((4, 5), np.uint8)
    mask[1:3, 1:4] = 255
    Image.fromarray(mask).save(tmp_path / "masks" / "a.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / "b.jpg")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "masks" / "b.png")
    dataset = MaskFolderDataset(tmp_path, binary=True)
    assert dataset.load("a").label.sum() == 6 and dataset.load("a").tags == (1,)
    with pytest.raises(ValueError, match=r"b.png: label map is 4x5 but b.jpg is 4x4"):
        dataset.load("b")
    with pytest.raises(ValueError, match="not a known dataset layout"):
        detect_layout(tmp_path / "images")


def test_planetoid_from_a_copy_of_the_kit(data_kit, tmp_path):
    dataset = load_planetoid(data_kit / "planetoid", "Cora", tmp_path)
    data = dataset[0]
    assert data.num_nodes == 2708 and dataset.num_classes == 7
    assert int(data.train_mask.sum()) == 140 and int(data.test_mask.sum()) == 1000
    assert not (data_kit / "planetoid" / "Cora" / "processed").exists()


def test_suffixes_are_matched_in_any_case(tmp_path):
    """Cameras write a.JPG, some tools b.PNG or c.Json: every lookup by suffix finds them."""
    from graphseg.data import read_boxes, read_tags
    from graphseg.data.dataset import find_file, lookup, stems
    from graphseg.data.layouts import binary_folder

    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "a.JPG", format="JPEG")
    Image.fromarray(np.full((4, 6), 255, np.uint8)).save(tmp_path / "b.PNG")
    (tmp_path / "c.Json").write_text('[{"label": 1, "box": [0, 0, 3, 2]}]')
    (tmp_path / "d.TXT").write_text("1 1 4 3\n")
    (tmp_path / "e.JSON").write_text('{"tags": [2]}')
    assert stems(tmp_path) == ["a", "b"]
    assert find_file(tmp_path, "a") == tmp_path / "a.JPG"
    assert find_file(tmp_path, "b", (".png",)) == tmp_path / "b.PNG"
    assert lookup(tmp_path, "B", (".png",)) is None  # the stem is matched exactly
    with pytest.raises(FileNotFoundError, match=r"z\{\.png\}: no such file"):
        find_file(tmp_path, "z", (".png",))
    assert read_boxes(tmp_path, "c").tolist() == [[1, 0, 0, 3, 2]]
    assert read_boxes(tmp_path, "d").tolist() == [[1, 1, 1, 4, 3]]  # GrabCut's STEM.txt
    assert read_tags(tmp_path, ["e"]) == {"e": (2,)}
    assert binary_folder(tmp_path)  # b.PNG: 0/255 only
    (tmp_path / "f.png").write_bytes((tmp_path / "b.PNG").read_bytes())
    assert find_file(tmp_path, "f", (".png",)) == tmp_path / "f.png"  # a file added later
