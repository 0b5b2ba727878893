"""Train one loss: python train.py loss=neuroloss1 [group=option ...] [key=value ...]

See conf/train.yaml for every knob and README.md for examples.
"""

from lossevo.cli.apps import train

if __name__ == "__main__":
    train()
