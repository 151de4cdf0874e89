"""maskae: face-mask removal with convolutional denoising autoencoders (JAX / Flax Linen)."""
