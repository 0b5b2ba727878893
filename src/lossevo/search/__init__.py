"""The search: the driver's loop, multi-fidelity promotion, objectives and the strategies."""
