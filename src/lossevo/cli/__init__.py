"""The entry layer: the Hydra apps, what they run, and the ``lossevo`` command."""
