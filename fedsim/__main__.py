"""`python -m fedsim ...` is the `fedsim` command."""

import sys

from fedsim.cli.app import main

sys.exit(main(sys.argv[1:]))
