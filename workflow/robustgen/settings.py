"""What each step reads from the study configuration: typed views of config.yaml, and the one way to build them.

Every knob is declared once, in `robustgen.configmodel` (its type, range, description and default), which
generates config.yaml and workflow/schemas/config.schema.yaml.
A settings class below is a frozen dataclass whose field names are config keys of one section; a field
typed with another settings class is a sub-section. No field has a default: a value comes from the config
or the step fails naming the missing key. `slice_of` gives the part of a section a class reads — what a
Snakemake rule passes as its params, so a change reruns exactly the steps that read it.

This module imports no torch: the Snakefile reads it while building the DAG.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping

from . import sections


class SettingsError(ValueError):
    """A step's configuration lacks a key its settings class reads."""


def is_view(kind) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


@functools.cache
def _fields(cls) -> tuple[tuple[str, object], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


def build(kind, value, where: str):
    """`value` (a config section, or a scalar) as `kind`: a settings class is built field by field from the
    keys of the same names; any other kind is taken as it is. `where` is the dotted key, for errors."""
    if not is_view(kind):
        return value
    if not isinstance(value, Mapping):
        raise SettingsError(f"config key '{where}' must be a mapping with keys {', '.join(leaf_keys(kind))}")
    missing = [name for name, _ in _fields(kind) if name not in value]
    if missing:
        keys = ", ".join(f"'{where}.{name}'" for name in missing)
        raise SettingsError(f"config key(s) {keys} missing; add them to config.yaml (see the schema for "
                            "their types and ranges)")
    return kind(**{name: build(sub, value[name], f"{where}.{name}") for name, sub in _fields(kind)})


def section_of(config: Mapping, dotted: str):
    """The config section at dotted key `dotted` (e.g. representations.blocks), or None where it is missing."""
    value = config
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def slice_of(kind, value):
    """The part of a config section (or a scalar) that `kind` reads, as plain values."""
    if not is_view(kind):
        return value
    return {name: slice_of(sub, value[name]) for name, sub in _fields(kind) if name in value}


def leaf_keys(kind, prefix: str = "") -> list[str]:
    """Dotted keys of every value `kind` reads, relative to its section (prefix prepended)."""
    if not is_view(kind):
        return [prefix] if prefix else []
    keys = []
    for name, sub in _fields(kind):
        keys += leaf_keys(sub, f"{prefix}.{name}" if prefix else name)
    return keys


class Knob(typing.NamedTuple):
    """Marks a step argument as read from the config (`typing.Annotated[kind, Knob(...)]`): from `section`,
    which may name another argument ("{study}"). `tracked=False`: read, but no result depends on it, so its
    rule passes it outside the params that trigger reruns. An argument typed with a settings class alone reads
    the section of its own name."""

    section: str
    tracked: bool = True


# the architectures a config names (adversarial.model, representations.*.model): one grammar, for the schema
# (robustgen.configmodel) and the networks (robustgen.models.architecture_spec)
ARCHITECTURE = (r"cnn(_x(?P<extra>[1-9][0-9]*))?|mlp_w(?P<width>[1-9][0-9]*)_d(?P<depth>[1-9][0-9]*)"
                r"|preact_resnet18(_w(?P<preact_width>[1-9][0-9]*))?"
                r"|wrn(?P<wrn_depth>[1-9][0-9]*)_(?P<widen>[1-9][0-9]*)(_w(?P<wrn_width>[1-9][0-9]*))?"
                r"|resnet(?P<resnet_depth>[1-9][0-9]*)_w(?P<resnet_width>[1-9][0-9]*)(_s(?P<stem_stride>[12]))?"
                r"(?P<option_a>_a)?")
ARCHITECTURE_HELP = ("cnn: conv 16, conv 32, dense 100 (Wong et al.); cnn_x<k>: with k more 3x3 conv 32 layers; "
                     "mlp_w<width>_d<depth>: a ReLU MLP of depth Linear layers (mlp_w200_d3: the grokking MLP); "
                     "preact_resnet18[_w<base width, 64>] (Wong et al., Ortiz-Jimenez et al.); "
                     "wrn<depth>_<k>[_w<base width, 16>]: WideResNet-depth-k (wrn28_4: Cianfarani et al.); "
                     "resnet<6n+2>_w<width>[_s<stem stride, 1>][_a]: CIFAR ResNet with BatchNorm (He et al.; shortcuts "
                     "1x1 conv + BN where the shape changes, or with _a zero-padded identities, their option A)")


Device = typing.Annotated[str, Knob("device")]  # config key `device`: where networks are trained and probed


# --- data ---------------------------------------------------------------------------------------------------

DataSource = sections.Data  # the whole section


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """{study}.train_size and .train_subset: the training images a study uses."""

    train_size: int
    train_subset: str


# --- grokking -------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GrokkingGrid:
    """grokking.*: the runs of the study (read by the workflow to fan out)."""

    datasets: list[str]
    init_scales: list[float]
    weight_decays: list[float]
    seeds: list[int]
    excluded_groups: list[dict]  # {init_scale, weight_decay} groups of the product not run
    long_runs: list[dict]  # {init_scale, weight_decay} groups trained to max_steps without the early stop
    jacobian_penalties: list[float]  # GrokAlign's λ: the long-run groups' runs again with the penalty


EvaluationSchedule = sections.GrokkingEvaluation  # the whole section


StopRule = sections.GrokkingStop  # the whole section


@dataclasses.dataclass(frozen=True)
class GrokkingTraining:
    """grokking.*: how one run is trained (its α, weight decay and seed come from the run's identity)."""

    width: int
    depth: int
    lr: float
    batch_size: int
    max_steps: int
    dtype: str
    evaluation: EvaluationSchedule
    stop: StopRule


@dataclasses.dataclass(frozen=True)
class TrainingState:
    """grokking.state_every: how often a training job saves its state for resuming (changes no result)."""

    state_every: int


CheckpointThresholds = sections.Checkpoints  # the whole section


# --- robustness -----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ImageRange:
    first: int
    count: int


Bisection = sections.RobustnessBisection  # the whole section


@dataclasses.dataclass(frozen=True)
class PerNorm:
    l2: float
    linf: float


@dataclasses.dataclass(frozen=True)
class AttacksPerNorm:
    l2: list[str]
    linf: list[str]


Adversarial = sections.RobustnessAdversarial  # the whole section


@dataclasses.dataclass(frozen=True)
class NoiseSearch:
    """robustness.*: how the random-noise radius is searched (bisection along fixed random rays)."""

    seed: int
    noise: str
    draws: int
    clip: bool
    max_radius: float
    bisection: Bisection


@dataclasses.dataclass(frozen=True)
class RandomNoise(NoiseSearch):
    """robustness.*: the probed images and the random-noise radius in bisection mode."""

    images: ImageRange


@dataclasses.dataclass(frozen=True)
class CheckpointProbes(RandomNoise):
    """robustness.*: every probe of the checkpoints (bisection, Walker's grid, PGD)."""

    grid_deltas: list[float]
    adversarial: Adversarial


ProbeTrajectory = sections.RobustnessTrajectory  # the whole section


@dataclasses.dataclass(frozen=True)
class TrajectoryProbes(RandomNoise):
    """robustness.*: the bisection radius at milestone snapshots."""

    trajectory: ProbeTrajectory


@dataclasses.dataclass(frozen=True)
class Bootstrap:
    resamples: int
    seed: int


@dataclasses.dataclass(frozen=True)
class Summaries:
    """{stage}.bootstrap: the intervals of a stage's tables."""

    bootstrap: Bootstrap


# --- sensitivity ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SensitivitySizes:
    test_points: int
    train_points: int
    ellipses: int


@dataclasses.dataclass(frozen=True)
class Sensitivity(SensitivitySizes):
    """sensitivity.* (and capacity.sensitivity.*): Jacobian norms at points, transitions along ellipses."""

    ellipse_points: int
    jacobian_every: int
    seed: int


@dataclasses.dataclass(frozen=True)
class SensitivityTrajectorySizes(SensitivitySizes):
    snapshots: int


@dataclasses.dataclass(frozen=True)
class SensitivityTrajectory:
    """sensitivity.*: the lighter sizes at milestone snapshots, the same ellipses."""

    ellipse_points: int
    jacobian_every: int
    seed: int
    trajectory: SensitivityTrajectorySizes

    def at_snapshots(self) -> Sensitivity:
        t = self.trajectory
        return Sensitivity(test_points=t.test_points, train_points=t.train_points, ellipses=t.ellipses,
                           ellipse_points=self.ellipse_points, jacobian_every=self.jacobian_every, seed=self.seed)


@dataclasses.dataclass(frozen=True)
class RegionSlices:
    """sensitivity.*: the 2-D slice through three training points (Novak's Figure 3)."""

    slice_resolution: int
    slice_margin: float
    seed: int


# --- similarity -----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CkaBatches:
    """similarity.batch_size and passes: whether CKA is accumulated over minibatches, and over how many passes
    (the block stage's scalars, whose estimator is fixed, read only these)."""

    batch_size: int
    passes: int


@dataclasses.dataclass(frozen=True)
class CkaEstimator(CkaBatches):
    """similarity.*, less the images: the study's CKA estimator (every stage that compares representations)."""

    estimator: str
    rbf_threshold: float

    def options(self) -> dict:
        """The keyword arguments of measures.similarity.Representation."""
        return dict(estimator=self.estimator, rbf_threshold=self.rbf_threshold, batch_size=self.batch_size,
                    passes=self.passes)


@dataclasses.dataclass(frozen=True)
class CkaAlongRuns(CkaEstimator):
    """similarity.*, less the images: the estimator and how many milestone snapshots of a run are compared."""

    snapshots: int


@dataclasses.dataclass(frozen=True)
class Similarity(CkaAlongRuns):
    """similarity.*: the compared images, the CKA estimator and the milestone snapshots."""

    images: ImageRange


# --- capacity -------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CapacityGrid:
    """capacity.*: the networks of the sweep (read by the workflow to fan out)."""

    dataset: str
    widths: list[int]
    depths: list[int]
    seeds: list[int]
    optimizers: list[str]
    lrs: list[float]
    batch_sizes: list[int]


@dataclasses.dataclass(frozen=True)
class CapacityTraining:
    """capacity.*: how one network of the sweep is trained (its shape, optimiser and seed: its identity)."""

    max_epochs: int
    dtype: str


@dataclasses.dataclass(frozen=True)
class CapacitySensitivity:
    """capacity.sensitivity.*"""

    sensitivity: Sensitivity


# --- adversarial training -------------------------------------------------------------------------------------

FeatureSweep = sections.AdversarialFeature  # the whole section


@dataclasses.dataclass(frozen=True)
class FeatureOf:
    """adversarial.feature.*: which runs form the feature sweep (for its figure)."""

    feature: FeatureSweep


@dataclasses.dataclass(frozen=True)
class ProbedRuns:
    """adversarial.probes.epsilons: which runs the study's probes measure (all where empty)."""

    epsilons: list[float]


@dataclasses.dataclass(frozen=True)
class CheckedRuns:
    """adversarial.autoattack.images: whether AutoAttack checks the probed runs' networks (0: no)."""

    images: int


@dataclasses.dataclass(frozen=True)
class AdversarialGrid:
    """adversarial.*: the runs of the stage (read by the workflow to fan out)."""

    dataset: str
    model: str
    methods: list[str]
    epsilons: list[float]
    seeds: list[int]
    feature: FeatureSweep
    probes: ProbedRuns
    autoattack: CheckedRuns


PgdTraining = sections.AdversarialPgd  # the whole section


TrainingLog = sections.AdversarialLog  # the whole section


RobustEvaluation = sections.AdversarialEvaluation  # the whole section


OverfittingRule = sections.AdversarialOverfitting  # the whole section


@dataclasses.dataclass(frozen=True)
class AdversarialTraining:
    """adversarial.*: how one run is trained, logged and evaluated (its architecture, method, ε, β and seed: its
    identity)."""

    epochs: int
    batch_size: int
    lr: float
    optimizer: sections.AdversarialOptimizer
    augment: str
    warmup_epochs: int
    dtype: str
    pgd: PgdTraining
    single_step: sections.AdversarialSingleStep
    log: TrainingLog
    evaluation: RobustEvaluation


@dataclasses.dataclass(frozen=True)
class AdversarialProbeSizes:
    images: int
    ellipses: int
    norms: list[str]


@dataclasses.dataclass(frozen=True)
class AdversarialProbes:
    """adversarial.probes.*: how many evaluation images and ellipses probe each network; adversarial.overfitting:
    which runs overfitted, whose network before the collapse is probed too."""

    probes: AdversarialProbeSizes
    overfitting: OverfittingRule


@dataclasses.dataclass(frozen=True)
class AutoAttackCheck:
    """adversarial.autoattack and .evaluation: AutoAttack beside the study's evaluation PGD, on the same images."""

    autoattack: sections.AdversarialAutoattack
    evaluation: RobustEvaluation


@dataclasses.dataclass(frozen=True)
class OverfittingVerdict:
    """adversarial.overfitting.*: the CO rule, applied to the training logs by the tables (not by training)."""

    overfitting: OverfittingRule


@dataclasses.dataclass(frozen=True)
class RadiusProbes(NoiseSearch):
    """robustness.*, less the probed images: how the random-noise and adversarial radii are searched (the
    adversarial stage probes its networks as the grokking study probes its checkpoints)."""

    adversarial: Adversarial


@dataclasses.dataclass(frozen=True)
class EllipseSampling:
    """sensitivity.*, less the sizes: how ellipses are drawn and sampled."""

    ellipse_points: int
    jacobian_every: int
    seed: int


# --- robust vs standard representations ---------------------------------------------------------------------

GrokkingFamily = sections.RepresentationsGrokking  # the whole section


@dataclasses.dataclass(frozen=True)
class BlockGrid:
    """representations.blocks.*: the block networks the workflow fans out (the training images: TrainingSet)."""

    dataset: str
    model: str
    seeds: list[int]


@dataclasses.dataclass(frozen=True)
class BlockTraining:
    """representations.blocks.*: how a block network is trained and evaluated (its method and seed: its
    identity; its data: the study's split)."""

    model: str
    epsilon: float
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    pgd: sections.RepresentationsBlocksPgd
    evaluation_images: int
    evaluation_steps: int


@dataclasses.dataclass(frozen=True)
class BlockComparison:
    """representations.blocks.*: on how many test images (after the evaluation images) the networks of a seed are
    compared, and what counts as a block."""

    images: int
    threshold: float


@dataclasses.dataclass(frozen=True)
class RepresentationGrid:
    """representations.*: the networks compared (read by the workflow to fan out; trained by the adversarial
    stage's rule)."""

    model: str
    epsilon: float
    seeds: list[int]
    grokking: GrokkingFamily


@dataclasses.dataclass(frozen=True)
class InputAttack:
    steps: int
    step: float


@dataclasses.dataclass(frozen=True)
class RepresentationImages:
    """representations.images: how many test images every comparison uses."""

    images: int


@dataclasses.dataclass(frozen=True)
class RepresentationComparison(RepresentationImages):
    """representations.*: the compared images and the PGD inputs."""

    pgd_inputs: InputAttack


@dataclasses.dataclass(frozen=True)
class GrokkingPlacement(RepresentationImages):
    """representations.*: the compared images and the intervals over grokking seeds."""

    bootstrap: Bootstrap


@dataclasses.dataclass(frozen=True)
class RepresentationIntervals:
    """representations.bootstrap: the intervals over seeds of the stage's tables."""

    bootstrap: Bootstrap


# --- delayed robustness ---------------------------------------------------------------------------------------

ComplexityFrames = sections.DelayedComplexity  # the whole section


RadiusAlongRun = sections.DelayedAdversarial  # the whole section


@dataclasses.dataclass(frozen=True)
class DelayedMeasures:
    """delayed.*: what is measured at a run's milestone snapshots and checkpoints."""

    snapshots: int
    complexity: ComplexityFrames
    adversarial: RadiusAlongRun


@dataclasses.dataclass(frozen=True)
class AdversarialSearch:
    """robustness.images, .clip, .adversarial: the probed images and how an adversarial radius is searched."""

    images: ImageRange
    clip: bool
    adversarial: Adversarial


OnsetRule = sections.DelayedOnset  # the whole section


@dataclasses.dataclass(frozen=True)
class DelayedFigure:
    """delayed.onset and .adversarial: which local-complexity curve is timed, and the robust-accuracy radii."""

    onset: OnsetRule
    adversarial: RadiusAlongRun


@dataclasses.dataclass(frozen=True)
class DelayedSummaries(DelayedFigure):
    """delayed.onset, .adversarial and .bootstrap: the onset steps, and their intervals over seeds."""

    bootstrap: Bootstrap


# --- claims ---------------------------------------------------------------------------------------------------

ClaimRule = sections.Claims  # the whole section


@dataclasses.dataclass(frozen=True)
class LongRunGroups:
    """grokking.long_runs: the groups trained to max_steps, whose runs the delayed-robustness claims read."""

    long_runs: list[dict]
