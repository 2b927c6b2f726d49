"""Dream: a world model learned from every stored episode (first step: the model and its k-step error)."""
