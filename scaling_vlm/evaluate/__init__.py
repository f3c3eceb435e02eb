"""Evaluation of trained models: zero-shot classification (more tasks and checkpoint
evaluation arrive with the evaluation work)."""
