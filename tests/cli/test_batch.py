import numpy as np

from graphseg.cli.batch import Interrupted, load_manifest, score_folder
from graphseg.data import write_label_png


def test_gt_folder_of_0_255_masks_scores_the_object(tmp_path, capsys):
    mask = np.zeros((6, 8), np.uint8)
    mask[1:4, 2:6] = 255
    write_label_png(tmp_path / "gt" / "a.png", mask)
    write_label_png(tmp_path / "out" / "a.png", (mask > 0).astype(np.uint8))
    confusion = score_folder(["a", "missing"], tmp_path / "out", tmp_path / "gt", 2)
    assert confusion.iou().tolist() == [1.0, 1.0] and confusion.pixels == 48
    assert "0/255 object masks" in capsys.readouterr().out


def test_manifest_of_an_earlier_run(tmp_path):
    path = tmp_path / "manifest.json"
    assert load_manifest(path) == {}
    path.write_text('{"images": {"a": {"status": "ok"}}}')
    assert load_manifest(path)["images"]["a"]["status"] == "ok"
    path.write_text('{"images": ')  # hand-edited into invalid JSON
    assert load_manifest(path) == {}


def test_interrupted_catches_only_ctrl_c():
    with Interrupted() as caught:
        raise KeyboardInterrupt
    assert caught.caught
    try:
        with Interrupted() as other:
            raise ValueError("not ours")
    except ValueError:
        assert not other.caught
    else:
        raise AssertionError("a ValueError must go through")
