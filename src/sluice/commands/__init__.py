"""The command groups of the ``sluice`` CLI, assembled by `sluice.cli`: each command parses
its options, calls one API verb and prints the result."""
