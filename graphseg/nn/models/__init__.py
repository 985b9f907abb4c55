"""Models built from the layers in :mod:`graphseg.nn.conv`, the affinity CNN and the CAM
classifiers, and the segmentation networks: RRM (thesis chapter 2), DFR (chapter 4) and
the few-shot SCL (chapter 5)."""
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
from graphseg.nn.models.dfr import DFRNet, DFROutput, build_dfr_net
from graphseg.nn.models.rrm import RRMNet, RRMOutput, build_rrm_net
from graphseg.nn.models.scl import (
    FewShotFeatures,
    SCLNet,
    SCLOutput,
    build_scl_net,
    encode_few_shot,
    few_shot_levels,
)

__all__ = ["A2GNN", "A2GNNOutput", "AffinityNet", "AffinityOutput", "CAMClassifier", "DFRNet",
           "DFROutput", "ESPNetv2Features", "FewShotFeatures", "RRMNet", "RRMOutput", "SCLNet",
           "SCLOutput", "affinity_graph", "affinity_maps", "build_dfr_net", "build_rrm_net",
           "build_scl_net", "encode_few_shot", "espnetv2_cam_classifier", "few_shot_levels",
           "load_classifier", "save_classifier", "small_cam_classifier"]
