"""Everything between files on disk and a sharded batch on the device mesh.

Sources (webdataset tars, ArrayRecord shards, the synthetic world) yield *records*; the grain
pipeline decodes, augments and tokenizes them and hands the trainer global `jax.Array`s.

A record is a dict:
  'key':     str, unique within its source (a tar member's stem; the synthetic index)
  'shard':   str, where it came from (a shard path, or 'synthetic')
  'image':   bytes (an encoded jpg/png/webp) or np.ndarray uint8 (H, W, 3), or None if missing
  'caption': str, or None if missing
  'error':   None, or why the source already knows the record is unusable (missing caption,
             unreadable member); the pipeline counts and logs such records, never drops them
             silently
and optionally 'json' (metadata dict), 'label' (int, classification sets) and 'captions'
(list[str], retrieval sets with several captions per image).
"""
