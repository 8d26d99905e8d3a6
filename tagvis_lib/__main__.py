"""``python -m tagvis_lib`` runs the ``tagvis`` command (also under torchrun)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
