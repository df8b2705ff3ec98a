"""Compatibility shim: ``rtmdet.cli:main`` (older installs' console script, ``-m rtmdet.cli``)
is :func:`rtmdet.commands.main.main`."""
import sys

from .commands.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
