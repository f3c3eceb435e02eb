"""Evaluation of trained models: zero-shot classification, image-text retrieval, MaMMUT
captioning, every milestone checkpoint of a run into its results table and TensorBoard, and
one checkpoint by path (`python -m scaling_vlm.evaluate`)."""
