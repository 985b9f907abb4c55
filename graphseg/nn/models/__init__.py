"""Models built from the layers in :mod:`graphseg.nn.conv`, the affinity CNN and the CAM
classifiers."""
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

__all__ = ["A2GNN", "A2GNNOutput", "AffinityNet", "AffinityOutput", "CAMClassifier",
           "ESPNetv2Features", "affinity_graph", "affinity_maps", "espnetv2_cam_classifier",
           "load_classifier", "save_classifier", "small_cam_classifier"]
