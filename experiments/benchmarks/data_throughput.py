"""Host data throughput: the grain pipeline vs a plain reference loop, and the synthetic world.

    python experiments/benchmarks/data_throughput.py [--images 2000] [--repeats 5]

1. Writes webdataset shards of JPEGs (synthetic scenes rendered at `--source-px`, quality
   90), then times decode + RandomResizedCrop to 224 px + tokenize:
   * `grain`: our pipeline (WdsSource -> host_batches) in the main process (workers=0);
   * `reference`: tarfile + PIL decode + the same crop + the same tokenizer, no grain;
   * `grain --workers N`: the same pipeline with N grain worker processes, for the total.
2. The synthetic world at 64 px: rendering alone, and through the pipeline (crop, tokenize).

One line per measurement: the median images/s of `--repeats` passes over the data (the
shards are read from the page cache after the first), with the spread. For per-core figures
pin the process: `taskset -c 0 python experiments/benchmarks/data_throughput.py`.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tarfile
import tempfile
import time

import numpy as np
from absl import flags
from PIL import Image

from scaling_vlm.data import pipeline, synthetic, tokenizers, transforms
from scaling_vlm.data.wds import WdsSource
from scaling_vlm.data.write import write_shards

TOKENIZER = tokenizers.WordTokenizer(synthetic.VOCABULARY, 77, vocab_size=49408)


def write_jpeg_shards(directory: str, count: int, source_px: int) -> None:
  world = synthetic.SyntheticWorld(seed=1, image_size=source_px)
  write_shards(
      (world[i] for i in range(count)),
      directory,
      fmt='wds',
      shard_size=500,
      image_format='jpg',
      quality=90,
  )


def grain_pass(shards: str, count: int, image_size: int, workers: int, batch: int = 100) -> float:
  it = pipeline.host_batches(
      WdsSource(shards),
      tokenizer=TOKENIZER,
      image_size=image_size,
      global_batch=batch,
      seed=0,
      num_workers=workers,
  )
  next(it)  # start-up (workers, index load) is not throughput
  start = time.perf_counter()
  for _ in range(count // batch - 1):
    next(it)
  return (count // batch - 1) * batch / (time.perf_counter() - start)


def reference_pass(shards: list[str], count: int, image_size: int) -> float:
  """What a hand-written loop does: read the tar in order, decode, crop, tokenize."""
  rng = np.random.default_rng(0)
  done = 0
  start = time.perf_counter()
  for path in shards:
    with tarfile.open(path) as tar:
      captions, images = {}, {}
      for member in tar:
        key, _, ext = member.name.partition('.')
        data = tar.extractfile(member).read()
        if ext == 'txt':
          captions[key] = data.decode()
        elif ext == 'jpg':
          images[key] = data
      for key, data in images.items():
        image = np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))
        pixels = transforms.random_resized_crop(image, image_size, rng)
        tokens = TOKENIZER(captions[key])
        done += pixels.size > 0 and tokens.size > 0
  assert done == count, done
  return count / (time.perf_counter() - start)


def synthetic_render(count: int, image_size: int) -> float:
  world = synthetic.SyntheticWorld(seed=2, image_size=image_size)
  for i in range(count, count + 3000):  # fills the shape-mask cache, as a long run would
    world[i]
  start = time.perf_counter()
  for i in range(count):
    world[i]
  return count / (time.perf_counter() - start)


def synthetic_pipeline(count: int, image_size: int, batch: int = 100) -> float:
  it = pipeline.host_batches(
      synthetic.SyntheticWorld(seed=3, image_size=image_size),
      tokenizer=TOKENIZER,
      image_size=image_size,
      global_batch=batch,
      seed=0,
      read_threads=0,  # as the tiny preset: rendering holds the GIL, threads only contend
  )
  for _ in range(3000 // batch):  # fills the shape-mask cache, as a long run would
    next(it)
  start = time.perf_counter()
  for _ in range(count // batch):
    next(it)
  return count // batch * batch / (time.perf_counter() - start)


def report(name: str, rates: list[float], **fields) -> float:
  median = statistics.median(rates)
  extra = ' '.join(f'{k}={v}' for k, v in fields.items())
  print(
      f'bench={name} {extra} images_per_s={median:.0f} spread={min(rates):.0f}-'
      f'{max(rates):.0f} repeats={len(rates)}',
      flush=True,
  )
  return median


def main() -> None:
  flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--images', type=int, default=2000)
  parser.add_argument('--source-px', type=int, default=256, help='side of the JPEGs written')
  parser.add_argument('--image-size', type=int, default=224, help='crop size')
  parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
  parser.add_argument('--repeats', type=int, default=5)
  args = parser.parse_args()

  with tempfile.TemporaryDirectory() as directory:
    write_jpeg_shards(directory, args.images, args.source_px)
    shards = sorted(os.path.join(directory, f) for f in os.listdir(directory) if f.endswith('.tar'))
    WdsSource(shards)  # builds the indices once, outside the timings
    fields = dict(source_px=args.source_px, px=args.image_size)
    ours, reference = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
      ours.append(grain_pass(shards, args.images, args.image_size, workers=0))
      reference.append(reference_pass(shards, args.images, args.image_size))
    # workers=0: everything in this process (grain's read threads decode without the GIL).
    a = report('wds_jpeg_grain', ours, workers=0, read_threads=4, **fields)
    b = report('wds_jpeg_reference_loop', reference, workers=0, **fields)
    print(f'bench=wds_jpeg_ratio grain_over_reference={a / b:.2f}', flush=True)
    report(
        'wds_jpeg_grain',
        [
            grain_pass(shards, args.images, args.image_size, args.workers)
            for _ in range(max(1, args.repeats // 2))
        ],
        workers=args.workers,
        read_threads=4,
        **fields,
    )

  report(
      'synthetic_render',
      [synthetic_render(args.images, 64) for _ in range(args.repeats)],
      workers=0,
      px=64,
  )
  report(
      'synthetic_pipeline',
      [synthetic_pipeline(args.images, 64) for _ in range(args.repeats)],
      workers=0,
      read_threads=0,
      px=64,
  )


if __name__ == '__main__':
  main()
