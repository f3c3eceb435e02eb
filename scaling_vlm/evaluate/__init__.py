"""Evaluation of trained models: zero-shot classification, image-text retrieval, MaMMUT
captioning, and every milestone checkpoint of a run into its results table
(`python -m scaling_vlm.evaluate`)."""
