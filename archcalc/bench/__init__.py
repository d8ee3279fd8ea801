"""The benchmark: the protocol (models x optimizers, results on disk) and the training loop."""
