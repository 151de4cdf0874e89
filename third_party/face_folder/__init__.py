"""face_folder: a manually downloaded folder of face photos as a TFDS dataset (see the builder)."""
