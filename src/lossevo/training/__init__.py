"""Training one loss: the surrogate, its LightningModules (one model, or K stacked), stop rules, schedules."""
