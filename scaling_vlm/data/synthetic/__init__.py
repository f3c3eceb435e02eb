"""A procedural image-text world: every command of the codebase, offline, on a laptop CPU.

Each record is a small scene -- a plain, gradient or textured background, one to four shapes
(10 shapes x 12 colours x 3 sizes, anywhere in the image), a few distractor marks and pixel
noise -- with a caption drawn from varied templates. Captions are informative but partial:
each mentions only some attributes, and several scenes fit one caption. Together with the
clutter, noise and small, hard-to-tell shapes (a 9-pixel pentagon against a hexagon), that
keeps tiny models improving with model size and samples seen instead of saturating, which is
what lets us fit scaling laws on it.

The modules read in this order: `words` (the nouns and adjectives), `scenes` (`sample_scene`
draws a `Scene`, plain data), `rendering` (`render` paints it), `captions` (`write_caption`
describes it), `world` (sources following grain's random-access protocol: record `index` is a
pure function of (seed, stream, index); `SyntheticWorld` is the training and validation
data), `eval_sets` (the zero-shot tasks and the retrieval split, each its own stream, so
evaluation scenes are never training scenes) and `vocabulary` (every word those can contain).

Speed (about 5,700 records/s on one busy laptop-class core at 64 px, image + caption + json)
comes from drawing scalars with Python's `random` (`draws`; numpy's per-call overhead would
dominate), anti-aliased masks computed once per (shape, diameter, angle) and cached,
channel-first canvases, and noise cropped from fixed banks instead of drawn per pixel.
"""

from scaling_vlm.data.synthetic.captions import write_caption, write_captions
from scaling_vlm.data.synthetic.eval_sets import (
    RetrievalSource,
    ZeroShotSource,
    ZeroShotTask,
    retrieval_split,
    zero_shot_tasks,
)
from scaling_vlm.data.synthetic.rendering import render
from scaling_vlm.data.synthetic.scenes import Background, Mark, Scene, SceneObject, sample_scene
from scaling_vlm.data.synthetic.vocabulary import VOCABULARY, caption_words
from scaling_vlm.data.synthetic.words import (
    BACKGROUND_WORDS,
    COLOUR_WORDS,
    COLOURS,
    MAX_OBJECTS,
    NUMBERS,
    REGION_WORDS,
    RELATION_WORDS,
    SHAPE_WORDS,
    SHAPES,
    SIZE_WORDS,
    SIZES,
    TONES,
)
from scaling_vlm.data.synthetic.world import SyntheticWorld
