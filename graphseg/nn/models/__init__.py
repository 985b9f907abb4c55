"""Models built from the layers in :mod:`graphseg.nn.conv`, the affinity CNN and the CAM
classifiers, and the RRM network."""
from graphseg.nn.models.a2gnn import A2GNN, A2GNNOutput
from graphseg.nn.models.affinity_net import (
    AffinityNet,
    AffinityOutput,
    affinity_graph,
    affinity_maps,
)
from graphseg.nn.models.cam import (
    CAMClassifier,
    ESPNetv2Features,
    espnetv2_cam_classifier,
    load_classifier,
    save_classifier,
    small_cam_classifier,
)
from graphseg.nn.models.rrm import (
    RRM_BACKBONES,
    RRMNet,
    RRMOutput,
    build_rrm_backbone,
    build_rrm_net,
)

__all__ = ["A2GNN", "A2GNNOutput", "AffinityNet", "AffinityOutput", "CAMClassifier",
           "ESPNetv2Features", "RRMNet", "RRMOutput", "RRM_BACKBONES", "affinity_graph",
           "affinity_maps", "build_rrm_backbone", "build_rrm_net", "espnetv2_cam_classifier",
           "load_classifier", "save_classifier", "small_cam_classifier"]
