"""Plumbing with no knowledge of detection: atomic file writes and ``weights_only`` checkpoint
reads (``io``), strict YAML mapping reads (``yaml_io``) and the machine/library description
stored with every measurement (``envinfo``). The bottom layer: imports nothing of ours.
"""
