"""``python -m arbot`` is the same as the ``arbot`` command."""

from arbot.cli.main import entry_point

entry_point()
