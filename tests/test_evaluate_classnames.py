"""The carried class names and templates: list lengths per dataset, and their order checked
against the label files TFDS ships with its dataset code (no data, no download)."""

import tempfile

import pytest

from scaling_vlm.evaluate import classnames, tfds_catalog

tfds = pytest.importorskip('tensorflow_datasets')

LENGTHS = {
    'imagenet1k': 1000,
    'imagenetv2': 1000,
    'imagenet_sketch': 1000,
    'imagenet-a': 200,
    'imagenet-r': 200,
    'imagenet-o': 200,
    'cifar10': 10,
    'cifar100': 100,
    'caltech101': 102,
    'caltech101_vtab': 102,
    'cars': 196,
    'country211': 211,
    'dtd': 47,
    'eurosat': 10,
    'fer2013': 7,
    'fgvc_aircraft': 100,
    'flowers': 102,
    'food101': 101,
    'gtsrb': 43,
    'mnist': 10,
    'pcam': 2,
    'pets': 37,
    'renderedsst2': 2,
    'resisc45': 45,
    'stl10': 10,
    'sun397': 397,
    'svhn': 10,
    'voc2007': 20,
}


@pytest.mark.parametrize('name, length', LENGTHS.items())
def test_list_lengths(name, length):
  assert len(classnames.classnames(name)) == length


def test_imagenet_names_are_openai_s_in_synset_order():
  names = classnames.classnames('imagenet1k')
  assert (names[0], names[1], names[21], names[999]) == (
      'tench',
      'goldfish',
      'kite (bird of prey)',
      'toilet paper',
  )
  wnids = classnames.wnids()
  assert list(wnids) == sorted(wnids) and wnids[0] == 'n01440764'
  # ImageNet-A and -R keep ImageNet's names of their 200 synsets, in synset order.
  by_wnid = dict(zip(wnids, names))
  assert classnames.classnames('imagenet-a')[0] == by_wnid['n01498041'] == 'stingray'
  assert classnames.classnames('imagenet-r')[0] == by_wnid['n01443537'] == 'goldfish'
  assert set(classnames.wnids('imagenet-o')) <= set(wnids)


def test_templates_and_clip_benchmark_s_default():
  assert len(classnames.templates('imagenet1k')) == 80
  assert len(classnames.templates('cifar10')) == 18
  assert classnames.templates('imagenet-a') == classnames.templates('imagenet1k')
  assert classnames.templates('food101') == ('a photo of {c}, a type of food.',)
  for name in classnames.names():
    assert all('{c}' in t for t in classnames.templates(name)), name


def test_an_unknown_name_is_an_error_listing_the_known_ones():
  with pytest.raises(ValueError, match=r"no carried class names for 'imagenet'; known: \["):
    classnames.classnames('imagenet')


@pytest.fixture(scope='module')
def label_names():
  """TFDS's label names of each catalogue dataset, from its code (nothing prepared)."""
  data_dir = tempfile.mkdtemp()
  return lambda builder: tfds.builder(builder, data_dir=data_dir).info.features['label'].names


@pytest.mark.parametrize(
    'dataset', [d for d in tfds_catalog.CATALOG.values() if d.order != 'retrieval'], ids=str
)
def test_every_catalogue_dataset_aligns_with_its_tfds_labels(dataset, label_names):
  labels = label_names(dataset.builder)
  names, remap = tfds_catalog.align(dataset, labels)
  assert len(remap) == len(labels)
  kept = remap[remap >= 0]
  assert sorted(kept) == list(range(len(names)))  # every class has exactly one TFDS label


def test_name_matching_puts_the_names_in_tfds_order(label_names):
  # OpenAI lists 'cheese plate' before 'cheesecake' and 'jail cell' before 'jail indoor';
  # TFDS's labels have them the other way round.
  food, _ = tfds_catalog.align(tfds_catalog.CATALOG['food101'], label_names('food101'))
  assert food[16:18] == ('cheesecake', 'cheese plate')
  assert classnames.classnames('food101')[16:18] == ('cheese plate', 'cheesecake')
  sun, _ = tfds_catalog.align(tfds_catalog.CATALOG['sun397'], label_names('sun397/tfds'))
  assert label_names('sun397/tfds')[206] == '/j/jail/indoor' and sun[206] == 'jail indoor'
  cars, _ = tfds_catalog.align(tfds_catalog.CATALOG['cars196'], label_names('cars196'))
  assert cars == tuple(label_names('cars196'))


@pytest.mark.parametrize(
    'builder, index, tfds_name, carried',
    [
        ('caltech101', 37, 'faces', 'off-center face'),
        ('caltech101', 38, 'faces_easy', 'centered face'),
        ('caltech101', 101, 'yin_yang', 'yin and yang symbol'),
        ('eurosat/rgb', 2, 'HerbaceousVegetation', 'brushland or shrubland'),
        ('eurosat/rgb', 9, 'SeaLake', 'lake or sea'),
        ('oxford_flowers102', 92, 'ball moss', 'air plant'),
        ('oxford_flowers102', 101, 'blackberry lily', 'blackberry lily'),
    ],
)
def test_positional_lists_are_in_tfds_label_order(label_names, builder, index, tfds_name, carried):
  """Worded differently from TFDS's labels, so matched by position: spot checks across the
  list (a shifted list fails them)."""
  dataset = tfds_catalog.CATALOG[builder.partition('/')[0]]
  names, _ = tfds_catalog.align(dataset, label_names(builder))
  assert label_names(builder)[index] == tfds_name and names[index] == carried


def test_imagenet_a_keeps_200_classes_and_renumbers_labels(label_names):
  labels = label_names('imagenet_a')
  assert list(labels) == list(classnames.wnids())  # TFDS labels ImageNet-A over all 1000
  names, remap = tfds_catalog.align(tfds_catalog.CATALOG['imagenet_a'], labels)
  assert len(names) == 200 and (remap >= 0).sum() == 200
  stingray = labels.index('n01498041')
  assert remap[stingray] == 0 and names[0] == 'stingray'
  assert remap[0] == -1  # tench is not an ImageNet-A class


CIFAR10_LABELS = [
    'airplane',
    'automobile',
    'bird',
    'cat',
    'deer',
    'dog',
    'frog',
    'horse',
    'ship',
    'truck',
]


def test_prepared_cifar_label_names_are_checked_and_bare_numbers_kept_in_order():
  cifar10 = tfds_catalog.CATALOG['cifar10']
  assert tfds_catalog.align(cifar10, CIFAR10_LABELS)[0] == tuple(CIFAR10_LABELS)
  # TFDS's CIFAR code names labels '0'..'9' until the data is prepared (and in mock data).
  assert tfds_catalog.align(cifar10, [str(i) for i in range(10)])[0] == tuple(CIFAR10_LABELS)


def test_names_that_do_not_fit_the_labels_are_an_error():
  cifar100_labels = [f'class_{i}' for i in range(100)]
  with pytest.raises(ValueError, match=r"carried class names of 'cifar10' number 10"):
    tfds_catalog.align(tfds_catalog.Dataset('cifar10', 'cifar100', 'test'), cifar100_labels)
  renamed = ['airplane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'lorry']
  with pytest.raises(ValueError, match=r"labels \['car', 'lorry'\] match none"):
    tfds_catalog.align(tfds_catalog.CATALOG['cifar10'], renamed)
  with pytest.raises(ValueError, match='WordNet ids of .imagenet-r. are not among its labels'):
    tfds_catalog.align(tfds_catalog.CATALOG['imagenet_r'], list(classnames.wnids('imagenet-a')))


@pytest.mark.parametrize(
    'path, task, builder, split',
    [
        ('imagenet2012', 'imagenet1k', 'imagenet2012', 'validation'),
        ('eurosat', 'eurosat', 'eurosat/rgb', 'train[80%:]'),
        ('cifar10/test', 'cifar10', 'cifar10', 'test'),
        ('cifar10/train', 'tfds:cifar10/train', 'cifar10', 'train'),
        (
            'imagenet_v2/topimages/test',
            'tfds:imagenet_v2/topimages/test',
            'imagenet_v2/topimages',
            'test',
        ),
        ('beans', 'beans', 'beans', 'test'),
    ],
)
def test_specs_resolve_to_the_suite_s_task_names_and_splits(path, task, builder, split):
  dataset = tfds_catalog.resolve(path)
  assert (dataset.task, dataset.builder, dataset.split) == (task, builder, split)


def test_a_bad_spec_is_an_error():
  with pytest.raises(ValueError, match='not DATASET, DATASET/SPLIT or DATASET/CONFIG/SPLIT'):
    tfds_catalog.resolve('a/b/c/d')
