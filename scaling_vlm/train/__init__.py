"""Training: losses, optimisation and the train loop."""
