"""lossevo: neural loss function search for image classifiers."""

__version__ = "0.1.0"
