"""Scaling-law fitting in JAX: forms, frontiers, multi-start fits, bootstrap and comparisons.

Independent of the training stack (it never imports `scaling_vlm`), so any results table
can be fitted without a model in sight.
"""

from fitting import annealing
from fitting.bootstrap import Bootstrap, resample_points, resample_runs
from fitting.compare import crossover, crossover_interval, probability_a_beats_b
from fitting.filters import eligible_points, frontier_points, select
from fitting.forms import FORMS, Form, get as get_form, loglog_line, paper_grid
from fitting.frontier import pareto_bin, pareto_naive
from fitting.heldout import HeldOut, held_out
from fitting.schedules import agreement as schedule_agreement
from fitting.solver import Fit, fit
from fitting.table import import_paper_csv, import_paper_parquet, read_results
