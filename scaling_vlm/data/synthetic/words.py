"""The world's nouns and adjectives: what a scene can hold and the words captions use for it.

The first word of each synonym list is the canonical name used in json attributes and zero-shot
class names.
"""

from __future__ import annotations

SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    'circle': ('circle', 'disc', 'disk'),
    'square': ('square',),
    'triangle': ('triangle',),
    'star': ('star',),
    'cross': ('cross',),
    'ring': ('ring', 'donut'),
    'diamond': ('diamond', 'rhombus'),
    'hexagon': ('hexagon',),
    'pentagon': ('pentagon',),
    'crescent': ('crescent', 'moon'),
}
SHAPES: tuple[str, ...] = tuple(SHAPE_WORDS)

# Base RGB of each named colour; objects jitter around it.
COLOURS: dict[str, tuple[int, int, int]] = {
    'red': (215, 35, 35),
    'orange': (245, 135, 20),
    'yellow': (240, 215, 30),
    'green': (40, 165, 55),
    'blue': (30, 70, 215),
    'purple': (125, 40, 175),
    'pink': (245, 125, 190),
    'brown': (125, 75, 30),
    'white': (245, 245, 245),
    'black': (15, 15, 15),
    'grey': (128, 128, 128),
    'cyan': (30, 205, 215),
}
COLOUR_WORDS: dict[str, tuple[str, ...]] = {name: (name,) for name in COLOURS} | {
    'purple': ('purple', 'violet'),
    'grey': ('grey', 'gray'),
    'cyan': ('cyan', 'turquoise'),
}

# Diameter as a fraction of the image side; the gaps between the ranges keep the size words
# honest.
SIZES: dict[str, tuple[float, float]] = {
    'small': (0.14, 0.20),
    'medium': (0.24, 0.32),
    'large': (0.38, 0.50),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    'small': ('small', 'little', 'tiny'),
    'medium': ('medium', 'medium sized'),
    'large': ('large', 'big'),
}

# Regions are the cells of a 3x3 grid, keyed by (row, column).
REGION_WORDS: dict[tuple[str, str], tuple[str, ...]] = {
    ('top', 'left'): ('in the top left', 'in the upper left corner'),
    ('top', 'centre'): ('at the top', 'near the top'),
    ('top', 'right'): ('in the top right', 'in the upper right corner'),
    ('middle', 'left'): ('on the left', 'on the left side'),
    ('middle', 'centre'): ('in the centre', 'in the middle', 'in the center'),
    ('middle', 'right'): ('on the right', 'on the right side'),
    ('bottom', 'left'): ('in the bottom left', 'in the lower left corner'),
    ('bottom', 'centre'): ('at the bottom', 'near the bottom'),
    ('bottom', 'right'): ('in the bottom right', 'in the lower right corner'),
}
RELATION_WORDS: dict[str, tuple[str, ...]] = {
    'left of': ('to the left of', 'left of'),
    'right of': ('to the right of', 'right of'),
    'above': ('above', 'over'),
    'below': ('below', 'under', 'beneath'),
}
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    'plain': ('plain', 'flat'),
    'gradient': ('gradient', 'shaded'),
    'textured': ('textured', 'noisy', 'mottled'),
}
TONES = ('light', 'dark')
NUMBERS = ('one', 'two', 'three', 'four')
MAX_OBJECTS = len(NUMBERS)
THINGS = (('shape', 'shapes'), ('object', 'objects'), ('figure', 'figures'), ('thing', 'things'))
