"""Progress of one photo through :func:`~graphseg.propagation.propagate`'s stages.

A progress reporter is any callable ``progress(stage, done, total)``.
:func:`~graphseg.propagation.propagate` calls it with ``done = 0`` when a stage
starts and ``done = total`` when it ends; the ``"training"`` stage also after
every epoch (``total`` = both stages' epochs).  The stages, in order:

============== ============================================================
``"seeds"``    seeds from the annotation (GrabCut, SLIC expansion, CAM)
``"features"`` the node features (ESPNetv2, colour, or the affinity network)
``"graph"``    the photo's graph and its seed nodes
``"training"`` the per-image GNN's epochs (``"random walk"`` with
               ``propagator="random-walk"``)
``"crf"``      fusion and the dense CRF (only when one of them runs)
============== ============================================================

:class:`StageBar` shows them as one tqdm bar on stderr.  Without a reporter
nothing is called (the library is quiet by default).
"""
from __future__ import annotations

from typing import Callable, Optional

Progress = Callable[[str, int, int], None]
STAGES = ("seeds", "features", "graph", "training", "crf")


class StageBar:
    """A :data:`Progress` reporter: one tqdm bar on stderr, reset at every stage
    and labelled ``"{desc}: {stage}"``; tqdm redraws it at most every
    ``mininterval`` seconds, so per-epoch calls stay cheap.

    Args:
        desc (str, optional): what the bar is about, e.g. the photo's name.
            (default: ``""``)
        position (int, optional): tqdm's line, e.g. 1 below a bar over images.
            (default: ``None``)
        leave (bool, optional): keep the finished bar on screen.
            (default: ``False``)
        mininterval (float, optional): seconds between redraws.
            (default: ``0.5``)

    Example:
        >>> from graphseg.propagation.progress import StageBar
        >>> bar = StageBar("teddy")
        >>> bar("training", 0, 100); bar("training", 100, 100); bar.close()
    """

    def __init__(self, desc: str = "", position: Optional[int] = None, leave: bool = False,
                 mininterval: float = 0.5) -> None:
        self.desc, self.position, self.leave = desc, position, leave
        self.mininterval = mininterval
        self.stage: Optional[str] = None
        self._bar = None

    def describe(self, desc: str) -> None:
        """Label the next stages with ``desc`` (e.g. the next photo)."""
        self.desc, self.stage = desc, None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.stage = stage
            label = f"{self.desc}: {stage}" if self.desc else stage
            unit = "epoch" if stage == "training" else "step"
            if self._bar is None:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, desc=label, unit=unit, position=self.position,
                                 leave=self.leave, mininterval=self.mininterval,
                                 dynamic_ncols=True)
            else:
                self._bar.set_description(label, refresh=False)
                self._bar.unit = unit
                self._bar.reset(total=total)  # redraws
        if done >= total:
            self._bar.n = done
            self._bar.refresh()
        elif done > self._bar.n:
            self._bar.update(done - self._bar.n)  # redraws when mininterval has passed

    def close(self) -> None:
        """Remove the bar (or leave it, with ``leave``)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self.stage = None
