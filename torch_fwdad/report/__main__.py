"""python -m torch_fwdad.report: the same as `python -m torch_fwdad report`."""

import sys

from . import main

sys.exit(main())
