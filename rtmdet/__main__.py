"""``python -m rtmdet COMMAND ...`` (and ``torchrun -m rtmdet train ...``): the ``rtmdet`` CLI."""
import sys

from .commands.main import main

sys.exit(main())
