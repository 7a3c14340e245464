"""The ``arbot`` command line: one module per command group, heavy imports inside commands.

``arbot --help`` imports nothing but typer and these small modules, so it stays fast.
"""
