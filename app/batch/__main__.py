"""Let ``python -m app.batch`` run a batch scoring job."""

import sys

from app.batch.cli import main

if __name__ == "__main__":
    sys.exit(main())
