"""Scalar draws from a `random.Random` that skip `randrange`: the hot path of every record.

`random.randint` and `random.choice` go through `randrange`, which costs about ten times a
`random()` call; a scene and its caption take some forty draws.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any


def randint(rng: random.Random, low: int, high: int) -> int:
  """Uniform in low..high, both included."""
  return low + int(rng.random() * (high - low + 1))


def choice(rng: random.Random, options: Sequence[Any]) -> Any:
  return options[int(rng.random() * len(options))]
