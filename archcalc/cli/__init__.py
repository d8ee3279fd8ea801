"""The ``archcalc`` command line: parse options, call the package, hand results to render."""
# the import order is the order of the commands in --help

from archcalc.cli import spec  # noqa: F401, I001
from archcalc.cli import data  # noqa: F401
from archcalc.cli import bench  # noqa: F401
from archcalc.cli import sweep  # noqa: F401
from archcalc.cli import imports  # noqa: F401
from archcalc.cli.common import app

__all__ = ["app"]
