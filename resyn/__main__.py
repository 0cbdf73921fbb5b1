"""``python -m resyn`` is the ``resyn`` command."""

from resyn.cli import main

main()
