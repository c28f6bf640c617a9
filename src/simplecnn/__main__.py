"""``python -m simplecnn``: the command line of the pipeline (``simplecnn.pipeline.cli``)."""

import sys

from simplecnn.pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
