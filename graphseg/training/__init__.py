"""Training loops over datasets, on one engine.

* :func:`fit`: the engine: epochs, batches, gradient accumulation, learning-rate
  schedules, AMP, atomic checkpoints with exact resume, seeding, DistributedDataParallel
  under ``torchrun``, and ``on_step`` / ``on_epoch_end`` hooks.
* :func:`train_affinity_net`, :func:`save_affinity_net`, :func:`load_affinity_net`:
  the affinity CNN of thesis section 3.3.3 on seed maps.
* :func:`train_cam_classifier`: a CAM classifier on image-level tags (Eq. 2.14).
"""
from graphseg.training.affinity import load_affinity_net, save_affinity_net, train_affinity_net
from graphseg.training.cam import train_cam_classifier
from graphseg.training.engine import fit

__all__ = ["fit", "load_affinity_net", "save_affinity_net", "train_affinity_net",
           "train_cam_classifier"]
