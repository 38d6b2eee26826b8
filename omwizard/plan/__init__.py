"""The plan: the model of a cluster, its validation, and its YAML form."""
