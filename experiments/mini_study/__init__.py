"""The paper in miniature on the synthetic world (see __main__.py)."""
