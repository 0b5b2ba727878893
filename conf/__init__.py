"""lossevo's Hydra configs, shipped inside the package (search path ``pkg://lossevo.conf``)."""
