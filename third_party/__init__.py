"""Dataset builders and other code kept in the form its upstream tools (e.g. `tfds build`) expect."""
