"""lossevo: neural loss function search for image classifiers."""

from lossevo import _moved

__version__ = "0.1.0"

_moved.install()  # configs and run folders of lossevo 0.1 name modules by their old paths
