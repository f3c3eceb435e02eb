"""Captions: partial descriptions of a scene, each from one of varied templates."""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence

from scaling_vlm.data.synthetic.draws import choice
from scaling_vlm.data.synthetic.scenes import Scene, SceneObject
from scaling_vlm.data.synthetic.words import (
    BACKGROUND_WORDS,
    COLOUR_WORDS,
    NUMBERS,
    REGION_WORDS,
    RELATION_WORDS,
    SHAPE_WORDS,
    SIZE_WORDS,
    THINGS,
)

# How often a mention includes each attribute: low enough that captions stay partial and fit
# the tiny models' 32-token context.
_P_COLOUR, _P_SIZE, _P_REGION = 0.7, 0.3, 0.2

# (requirement, template). Requirements: '' any scene; 'several' two or more objects; 'pair'
# two objects in a clear spatial relation; 'unique' an object whose shape occurs once.
CAPTION_TEMPLATES: tuple[tuple[str, str], ...] = (
    ('', 'a photo of {objects}.'),
    ('', 'an image of {objects}.'),
    ('', 'a picture showing {objects}.'),
    ('', '{objects}.'),
    ('', '{groups} on {background}.'),
    ('', 'a drawing of {groups}.'),
    ('', '{background} with {groups}.'),
    ('', '{n_things}: {objects}.'),
    ('', 'there {are} {n_things} in the image.'),
    ('', 'a simple illustration of {one}.'),
    ('unique', 'the {named} is {colour}.'),
    ('several', '{one} and other {things}.'),
    ('several', 'an image with {n_things}, including {one}.'),
    ('several', 'from left to right: {left_to_right}.'),
    ('pair', '{a} {relation} {b}.'),
    ('pair', 'there is {a} {relation} {b}.'),
    ('pair', 'a photo of {a} {relation} {b}.'),
    ('pair', 'in this picture, {a} is {relation} {b}.'),
)


def write_caption(scene: Scene, rng: random.Random) -> str:
  return write_captions(scene, rng, 1)[0]


def write_captions(scene: Scene, rng: random.Random, count: int) -> list[str]:
  """`count` captions of one scene, each from a different template (so they differ)."""
  met = {'', 'several'} if len(scene.objects) > 1 else {''}
  met |= {'pair'} if scene.relations else set()
  met |= {'unique'} if scene.loners else set()
  templates = [text for need, text in CAPTION_TEMPLATES if need in met]
  return [template.format_map(_Slots(scene, rng)) for template in rng.sample(templates, count)]


class _Slots:
  """The mapping `str.format_map` fills one caption's {slots} from: slot `x` is drawn by
  `_x()` when the template asks for it, so a caption draws only what it mentions. Picks that
  several slots share ({a} {relation} {b}; {named} and {colour}) are drawn once."""

  def __init__(self, scene: Scene, rng: random.Random):
    self.scene, self.rng = scene, rng

  def __getitem__(self, slot: str) -> str:
    return getattr(self, f'_{slot}')()

  @functools.cached_property
  def pair(self) -> tuple[int, str, int]:
    return choice(self.rng, self.scene.relations)

  @functools.cached_property
  def subject(self) -> SceneObject:
    return choice(self.rng, self.scene.loners)

  @functools.cached_property
  def thing_words(self) -> tuple[str, str]:
    """One noun for the objects per caption, singular and plural."""
    return choice(self.rng, THINGS)

  def _mention(self, obj: SceneObject) -> str:
    """'a small red circle on the left': the object with a random subset of its attributes."""
    rng = self.rng
    noun = choice(rng, SHAPE_WORDS[obj.shape])
    words = [choice(rng, SIZE_WORDS[obj.size])] if rng.random() < _P_SIZE else []
    if rng.random() < _P_COLOUR:
      colour = choice(rng, COLOUR_WORDS[obj.colour])
      if rng.random() < 0.2:
        noun = f'{noun} in {colour}'
      else:
        words.append(colour)
    words.append(noun)
    if rng.random() < _P_REGION:
      words.append(choice(rng, REGION_WORDS[obj.region(self.scene.image_size)]))
    return f'{self._determiner(obj, words[0])} {" ".join(words)}'

  def _determiner(self, obj: SceneObject, word: str) -> str:
    """'a' or 'an'; sometimes 'one' or 'a single' where that is also true of the shape."""
    u = self.rng.random() if obj in self.scene.loners else 1.0
    if u < 0.1:
      return 'one'
    if u < 0.2:
      return 'a single'
    return 'an' if word[0] in 'aeiou' else 'a'

  def _objects(self) -> str:
    objects = list(self.scene.objects)
    self.rng.shuffle(objects)
    return _join([self._mention(o) for o in objects])

  def _left_to_right(self) -> str:
    return _join([self._mention(o) for o in sorted(self.scene.objects, key=lambda o: o.x)])

  def _groups(self) -> str:
    """'two red circles and a star': objects counted by shape."""
    groups: dict[str, list[SceneObject]] = {}
    for obj in self.scene.objects:
      groups.setdefault(obj.shape, []).append(obj)
    phrases = []
    for shape, members in groups.items():
      if len(members) == 1:
        phrases.append(self._mention(members[0]))
        continue
      words = [NUMBERS[len(members) - 1]]
      if len({o.colour for o in members}) == 1 and self.rng.random() < _P_COLOUR:
        words.append(choice(self.rng, COLOUR_WORDS[members[0].colour]))
      words.append(plural(choice(self.rng, SHAPE_WORDS[shape])))
      phrases.append(' '.join(words))
    self.rng.shuffle(phrases)
    return _join(phrases)

  def _one(self) -> str:
    return self._mention(choice(self.rng, self.scene.objects))

  def _background(self) -> str:
    ground, rng = self.scene.background, self.rng
    words = [ground.tone] if rng.random() < 0.8 else []
    words += [choice(rng, BACKGROUND_WORDS[ground.kind])] if rng.random() < 0.5 else []
    words.append('background')
    return f'{"an" if words[0][0] in "aeiou" else "a"} {" ".join(words)}'

  def _things(self) -> str:
    return self.thing_words[1]

  def _n_things(self) -> str:
    count = len(self.scene.objects)
    return f'{NUMBERS[count - 1]} {self.thing_words[count > 1]}'

  def _are(self) -> str:
    return 'are' if len(self.scene.objects) > 1 else 'is'

  def _named(self) -> str:
    """The subject, named by shape (and sometimes place); a lone object may be just 'the
    shape'."""
    if len(self.scene.objects) == 1 and self.rng.random() < 0.3:
      return self.thing_words[0]
    name = choice(self.rng, SHAPE_WORDS[self.subject.shape])
    if self.rng.random() < 0.4:
      name += ' ' + choice(self.rng, REGION_WORDS[self.subject.region(self.scene.image_size)])
    return name

  def _colour(self) -> str:
    return choice(self.rng, COLOUR_WORDS[self.subject.colour])

  def _a(self) -> str:
    return self._mention(self.scene.objects[self.pair[0]])

  def _relation(self) -> str:
    return choice(self.rng, RELATION_WORDS[self.pair[1]])

  def _b(self) -> str:
    return self._mention(self.scene.objects[self.pair[2]])


def _join(phrases: Sequence[str]) -> str:
  """'a', 'a and b', 'a, b and c'."""
  if len(phrases) == 1:
    return phrases[0]
  return f'{", ".join(phrases[:-1])} and {phrases[-1]}'


def plural(noun: str) -> str:
  return noun + ('es' if noun.endswith(('s', 'x', 'sh', 'ch')) else 's')
