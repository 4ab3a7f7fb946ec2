"""`python -m training ...` is `fader-train ...` (also `torchrun ... -m training ...`)."""
import sys

from .cli import main

sys.exit(main())
