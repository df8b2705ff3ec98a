"""The exception types for *user* mistakes.

Anything a user can cause by what they type or the files they point at (a bad config value, a
missing or corrupt file, a refused overwrite) is raised as :class:`UserError` — or a subclass —
and the CLI turns it into one ``rtmdet: error: …`` line and exit status 2. Everything else is a
bug in our code and keeps its traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; the message names the field, file or flag."""


class CheckpointError(UserError):
    """A ``.pt`` file that cannot be used: corrupt, truncated, not a checkpoint, holding pickled
    code (refused), or weights of another architecture. The message says which."""


class DivergenceError(Exception):
    """Training produced a non-finite loss or gradient norm (:mod:`rtmdet.engine.divergence`).
    Not a typo but not a bug either: the CLI prints its one line and exits with status 3, so a
    pipeline can tell a diverged run from a bad command line (2)."""
