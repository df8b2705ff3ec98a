"""Datasets, augmentation and loaders (``rtmdet.data.loader`` is the entry point for training).

Real COCO / DOTA folders and the embedded synthetic sets share one code path: the synthetic
generator writes the exact on-disk formats, so everything downstream is tested on real formats.
Submodules are imported on use, so ``rtmdet data synth-coco`` does not pay for torch.
"""
