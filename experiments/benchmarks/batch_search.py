"""The largest batch that fits: double until an attempt does not fit, then bisect.

`fits(batch)` is one attempt (the benchmarks run each in a subprocess, so that an
out-of-memory error cannot poison the caller's device state). Batches stay multiples of
`multiple`, so that they split evenly over devices and micro-batches.
"""

from __future__ import annotations

from typing import Callable


def largest_batch(
    fits: Callable[[int], bool],
    *,
    start: int,
    limit: int,
    bisect_steps: int = 2,
    multiple: int = 8,
) -> tuple[int | None, list[tuple[int, bool]]]:
  """(the largest fitting batch found, or None if `start` does not fit; every attempt as
  (batch, fitted)). Doubling stops at `limit`; `bisect_steps` halvings of the gap between
  the last fit and the first failure follow."""
  if start < multiple or start % multiple:
    raise ValueError(f'start={start} must be a positive multiple of {multiple}.')
  attempts: list[tuple[int, bool]] = []

  def attempt(batch: int) -> bool:
    ok = fits(batch)
    attempts.append((batch, ok))
    return ok

  if not attempt(start):
    return None, attempts
  good, bad = start, None
  while good * 2 <= limit:
    if attempt(good * 2):
      good *= 2
    else:
      bad = good * 2
      break
  for _ in range(bisect_steps if bad else 0):
    middle = (good + bad) // 2 // multiple * multiple
    if middle <= good:
      break
    if attempt(middle):
      good = middle
    else:
      bad = middle
  return good, attempts
