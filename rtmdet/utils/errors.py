"""The one exception type for *user* mistakes.

Anything a user can cause by what they type or the files they point at (a bad config value, a
missing or corrupt file, a refused overwrite) is raised as :class:`UserError` — or a subclass —
and the CLI turns it into one ``rtmdet: error: …`` line and exit status 2. Everything else is a
bug in our code and keeps its traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; the message names the field, file or flag."""
