"""The groups of laws that the paper's figure scripts fit, as data: one row per group.

Each row comes from one call of `scaling_laws/main.py` in a script of
LAION-AI/scaling-laws-for-comparison (`scripts/fig*.sh`, named in the row): its task,
--lr_scheduler, --eval_type, --max_x, --max_samples_seen, --pareto_method and --func_type, and
one procedure per model and pretraining data set it fits, each with the script's
LARGE_FLOPS_MAPPING threshold (fit up to it, predict above; a model the mapping does not name
is fitted on every point). `fitting.paper` runs them.

A group's laws are functions of compute, except fig3's, of samples seen (`Group.x`): there the
script's --max_x and LARGE_FLOPS_MAPPING are samples, and the group names its own points for
P(A beats B) and the held-out split, where the command's --at and --heldout-threshold are
compute.
"""

from __future__ import annotations

import dataclasses
import math

DATACOMP, RELAION, WIT = 'datacomp_1b', 'relaion2b-en', 'CLIP-WIT'
# The scripts' --min_flops: checkpoints below this compute never enter a fit.
MIN_FLOPS = 1e6
# What the optimal group predicts: the scripts' --predict_for_vals for fig6.
OPTIMAL_AT = (2.14e12, 2.59e12)


@dataclasses.dataclass(frozen=True)
class Task:
  """A downstream task as the figures show it: error = 1 - metric."""

  name: str  # the tables' downstream_dataset
  metric: str
  title: str
  ylabel: str


IMAGENET = Task('imagenet1k', 'acc1', 'ImageNet-1k zero-shot', 'ImageNet-1k 0-shot [error rate]')
COCO = Task(
    'mscoco_captions',
    'image_retrieval_recall@5',
    'MS-COCO image retrieval',
    'MS-COCO image retrieval R@5 [error rate]',
)
ADE20K = Task('ade20k', 'miou', 'ADE20K semantic segmentation', 'ADE20K segmentation [1 - mIoU]')
# fig10's further benchmarks (the metric is the paper's constants.metric_map's).
IMAGENET_R = Task(
    'imagenet-r_test', 'acc1', 'ImageNet-R zero-shot', 'ImageNet-R 0-shot [error rate]'
)
DATACOMP_EVAL = Task(
    'datacomp_classification_stable_eval',
    'acc1',
    'DataComp eval suite zero-shot',
    'DataComp eval suite 0-shot [error rate]',
)
IMAGENET_V2 = Task(
    'imagenetv2_test', 'acc1', 'ImageNet-v2 zero-shot', 'ImageNet-v2 0-shot [error rate]'
)


@dataclasses.dataclass(frozen=True)
class Procedure:
  """One law of a group: the runs of one architecture on one pretraining data set."""

  label: str
  arch: str  # the table's namespace
  dataset: str
  # The script's LARGE_FLOPS_MAPPING for this architecture: the law is fitted on frontier
  # points up to it and predicts those above (inf: every point is fitted).
  fit_up_to: float = math.inf
  optional: bool = False  # absent from the table: noted, the group still runs


@dataclasses.dataclass(frozen=True)
class Group:
  """One figure of the paper: which points, which laws, and which pairs to compare."""

  name: str
  subject: str  # what the figure compares; the title adds the task
  script: str  # the paper's script that fits this group
  task: Task
  procedures: tuple[Procedure, ...]
  comparisons: tuple[tuple[str, str], ...] = ()  # (A, B) labels: P(A beats B), A - B crossing
  source: str = 'csv'  # all_results.csv.gz, or the segmentation Parquet
  schedule: str = 'cosine'  # the script's --lr_scheduler, matched exactly
  form: str = 'saturation_both'
  loss: str = 'linear'
  frontier: str = 'pareto_bin'
  max_x: float = 1e12  # --max_x (main.py's default where a script sets none)
  max_samples: float = math.inf  # --max_samples_seen (none where a script sets none)
  eval_type: str | None = None  # --eval_type: the table's rows of this eval_type only
  x: str = 'compute'  # --x_col: 'compute' (gflops_total) or 'samples' (total_samples_seen)
  # In x's unit, where x is not compute: where P(A beats B) is read, and the held-out split.
  at: tuple[float, ...] | None = None  # None: the command's --at
  heldout: float | None = None  # None: the command's --heldout-threshold
  kind: str = 'law'  # 'law', or 'optimal': samples seen on the frontier against compute
  cosine_twin: str | None = None  # a constant-LR group: the cosine group to agree with

  @property
  def title(self) -> str:
    return f'{self.subject}: {self.task.title}'

  @property
  def quantity(self) -> str:
    """The frontier's column that the law models: its error, or the optimal samples seen."""
    return 'samples_seen' if self.kind == 'optimal' else 'error'

  @property
  def variable(self) -> str:
    """The laws' variable as the report writes them: C (compute) or D (samples seen)."""
    return 'D' if self.x == 'samples' else 'C'

  @property
  def xlabel(self) -> str:
    return 'samples seen D' if self.x == 'samples' else 'compute C [GFLOPs]'

  @property
  def ylabel(self) -> str:
    return 'samples seen on the frontier, D_opt(C)' if self.kind == 'optimal' else self.task.ylabel


def _archs(dataset: str, **fit_up_to: float) -> tuple[Procedure, ...]:
  return tuple(Procedure(arch, arch, dataset, limit) for arch, limit in fit_up_to.items())


def _datasets(arch: str, fit_up_to: float, *datasets: str) -> tuple[Procedure, ...]:
  return tuple(Procedure(d, arch, d, fit_up_to, optional=d == WIT) for d in datasets)


_CLIP_MAMMUT = (('mammut', 'clip'),)
_FIG1 = 'CLIP vs MaMMUT on DataComp-1B'
_FIG2 = 'CLIP vs MaMMUT on Re-LAION-2B'
_FIG4 = 'Constant learning rate, CLIP vs MaMMUT on DataComp-1B'
_FIG5 = 'on DataComp-1B (saturation law)'
_FIG7 = 'Re-LAION-2B vs DataComp-1B for'
_FIG9 = 'on DataComp-1B, up to 1e10 GFLOPs'
_FIG12 = 'CLIP vs MaMMUT on DataComp-1B (saturation law), fitted up to'
_FIG3 = 'CLIP vs MaMMUT on DataComp-1B, against samples seen'
# fig3's points, in samples seen: the grid's largest (12.8B) and twice it; the held-out check
# fits up to 1.3B and predicts the 3B and 12.8B runs.
_FIG3_AXIS = dict(x='samples', at=(1.28e10, 2.56e10), heldout=1.3e9)
_RELAION_DATACOMP = ((RELAION, DATACOMP),)
GROUPS = (
    Group('fig1_imagenet', _FIG1, 'scripts/fig1.sh', IMAGENET,
          _archs(DATACOMP, clip=1e12, mammut=1e12), _CLIP_MAMMUT, max_samples=1e10),
    Group('fig1_coco', _FIG1, 'scripts/fig1.sh', COCO,
          _archs(DATACOMP, clip=1e12, mammut=1e12), _CLIP_MAMMUT, max_samples=1e10),
    Group('fig2_relaion_imagenet', _FIG2, 'scripts/fig2_relaion.sh', IMAGENET,
          _archs(RELAION, clip=1e12, mammut=1e12), _CLIP_MAMMUT, max_samples=1e10),
    Group('fig2_relaion_coco', _FIG2, 'scripts/fig2_relaion.sh', COCO,
          _archs(RELAION, clip=1e12, mammut=1e12), _CLIP_MAMMUT, max_samples=1e10),
    Group('fig7_clip_imagenet', f'{_FIG7} CLIP', 'scripts/fig7_relaion_datacomp.sh', IMAGENET,
          _datasets('clip', 1e13, RELAION, DATACOMP, WIT), _RELAION_DATACOMP,
          max_x=1e13, max_samples=1e13),
    Group('fig7_mammut_imagenet', f'{_FIG7} MaMMUT', 'scripts/fig7_relaion_datacomp.sh', IMAGENET,
          _datasets('mammut', 1e12, RELAION, DATACOMP), _RELAION_DATACOMP,
          max_x=1e13, max_samples=1e10),
    Group('fig7_clip_coco', f'{_FIG7} CLIP', 'scripts/fig7_relaion_datacomp.sh', COCO,
          _datasets('clip', 1e13, RELAION, DATACOMP, WIT), _RELAION_DATACOMP, max_x=1e13),
    Group('fig7_mammut_coco', f'{_FIG7} MaMMUT', 'scripts/fig7_relaion_datacomp.sh', COCO,
          _datasets('mammut', 1e12, RELAION, DATACOMP, WIT), _RELAION_DATACOMP, max_x=1e13),
    Group('fig4_const_imagenet', _FIG4, 'scripts/fig4_const.sh', IMAGENET,
          _archs(DATACOMP, clip=5e11, mammut=5e11), _CLIP_MAMMUT,
          schedule='const', max_x=2e11, cosine_twin='fig1_imagenet'),
    Group('fig4_const_coco', _FIG4, 'scripts/fig4_const.sh', COCO,
          _archs(DATACOMP, clip=5e11, mammut=5e11), _CLIP_MAMMUT,
          schedule='const', max_x=2e11, cosine_twin='fig1_coco'),
    Group('fig8_ade20k', _FIG1, 'scripts/fig8_segmentation.sh', ADE20K,
          _archs(DATACOMP, clip=1e12, mammut=1e12), _CLIP_MAMMUT,
          source='parquet', max_samples=1e10),
    Group('fig5_siglip_clip', f'SigLIP vs CLIP {_FIG5}', 'scripts/fig5_by_model.sh', IMAGENET,
          _archs(DATACOMP, siglip=1e10, clip=1e10), (('siglip', 'clip'),),
          form='saturation', max_x=1e11),
    Group('fig5_coca_mammut_clip', f'CoCa vs MaMMUT vs CLIP {_FIG5}', 'scripts/fig5_by_model.sh',
          IMAGENET, _archs(DATACOMP, coca=1e11, mammut=1e12, clip=1e10),
          (('coca', 'clip'), ('coca', 'mammut'), ('mammut', 'clip')),
          form='saturation', max_x=1e11),
    Group('fig9_clip_siglip', f'SigLIP vs CLIP {_FIG9}', 'scripts/fig9_siglip_coca.sh', IMAGENET,
          _archs(DATACOMP, clip=1e10, siglip=1e10), (('siglip', 'clip'),),
          max_x=1e10, max_samples=1e9),
    Group('fig9_coca_mammut', f'CoCa vs MaMMUT {_FIG9}', 'scripts/fig9_siglip_coca.sh', IMAGENET,
          _archs(DATACOMP, coca=1e11, mammut=1e12), (('coca', 'mammut'),),
          max_x=1e10, max_samples=1e9),
    # --x_col and --x_col_pareto total_samples_seen: --max_x and the mapping are samples.
    Group('fig3_imagenet', _FIG3, 'scripts/fig3.sh', IMAGENET,
          _archs(DATACOMP, mammut=1.3e10, clip=1.3e10), _CLIP_MAMMUT,
          frontier='pareto_naive', max_x=1.3e10, max_samples=1.3e10, **_FIG3_AXIS),
    Group('fig3_coco', _FIG3, 'scripts/fig3.sh', COCO,
          _archs(DATACOMP, mammut=1.3e10, clip=1.3e10), _CLIP_MAMMUT,
          frontier='pareto_naive', max_x=1.3e10, max_samples=1.3e10, **_FIG3_AXIS),
    Group('fig10_imagenet_r', _FIG1, 'scripts/fig10_extra_evals.sh', IMAGENET_R,
          _archs(DATACOMP, clip=1e12, mammut=1e12), _CLIP_MAMMUT, max_samples=1e10),
    Group('fig10_datacomp_eval', _FIG1, 'scripts/fig10_extra_evals.sh', DATACOMP_EVAL,
          _archs(DATACOMP, clip=1e12, mammut=1e12), _CLIP_MAMMUT, max_samples=1e10),
    Group('fig10_imagenet_v2', _FIG1, 'scripts/fig10_extra_evals.sh', IMAGENET_V2,
          _archs(DATACOMP, clip=1e12, mammut=1e12), _CLIP_MAMMUT, max_samples=1e10),
    # CapPa has no contrastive head: both are scored by the likelihood of each class's caption
    # (--eval_type log_likelihood; main.py parses it, but its plot_scaling_law_bootstrap never
    # hands it to filter_data: applied here as the script asks). The script's
    # LARGE_FLOPS_MAPPING names no cap: its law is fitted on every point.
    Group('fig11_cap_mammut', 'CapPa vs MaMMUT on DataComp-1B, log-likelihood evaluation',
          'scripts/fig11_cap_mammut.sh', IMAGENET,
          _archs(DATACOMP, cap=math.inf, mammut=1e12), (('cap', 'mammut'),),
          max_samples=1e10, eval_type='log_likelihood'),
    # fig12's save folder says relaion, but every call passes --pretrain_datasets datacomp_1b.
    Group('fig12_imagenet_2p5e11', f'{_FIG12} 2.5e11 GFLOPs', 'scripts/fig12_less_points.sh',
          IMAGENET, _archs(DATACOMP, clip=2.5e11, mammut=2.5e11), _CLIP_MAMMUT,
          form='saturation', max_x=2e12, max_samples=1e10),
    Group('fig12_coco_2p5e11', f'{_FIG12} 2.5e11 GFLOPs', 'scripts/fig12_less_points.sh',
          COCO, _archs(DATACOMP, clip=2.5e11, mammut=2.5e11), _CLIP_MAMMUT,
          form='saturation', max_x=2e12, max_samples=1e10),
    Group('fig12_imagenet_5e11', f'{_FIG12} 5e11 GFLOPs', 'scripts/fig12_less_points.sh',
          IMAGENET, _archs(DATACOMP, clip=5e11, mammut=5e11), _CLIP_MAMMUT,
          form='saturation', max_x=2e12, max_samples=1e10),
    Group('fig12_coco_5e11', f'{_FIG12} 5e11 GFLOPs', 'scripts/fig12_less_points.sh',
          COCO, _archs(DATACOMP, clip=5e11, mammut=5e11), _CLIP_MAMMUT,
          form='saturation', max_x=2e12, max_samples=1e10),
    # fig6 fits a log-log line (--func_type line): a power law in log space.
    Group('fig6_optimal', 'Compute-optimal samples seen against compute, DataComp-1B',
          'scripts/fig6_optimal_samples.sh', IMAGENET,
          _archs(DATACOMP, mammut=1e12, clip=1e12),
          form='power_law', loss='log', frontier='pareto_naive', max_samples=1e10, kind='optimal'),
)  # fmt: skip
GROUP_NAMES = tuple(g.name for g in GROUPS)


def get_groups(names=None) -> tuple[Group, ...]:
  """The groups called `names` (all of them for None), in the table's order."""
  if not names:
    return GROUPS
  unknown = sorted(set(names) - set(GROUP_NAMES))
  if unknown:
    raise ValueError(f'unknown groups {unknown}; choose from {list(GROUP_NAMES)}')
  return tuple(g for g in GROUPS if g.name in names)
