"""Search for a loss function: python evolve.py [group=option ...] [key=value ...]

See conf/evolve.yaml for every knob and README.md for examples.
"""

from lossevo.cli.apps import evolve

if __name__ == "__main__":
    evolve()
