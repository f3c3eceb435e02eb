"""scaling-vlm: reproducing CLIP / MaMMUT scaling laws in JAX."""
