"""``python -m mtlneuron.training`` (the same as ``python -m mtlneuron.train``)."""
import sys

from .cli import main

sys.exit(main())
