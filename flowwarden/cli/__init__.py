"""The ``flowwarden`` command: arguments in, the layers called, results printed.

Nothing below this package imports it: the CLI is the top layer.
"""

from flowwarden.cli.app import main

__all__ = ["main"]
