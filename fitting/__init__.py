r"""Scaling-law fitting in JAX: forms, frontiers, multi-start fits, bootstrap and comparisons.

Independent of the training stack (it never imports `scaling_vlm`), so any results table
can be fitted without a model in sight. From the shell:

    python -m fitting fit --results results.parquet --task imagenet1k --where arch=clip \
        --bootstrap 1000 --heldout-threshold 1e10 --json clip.json
    python -m fitting compare --results all_results.csv.gz --format paper-csv --by arch \
        --a mammut --b clip --tasks imagenet1k mscoco_captions:image_retrieval_recall@5 \
        --across pretrain_dataset \
        --bootstrap 1000 --at 1e11 1e12 --table comparison.md
    python -m fitting plot --results results.parquet --task imagenet1k --by arch --out laws.png
    python -m fitting optimal --results results.parquet --task imagenet1k --where arch=clip \
        --quantity samples_seen params
    python -m fitting paper --results all_results.csv.gz \
        --parquet segmentation_results.parquet --out paper_report/

`paper` refits every law of the paper's figure scripts (`fitting.paper_groups`) from its
released files and writes a report with bootstrap intervals, crossover intervals, P(A beats
B), held-out checks and the constant-LR vs cosine agreement.

From Python: `points = eligible_points(read_results(path), 'imagenet1k', 'acc1')`, then
`fit_procedure(points, where=dict(arch='clip'), heldout_threshold=1e10, bootstrap=1000)` for
what `fit` prints, or its steps one at a time: `frontier_points(select(points, arch='clip'))`,
`fit('saturation_both', x, y)`, `resample_runs(...)`, `crossover_interval(...)`.

The command line prints a readable report (and --json writes everything), warns where a
number should not be trusted at face value (`fitting.checks`), refuses to pool the values of
`arch` or `pretrain_dataset` it was not asked to select or compare, and keeps compiled solver
programs in a persistent cache (`fitting.cache`).
"""

from fitting import annealing, checks
from fitting.bootstrap import Bootstrap, resample_points, resample_runs
from fitting.compare import crossover, crossover_interval, probability_a_beats_b
from fitting.filters import eligible_points, frontier_points, select
from fitting.forms import FORMS, Form, get as get_form, loglog_line, paper_grid
from fitting.frontier import pareto_bin, pareto_naive
from fitting.heldout import HeldOut, held_out
from fitting.procedure import ProcedureFit, fit_procedure, select_where
from fitting.replicates import Replicates, find as find_replicates
from fitting.schedules import agreement as schedule_agreement
from fitting.solver import Fit, fit
from fitting.table import import_paper_csv, import_paper_parquet, read_results
