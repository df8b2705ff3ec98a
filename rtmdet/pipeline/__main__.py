"""``python -m rtmdet.pipeline list|check|params|dvc|resolve`` (see :mod:`rtmdet.pipeline.experiments`)."""
import sys

from .experiments import main

sys.exit(main())
