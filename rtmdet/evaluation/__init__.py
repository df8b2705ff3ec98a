"""Scoring a trained model: COCO box AP with faster-coco-eval/pycocotools (``coco``), mask AP of
RTMDet-Ins (``segm``), the DOTA VOC07 rotated mAP and Task 1 files (``dota_metric``) and the DOTA
patch flow — patch inference → merge → mAP (``dota_patches``). Results are plain JSON written
atomically next to the checkpoint.
"""
