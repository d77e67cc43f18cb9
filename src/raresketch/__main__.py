"""``python -m raresketch`` is the ``raresketch`` command."""
from .cli import main

main()
