"""The ``rtmdet`` command line: ``main`` builds the parser, and each command lives in its own
module here exposing ``add_arguments(parser)`` and ``run(args) -> int``. The top layer: commands
parse arguments, call the library layers below and print one line per result or error.
"""
