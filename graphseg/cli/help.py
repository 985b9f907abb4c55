"""What ``graphseg COMMAND --help`` prints after the options: examples and the
formats of the files the command reads.

Kept apart from the commands' modules so that the text is written once (four
commands read the same annotation files) and from :mod:`graphseg.cli` so that
``graphseg --help`` does not load it.  Every example runs as printed; those that
name ``$SAMPLE`` use the photos bundled with graphseg (:func:`graphseg.data.sample_root`).
"""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

# the bundled sample, for examples that run as pasted
SAMPLE = ('SAMPLE=$(python -c "from graphseg.data import sample_root; '
          'print(sample_root())")')

BOXES = """\
  --boxes DIR      one file per image, named after the image's stem; the first
                   that exists of:
                   STEM.json  [{"label": 1, "box": [x1, y1, x2, y2]}, ...]
                              label: a class index, or a class name looked up in
                              --classes FILE (one name per line, line i = class i)
                              box: pixels from the top-left corner, half-open: the
                              box covers x1 <= x < x2 and y1 <= y < y2; fractional
                              corners are rounded outward (x1, y1 down, x2, y2 up)
                   STEM.txt   GrabCut's box file: one line "x1 y1 x2 y2" (half-open
                              pixels), class 1
                   STEM.xml   PASCAL VOC annotation (<object><name> a class name,
                              <bndbox> 1-based inclusive corners); needs --classes
                   A box reaching outside its image is clipped with a warning; an
                   empty one (x2 <= x1 or y2 <= y1) fails that image."""

SEED_MAPS = """\
  --scribbles DIR  STEM.png, the photo's size, one uint8 class index per pixel
  --points DIR     (greyscale or palette PNG), 255 = unlabelled, as
                   graphseg weak-labels writes them"""

TAGS = """\
  --tags FILE|DIR  one JSON file mapping every stem to its tags,
                     {"2007_000032": [1, 15], "cat_01": ["cat"]}
                   or a folder of STEM.json files, each {"tags": [1, 15]};
                   tags are class indices, or names looked up in --classes FILE"""

ANNOTATIONS = "annotation files (one kind per run):\n" + "\n".join((BOXES, SEED_MAPS, TAGS))

EPILOGS = {
    "demo": """\
examples:
  graphseg demo                       # the three bundled GrabCut photos, ./graphseg-demo/
  graphseg demo --limit 1 --features colour --epochs 20 20 --out demo-quick

It reads nothing but the sample bundled with graphseg: GrabCut photos, their
boxes (STEM.txt) and scribbles (STEM.png), and the ground-truth masks.""",

    "info": """\
examples:
  graphseg info
  graphseg info --json > versions.json""",

    "weak-labels": f"""\
examples:
  {SAMPLE}
  graphseg weak-labels --from $SAMPLE/msrc_v2 --split val --kind boxes --out weak/boxes
  graphseg weak-labels --from $SAMPLE/msrc_v2 --split val --kind scribbles \\
      --length-ratio 0.5 --out weak/scribbles --seed 0
  graphseg weak-labels --from $SAMPLE/grabcut --kind tags --out weak/tags

input: a dataset folder: PASCAL VOC (JPEGImages/, SegmentationClass/,
ImageSets/Segmentation/SPLIT.txt), MSRC-v2 (images/, labels/, classes.txt,
splits/SPLIT.txt), GrabCut (images/, masks/, boxes/) or images/ + masks/.

output, one file per image in the formats graphseg seeds and propagate read:
  boxes      STEM.json [{{"label": 1, "box": [x1, y1, x2, y2], "name": ...}}]
             (half-open pixels), or VOC STEM.xml with --format xml
  points,    STEM.png, uint8 class index per pixel, 255 = unlabelled
  scribbles  (VOC palette)
  tags       STEM.json {{"tags": [1, 15], "names": [...]}}""",

    "evaluate": f"""\
examples:
  {SAMPLE}
  graphseg propagate --images $SAMPLE/grabcut/images --boxes $SAMPLE/grabcut/boxes \\
      --out masks/ --features colour --epochs 5 5
  graphseg evaluate --pred masks/ --gt $SAMPLE/grabcut
  graphseg evaluate --pred pred/ --gt VOCdevkit/VOC2012 --split val.txt --json scores.json

files:
  --pred DIR  STEM.png class-index maps (255 = no prediction), as graphseg
              propagate writes them
  --gt DIR    STEM.png label maps (255 = ignore), or a dataset root: its labels/
              (MSRC-v2), SegmentationClass/ (VOC) or masks/ (GrabCut, 0/255 read
              as background/object); its classes.txt names the classes""",

    "visualize": f"""\
examples:
  {SAMPLE}
  graphseg visualize --image $SAMPLE/grabcut/images/llama.jpg \\
      --seeds $SAMPLE/grabcut/scribbles1/llama.png \\
      --gt $SAMPLE/grabcut/masks/llama.png --binary-gt --out llama_panels.png
  graphseg visualize --image photo.jpg --boxes boxes/photo.json --pred masks/photo.png \\
      --classes classes.txt --out photo_panels.png

files:
  --boxes FILE  STEM.json [{{"label": 1, "box": [x1, y1, x2, y2]}}] (half-open pixels,
                fractional corners rounded outward), or VOC STEM.xml with --classes
  --seeds FILE  scribbles or points: uint8 class index per pixel, 255 = unlabelled
  --pred, --gt  uint8 class-index PNGs (255 = ignore); --binary-gt reads 0/255 masks""",

    "seeds": f"""\
examples:
  {SAMPLE}
  graphseg seeds --images $SAMPLE/grabcut/images --boxes $SAMPLE/grabcut/boxes --out seeds/
  graphseg seeds --images $SAMPLE/grabcut/images --scribbles $SAMPLE/grabcut/scribbles1 \\
      --out seeds-scribbles/
  graphseg seeds --images photos/ --tags tags.json --classes classes.txt --out seeds-tags/
      # trains a CAM classifier first, saved as seeds-tags/cam.pt

output: OUT/STEM.png, uint8 class index per pixel, 255 = unknown (VOC palette).

{ANNOTATIONS}""",

    "propagate": f"""\
examples:
  {SAMPLE}
  graphseg propagate --images $SAMPLE/grabcut/images --boxes $SAMPLE/grabcut/boxes \\
      --out masks/ --gt $SAMPLE/grabcut
  graphseg propagate --images $SAMPLE/grabcut/images --scribbles $SAMPLE/grabcut/scribbles1 \\
      --out masks-scribbles/ --features colour --epochs 20 20    # a quick try
  graphseg propagate --images photos/ --tags tags.json --classes classes.txt --out masks/

output: OUT/STEM.png (uint8 class index, VOC palette), OUT/instances/STEM.png for
boxes (16-bit, i + 1 = the instance of the file's box i), OUT/probs/STEM.npz with
--save-probs, OUT/manifest.json (arguments, versions, every image's status).

{ANNOTATIONS}""",

    "train-affinity": f"""\
examples:
  {SAMPLE}
  graphseg seeds --images $SAMPLE/grabcut/images --boxes $SAMPLE/grabcut/boxes --out seeds/
  graphseg train-affinity --images $SAMPLE/grabcut/images --seeds seeds/ --out affinity.pt
  torchrun --nproc_per_node 2 -m graphseg train-affinity --images photos/ --seeds seeds/ \\
      --out affinity.pt
  graphseg propagate --images photos/ --boxes boxes/ --affinity affinity.pt --out masks/

files:
  --seeds DIR  STEM.png seed maps, uint8 class index per pixel, 255 = unknown, as
               graphseg seeds writes them
  --out CKPT   the checkpoint, written after every epoch; the same command again
               resumes from it""",

    "train": f"""\
examples:
  {SAMPLE}
  graphseg weak-labels --from $SAMPLE/msrc_v2 --split train --kind tags --out tags/
  graphseg train rrm --images $SAMPLE/msrc_v2/images --tags tags/ \\
      --classes $SAMPLE/msrc_v2/classes.txt --out rrm-run/
  graphseg propagate --images photos/ --tags tags.json --classes classes.txt --out pseudo/
  graphseg train two-step --images photos/ --labels pseudo/ --out two-step-run/
  graphseg weak-labels --from $SAMPLE/msrc_v2 --kind scribbles --out scribbles/
  graphseg train dfr --images $SAMPLE/msrc_v2/images --scribbles scribbles/ \
      --classes $SAMPLE/msrc_v2/classes.txt --set radius=3 --out dfr-run/
  torchrun --nproc_per_node 2 -m graphseg train rrm --images photos/ --tags tags.json \\
      --out rrm-run/

'graphseg train METHOD --help' lists a method's options.

files:
  --out RUN     RUN/checkpoint.pt (after every epoch; the same command again
                continues from it), RUN/model.pt (for graphseg predict),
                RUN/train.json (settings, versions, loss and val mIoU per epoch)
  --labels DIR  STEM.png label maps, uint8 class index per pixel, 255 = ignored,
                as graphseg propagate writes them

{TAGS}""",

    "predict": """\
examples:
  graphseg predict --model rrm-run/ --images photos/ --out masks/
  graphseg predict --model rrm-run/model.pt --images val/ --out masks/ --crf final \\
      --scales 0.75 1 1.25 --flip --gt val-labels/

output: OUT/STEM.png (uint8 class index, VOC palette), OUT/probs/STEM.npz with
--save-probs, OUT/manifest.json (arguments, the model, every photo's status).""",

    "few-shot": """\
examples:
  graphseg few-shot --support my-object/ --images photos/ --out masks/
  graphseg train scl --images photos/ --labels labels/ --classes classes.txt \\
      --background 0 --fold 0 --out scl-run/
  graphseg few-shot --support my-object/ --images photos/ --out masks/ \\
      --model scl-run/ --refine crf --gt photo-masks/

files:
  --support DIR   N.jpg + N.png (FSS-1000), or DIR/images/N.jpg + DIR/masks/N.png;
                  a mask is the object above 127 (0/255), or 1 on a 0/1 map
output: OUT/STEM.png (uint8, 255 = object, 0 = background), OUT/manifest.json
(arguments, the model, the support's digest, every photo's status).""",
}


def description(name: str, summary: str, docstring: str) -> str:
    """The description of ``graphseg NAME --help``: the one-line summary, then the
    command module's docstring after its title line, in plain text."""
    body = (docstring or "").strip().split("\n\n", 1)  # the title may take two lines
    text = body[1].strip() if len(body) > 1 else ""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)  # :func:`~a.b` -> a.b
    text = text.replace("``", "")
    if summary[1:2].islower():  # not "mIoU"
        summary = summary[0].upper() + summary[1:]
    first = textwrap.fill(summary + ".", 79)
    return f"{first}\n\n{text}" if text else first


def binary_note(flag: str, folder: Path) -> str:
    """The line a command prints when it reads a folder as 0/255 object masks."""
    return (f"{flag} {folder}: 0/255 object masks (every file holds only 0 and 255), "
            "scored as object (255) vs background (0)")
