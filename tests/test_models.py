"""CLIP and MaMMUT as README's 'The model zoo' describes them: shapes, masks, pooling, sizes,
errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling_vlm import flops, models
from scaling_vlm.models import layers
from scaling_vlm.train import losses

# Parameters (millions) and forward GFLOPs per sample: the excerpt table in README, 'The model zoo'.
REFERENCES = {
    'ViT-B-32': (151.28, 14.54),
    'ViT-L-14': (427.62, 168.61),
    'mammut_ViT-B-32': (183.02, 26.91),
    'mammut_ViT-L-14': (508.29, 202.56),
}


def images(batch=2, seed=0, size=64):
  return jax.random.normal(jax.random.key(seed), (batch, size, size, 3))


def tokens(rows, length=32):
  """Pads each row (a list of ids) with zeros to `length`."""
  out = np.zeros((len(rows), length), np.int32)
  for i, row in enumerate(rows):
    out[i, : len(row)] = row
  return jnp.asarray(out)


SOT, EOT = 1022, 1023  # the tiny vocabulary's start and end ids
TEXT = tokens([[SOT, 5, 6, 7, EOT], [SOT, 9, EOT]])


@nnx.jit
def forward(model, images, text):
  return model(images, text)


def with_random_lm_head(model):
  head = model.decoder.lm_head.kernel
  head[...] = 0.5 * jax.random.normal(jax.random.key(7), head.shape)
  return model


def test_zoo_has_every_open_clip_name():
  clip, mammut = models.model_names('clip'), models.model_names('mammut')
  assert len([n for n in clip if not n.startswith('tiny')]) == 20
  assert len([n for n in mammut if 'tiny' not in n]) == 15
  assert {'ViT-S-32-alt', 'ViT-M-16-alt', 'ViT-B-16-text-plus', 'ViT-H-14'} <= set(clip)
  assert {'mammut_ViT-S-32', 'mammut_ViT-H-14'} <= set(mammut)
  assert not any(n.startswith('mammut_') and n.endswith('-alt') for n in mammut)


@pytest.mark.parametrize('name', sorted(REFERENCES))
def test_reference_params_and_gflops(name):
  ref_params, ref_gflops = REFERENCES[name]
  config = models.get_config(name, scan_layers=True)
  params = models.count_params(models.abstract(config)) / 1e6
  assert abs(params - ref_params) / ref_params < 1e-3, params
  gflops = flops.forward_gflops(config)
  assert abs(gflops - ref_gflops) / ref_gflops < 1e-2, gflops


def test_layer_scale_only_in_m16_alt():
  def has_gamma(name):
    state = nnx.state(models.abstract(name, scan_layers=True))
    return any('gamma' in str(path) for path, _ in nnx.to_flat_state(state))

  assert has_gamma('ViT-M-16-alt') and not has_gamma('ViT-M-32-alt')


@pytest.mark.parametrize('name', ['tiny-3', 'mammut_tiny-3'])
def test_flops_formula_tracks_xla_cost_analysis(name):
  """Our linear+attention count must explain XLA's FLOPs up to elementwise ops (LN, softmax,
  GELU), which XLA counts and we do not; a missing block or pass would be far outside."""
  config = models.get_config(name)
  graphdef, state = nnx.split(models.build(config))
  batch = (images(1), tokens([[SOT, 5, EOT]]))

  def forward(state, image, text):
    return nnx.merge(graphdef, state)(image, text)

  def train(state, image, text):
    out = forward(state, image, text)
    return sum(jnp.sum(v) for k, v in out.items() if k != 'logit_scale')

  counts = flops.forward_counts(config)
  xla_forward = jax.jit(forward).lower(state, *batch).compile().cost_analysis()['flops']
  assert 1.0 <= xla_forward / (2 * (counts.linear + counts.attention)) < 1.25
  xla_train = jax.jit(jax.grad(train)).lower(state, *batch).compile().cost_analysis()['flops']
  assert 1.0 <= xla_train / flops.train_flops(config) < 1.25


@pytest.mark.parametrize('scan', [False, True])
def test_output_shapes(scan):
  clip = models.build('tiny-2', scan_layers=scan)
  out = forward(clip, images(), TEXT)
  assert out['image_emb'].shape == out['text_emb'].shape == (2, 48)
  np.testing.assert_allclose(jnp.linalg.norm(out['text_emb'], axis=-1), 1.0, rtol=1e-5)
  assert out['logit_scale'] == pytest.approx(math.log(1 / 0.07))
  mammut = models.build('mammut_tiny-2', scan_layers=scan)
  out = forward(mammut, images(), TEXT)
  assert out['image_emb'].shape == out['text_emb'].shape == (2, 48)
  assert out['caption_logits'].shape == (2, 31, 1024)


def test_mammut_caption_loss_starts_at_log_vocab():
  """The LM head is zero-initialised, so every token is equally likely at step 0."""
  model = models.build('mammut_tiny-1')
  out = forward(model, images(), TEXT)
  loss, count = losses.caption_loss(out['caption_logits'], TEXT[:, 1:])
  assert count == 6  # 4 + 2 non-pad labels
  assert loss == pytest.approx(math.log(1024), rel=1e-6)


def test_clip_pools_at_eot():
  model = models.build('tiny-2')
  base = model.encode_text(TEXT)
  before_eot = model.encode_text(TEXT.at[0, 3].set(11))
  after_eot = model.encode_text(TEXT.at[0, 6].set(11))  # a non-pad id past EOT
  assert not np.allclose(base[0], before_eot[0], atol=1e-4)
  np.testing.assert_allclose(base, after_eot, atol=1e-6)


def test_mammut_contrastive_pass_is_unmasked_mean_without_cross_attention():
  model = models.build('mammut_tiny-2')
  decoder = model.decoder
  # No cross-attention: poisoning every cross-attention weight leaves the text embedding alone.
  base = model.encode_text(TEXT)
  poisoned = models.build('mammut_tiny-2')
  for unit in poisoned.decoder.units.layers:
    kernel = unit.cross_attn.attn.q.kernel
    kernel[...] = jnp.full(kernel.shape, jnp.nan)
  np.testing.assert_array_equal(poisoned.encode_text(TEXT), base)
  # The embedding is the mean of ln_final over all positions, pads included, unprojected.
  x = decoder.token_embedding(TEXT) + decoder.positional_embedding[...]
  hidden, _ = decoder.units(x, lambda unit, x, _: unit(x))
  expected = layers.l2_normalize(decoder.ln_final(hidden).mean(axis=1))
  np.testing.assert_allclose(base, expected, atol=1e-6)
  # No mask: the first position already sees the last one.
  changed, _ = decoder.units(x.at[:, -1].add(10.0), lambda unit, x, _: unit(x))
  assert np.abs(hidden[:, 0] - changed[:, 0]).max() > 1e-4


def test_mammut_caption_pass_is_causal_and_reads_the_image():
  model = with_random_lm_head(models.build('mammut_tiny-2'))
  logits = forward(model, images(), TEXT)['caption_logits']
  later = forward(model, images(), TEXT.at[:, 3].set(17))['caption_logits']
  np.testing.assert_allclose(logits[:, :3], later[:, :3], atol=1e-5)
  assert not np.allclose(logits[:, 3], later[:, 3], atol=1e-4)
  other_image = forward(model, images(seed=1), TEXT)['caption_logits']
  assert not np.allclose(logits[:, 0], other_image[:, 0], atol=1e-4)


def test_mammut_decoder_mlps_and_cross_attention_placement():
  def decoder_blocks(name):
    unit = models.abstract(name, scan_layers=True).decoder.units.layers
    return [block.mlp is not None for block in unit.self_attn], unit.cross_attn.mlp is not None

  # S/M/B-32/B-14: the block that cross-attention follows has no MLP; B-16/L/H keep it.
  assert decoder_blocks('mammut_ViT-B-32') == ([False, True], True)
  assert decoder_blocks('mammut_ViT-B-16') == ([True, True], True)
  assert decoder_blocks('mammut_ViT-L-14') == ([True, True], True)
  assert models.get_config('mammut_ViT-B-16').embed_dim == 768
  lm_head = models.abstract('mammut_ViT-B-32').decoder.lm_head
  assert lm_head.kernel.shape == (512, 49408) and lm_head.bias is None


def stack_layers(tree):
  """Rewrites an unscanned model's parameters (a pure dict) into the scanned layout."""
  if not isinstance(tree, dict):
    return tree
  tree = {k: stack_layers(v) for k, v in tree.items()}
  if isinstance(tree.get('layers'), dict) and 0 in tree['layers']:
    per_layer = [tree['layers'][i] for i in sorted(tree['layers'])]
    tree['layers'] = jax.tree.map(lambda *xs: jnp.stack(xs), *per_layer)
  return tree


@pytest.mark.parametrize('name', ['tiny-2', 'mammut_tiny-2'])
def test_scanned_layers_compute_the_same_function(name):
  plain = models.build(name)
  scanned = models.build(name, scan_layers=True)
  state = nnx.state(scanned)
  nnx.replace_by_pure_dict(state, stack_layers(nnx.to_pure_dict(nnx.state(plain))))
  nnx.update(scanned, state)
  a, b = forward(plain, images(), TEXT), forward(scanned, images(), TEXT)
  for key in a:
    np.testing.assert_allclose(a[key], b[key], atol=1e-5)


def test_remat_keeps_gradients():
  def grads(remat):
    model = models.build('mammut_tiny-1', remat=remat)
    graphdef, state = nnx.split(model)

    def loss(state):
      return losses.total_loss(nnx.merge(graphdef, state)(images(), TEXT), TEXT)[0]

    return jax.jit(jax.grad(loss))(state)

  plain, remat = grads('none'), grads('full')
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), plain, remat)


def test_bfloat16_compute_keeps_float32_parameters():
  fp32 = models.build('tiny-3')
  bf16 = models.build('tiny-3', dtype='bfloat16')
  params = jax.tree.leaves(nnx.state(bf16, nnx.Param))
  assert all(p.dtype == jnp.float32 for p in params)
  a, b = forward(fp32, images(), TEXT), forward(bf16, images(), TEXT)
  assert b['image_emb'].dtype == jnp.float32  # embeddings are normalised in float32
  cosine = jnp.sum(a['image_emb'] * b['image_emb'], axis=-1)
  assert jnp.all(cosine > 0.99)


def test_logit_scale_clamp():
  scale = layers.LogitScale(math.log(1 / 0.07), None)
  scale.scale[...] = jnp.asarray(7.0)
  scale.clamp()
  assert float(scale.scale[...]) == pytest.approx(math.log(100))
  scale.scale[...] = jnp.asarray(-1.0)
  scale.clamp()
  assert float(scale.scale[...]) == 0.0


def test_unknown_name_lists_close_matches():
  with pytest.raises(ValueError, match=r"'ViT-B-23'.*Did you mean.*ViT-B-32"):
    models.get_config('ViT-B-23')


def test_bad_image_size():
  with pytest.raises(ValueError, match=r'image_size 200 is not divisible by patch_size 32'):
    models.get_config('ViT-B-32', **{'vision.image_size': 200})
  with pytest.raises(ValueError, match=r'images must have shape \(batch, 64, 64, 3\)'):
    models.build('tiny-1').encode_image(jnp.zeros((1, 32, 32, 3)))


def test_text_longer_than_positional_table():
  with pytest.raises(ValueError, match=r'length 40 exceeds the positional table of 32'):
    models.build('tiny-1').encode_text(jnp.ones((1, 40), jnp.int32))


def test_token_ids_outside_vocabulary():
  model = models.build('mammut_tiny-1')
  with pytest.raises(ValueError, match=r'Token id 1024 is outside the vocabulary.*0\.\.1023'):
    model.encode_text(TEXT.at[0, 2].set(1024))
  with pytest.raises(ValueError, match=r'Token id -3'):
    model.encode_text(TEXT.at[0, 2].set(-3))


def test_unknown_override_names_the_field():
  with pytest.raises(ValueError, match=r"Unknown model field 'vision.depth'.*vision.layers"):
    models.get_config('tiny-1', **{'vision.depth': 3})
  with pytest.raises(ValueError, match=r"dtype='float16' is not allowed.*bfloat16"):
    models.get_config('tiny-1', dtype='float16')
