import sys

from fader_desktop.cli import main

sys.exit(main())
