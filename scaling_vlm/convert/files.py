"""open_clip checkpoint files: `.safetensors` (the hub's), and `.pt`/`.bin` torch state dicts.

safetensors are read with the `safetensors` package's numpy API, no torch needed. A torch file
is opened with `torch.load(weights_only=True)` only when torch is installed: tensors and plain
containers, never a general unpickle (a pickle that would run code is refused, not executed).
open_clip's trainer writes `{'state_dict': ..., 'epoch': ...}` with `module.` prefixes under
DDP; both are undone here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import numpy as np

SAFETENSORS = ('.safetensors',)
TORCH = ('.pt', '.pth', '.bin')


@dataclasses.dataclass(frozen=True)
class StateDict:
  tensors: dict[str, np.ndarray]
  epoch: int | None = None  # a training checkpoint's completed epochs


def read(path: str) -> StateDict:
  if not os.path.isfile(path):
    raise ValueError(f'checkpoint {path!r} does not exist.')
  if path.endswith(SAFETENSORS):
    return StateDict(_strip(SafetensorsFile(path)))
  if path.endswith(TORCH):
    return _read_torch(path)
  raise ValueError(
      f"checkpoint {path!r}: expected one of {list(SAFETENSORS + TORCH)} (open_clip's hub files "
      'are .safetensors; its trainer writes .pt).'
  )


class SafetensorsFile(Mapping):
  """A `.safetensors` file's tensors, each read when asked for (with `pread`, not a memory
  map): a large model converted tensor by tensor, popping each, is never held twice."""

  def __init__(self, path: str):
    from safetensors import safe_open  # pylint: disable=import-outside-toplevel

    self._file = safe_open(path, framework='np', backend='pread')
    self._keys = dict.fromkeys(self._file.keys())

  def __getitem__(self, key: str) -> np.ndarray:
    if key not in self._keys:
      raise KeyError(key)
    return self._file.get_tensor(key)

  def __iter__(self):
    return iter(self._keys)

  def __len__(self) -> int:
    return len(self._keys)

  def pop(self, key: str) -> np.ndarray:
    value = self[key]
    del self._keys[key]
    return value


def _read_torch(path: str) -> StateDict:
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ValueError(
        f'checkpoint {path!r} is a torch file, and torch is not installed; install torch, or '
        'convert it to .safetensors where torch is (safetensors.torch.save_file).'
    ) from None
  try:
    loaded = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as error:  # pickle.UnpicklingError for anything but tensors and containers
    raise ValueError(
        f'checkpoint {path!r} is not a plain torch state dict (only tensors and containers are '
        f'read, nothing is executed): {str(error).splitlines()[0]}'
    ) from None
  epoch = None
  if isinstance(loaded, dict) and isinstance(loaded.get('state_dict'), dict):
    epoch = loaded.get('epoch')
    loaded = loaded['state_dict']
  if not isinstance(loaded, dict) or not all(torch.is_tensor(v) for v in loaded.values()):
    raise ValueError(f'checkpoint {path!r} holds no state dict of tensors.')
  tensors = {
      k: v.detach().float().numpy() if v.is_floating_point() else v.numpy()
      for k, v in loaded.items()
  }
  return StateDict(_strip(tensors), None if epoch is None else int(epoch))


def _strip(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Without DistributedDataParallel's `module.` prefix."""
  if tensors and all(k.startswith('module.') for k in tensors):
    return {k.removeprefix('module.'): tensors[k] for k in list(tensors)}
  return tensors


def write_safetensors(tensors: dict[str, np.ndarray], path: str) -> None:
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel

  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  save_file({k: np.asarray(v, order='C') for k, v in tensors.items()}, path)
