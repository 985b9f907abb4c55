"""Training loops over datasets.

* :func:`train_affinity_net`, :func:`save_affinity_net`, :func:`load_affinity_net`:
  the affinity CNN of thesis section 3.3.3 on seed maps (seeded, checkpointed,
  resumable, DistributedDataParallel under ``torchrun``).
* :func:`train_cam_classifier`: a CAM classifier on image-level tags (Eq. 2.14).
"""
from graphseg.training.affinity import load_affinity_net, save_affinity_net, train_affinity_net
from graphseg.training.cam import train_cam_classifier

__all__ = ["load_affinity_net", "save_affinity_net", "train_affinity_net",
           "train_cam_classifier"]
