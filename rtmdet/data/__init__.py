"""Datasets, augmentation and loaders (``rtmdet.data.loader`` is the entry point for training).

Real COCO / DOTA folders and the embedded synthetic sets share one code path: the synthetic
generator writes the exact on-disk formats, so everything downstream is tested on real formats.
The two-stage switch (which epochs use Mosaic/MixUp) is decided in ``stages``; DOTA patch
splitting and the merge of patch detections back to full images live in ``dota_patches``.
"""
