"""graphseg weak-labels / evaluate / visualize."""
import json
import re
import shutil

import numpy as np
from PIL import Image

from graphseg.cli import main
from graphseg.data import read_boxes_json, read_seeds, read_tags_json, sample_root, write_label_png
from graphseg.utils.io import read_image


def test_weak_labels_every_kind_on_the_sample(tmp_path, capsys):
    root = sample_root() / "msrc_v2"
    for kind in ("boxes", "points", "scribbles", "tags"):
        assert main(["weak-labels", "--from", str(root), "--split", "val", "--kind", kind,
                     "--out", str(tmp_path / kind), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "precision 100.000%" in out
    assert read_boxes_json(tmp_path / "boxes" / "1_16_s.json")[:, 0].tolist() == [3]
    assert read_tags_json(tmp_path / "tags" / "16_1_s.json") == (20, 22)  # dog, boat
    assert set(np.unique(read_seeds(tmp_path / "scribbles" / "1_16_s.png", 23))) == {1, 3, 255}
    # seeded: the same command gives the same files
    main(["weak-labels", "--from", str(root), "--split", "val", "--kind", "scribbles",
          "--out", str(tmp_path / "again"), "--seed", "1"])
    for name in ("1_16_s", "7_21_s"):
        np.testing.assert_array_equal(read_seeds(tmp_path / "again" / f"{name}.png"),
                                      read_seeds(tmp_path / "scribbles" / f"{name}.png"))
    assert main(["weak-labels", "--from", str(sample_root() / "grabcut"), "--kind", "boxes",
                 "--format", "xml", "--out", str(tmp_path / "xml")]) == 0
    assert "<name>object</name>" in (tmp_path / "xml" / "llama.xml").read_text()


def test_evaluate_reports_every_bad_file_and_exits_1(tmp_path, capsys):
    gt_dir = sample_root() / "msrc_v2"
    pred = tmp_path / "pred"
    for name in ("1_16_s", "7_21_s", "16_1_s"):
        label = read_seeds(gt_dir / "labels" / f"{name}.png")
        write_label_png(pred / f"{name}.png", label)
    write_label_png(pred / "4_30_s.png", np.zeros((5, 5), np.uint8))  # wrong size
    bad = read_seeds(gt_dir / "labels" / "19_24_s.png").copy()
    bad[0, 0] = 40
    write_label_png(pred / "19_24_s.png", bad)  # class id >= 23
    write_label_png(pred / "stranger.png", np.zeros((5, 5), np.uint8))  # no ground truth
    status = main(["evaluate", "--pred", str(pred), "--gt", str(gt_dir),
                   "--json", str(tmp_path / "r.json")])
    captured = capsys.readouterr()
    assert status == 1
    assert "4_30_s: prediction is 5x5 but ground truth is" in captured.err
    assert "19_24_s: prediction holds class ids [40] >= num_classes (23)" in captured.err
    assert "stranger:" in captured.err and "no such file" in captured.err
    assert "3 of 6 images failed" in captured.err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["images"] == 3 and report["miou"] == 1.0 and len(report["failed"]) == 3
    assert report["per_class_iou"]["cow"] == 1.0 and report["per_class_iou"]["horse"] is None
    assert re.search(r"^mIoU +100.00$", captured.out, re.M)


def test_weak_labels_and_evaluate_on_msrc_val(data_kit, tmp_path, capsys):
    root = data_kit / "msrc_v2"
    assert main(["weak-labels", "--from", str(root), "--split", "val", "--kind", "points",
                 "--out", str(tmp_path / "points"), "--seed", "0"]) == 0
    assert len(list((tmp_path / "points").glob("*.png"))) == 59
    # seeds as a prediction: every labelled pixel is right, the rest are misses
    assert main(["evaluate", "--pred", str(tmp_path / "points"), "--gt", str(root),
                 "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["images"] == 59 and 0 < report["pixel_accuracy"] < 0.01


def test_visualize_command_on_grabcut(tmp_path, capsys):
    root = sample_root() / "grabcut"
    shutil.copy(root / "masks" / "llama.png", tmp_path / "gt.png")
    (tmp_path / "classes.txt").write_text("background\nobject\n")
    assert main(["weak-labels", "--from", str(root), "--kind", "boxes",
                 "--out", str(tmp_path / "boxes")]) == 0
    out = tmp_path / "llama_panels.png"
    assert main(["visualize", "--image", str(root / "images" / "llama.jpg"),
                 "--boxes", str(tmp_path / "boxes" / "llama.json"), "--gt",
                 str(tmp_path / "gt.png"), "--binary-gt", "--classes",
                 str(tmp_path / "classes.txt"), "--out", str(out)]) == 0
    picture = read_image(out)
    width = Image.open(root / "images" / "llama.jpg").width
    assert picture.shape[1] == 3 * width + 2 * 6


def test_evaluate_reads_a_folder_of_0_255_masks_as_object_vs_background(tmp_path, capsys):
    mask = np.zeros((6, 8), np.uint8)
    mask[1:4, 2:6] = 255
    for name in ("a", "b"):
        write_label_png(tmp_path / "gt" / f"{name}.png", mask)
        write_label_png(tmp_path / "pred" / f"{name}.png", (mask > 0).astype(np.uint8))
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--json", str(tmp_path / "r.json")]) == 0
    assert "0/255 object masks" in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["per_class_iou"] == {"0": 1.0, "1": 1.0} and report["pixels"] == 2 * 48
    # one class-index map in the folder: 255 is "ignore" in all of them
    write_label_png(tmp_path / "gt" / "c.png", np.where(mask > 0, 255, 1).astype(np.uint8))
    write_label_png(tmp_path / "pred" / "c.png", np.ones((6, 8), np.uint8))
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--json", str(tmp_path / "r.json")]) == 0
    assert "0/255" not in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["pixels"] == 3 * 48 - 3 * 12


def test_visualize_shows_a_0_255_mask_as_object(tmp_path, capsys):
    root = sample_root() / "grabcut"
    shutil.copy(root / "masks" / "llama.png", tmp_path / "gt.png")  # values 0 and 255
    common = ["visualize", "--image", str(root / "images" / "llama.jpg"),
              "--gt", str(tmp_path / "gt.png")]
    assert main([*common, "--binary-gt", "--out", str(tmp_path / "forced.png")]) == 0
    assert main([*common, "--out", str(tmp_path / "detected.png")]) == 0
    assert "0/255 object mask" in capsys.readouterr().out
    assert np.array_equal(read_image(tmp_path / "forced.png"),
                          read_image(tmp_path / "detected.png"))


def test_evaluate_merge_background_scores_a_merged_model_on_its_own_classes(tmp_path, capsys):
    # what a model trained with --background building grass ... predicts: every stuff
    # pixel as building (0); scored on MSRC-v2's own labels only with the merge
    gt_dir = sample_root() / "msrc_v2"
    stuff = [0, 1, 2, 6, 7, 9, 18]  # building grass tree sky mountain water road
    pred = tmp_path / "pred"
    for name in ("1_16_s", "7_21_s", "16_1_s"):
        label = read_seeds(gt_dir / "labels" / f"{name}.png").copy()
        label[np.isin(label, stuff)] = 0
        write_label_png(pred / f"{name}.png", label)
    for flags, miou in (([], None), (["--merge-background"], 1.0)):
        assert main(["evaluate", "--pred", str(pred), "--gt", str(gt_dir),
                     "--json", str(tmp_path / "r.json"), *flags]) == 0
        report = json.loads((tmp_path / "r.json").read_text())
        if miou is None:
            assert report["miou"] < 1.0 and report["per_class_iou"]["grass"] == 0.0
        else:
            assert report["miou"] == miou and report["per_class_iou"]["grass"] is None
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt_dir), "--background", "none",
                 "--merge-background"]) == 2
    assert "--merge-background needs background classes" in capsys.readouterr().err
