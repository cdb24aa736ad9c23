# Generated from workflow/robustgen/configmodel.py by `python -m robustgen.configmodel --write`: edit the models.
"""Every config section as a frozen dataclass (a settings view that reads the whole section)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Data:
    """Where torchvision datasets live and how a study's training images are drawn."""

    dir: str
    download: bool
    split_seed: int
    verify_checksums: bool


@dataclasses.dataclass(frozen=True)
class GrokkingEvaluation:
    """metrics and a snapshot at every evaluation step:"""

    per_decade: int
    max_interval: int


@dataclasses.dataclass(frozen=True)
class GrokkingStop:
    """stop this many steps after test accuracy first exceeds test_acc"""

    test_acc: float
    steps_after: int


@dataclasses.dataclass(frozen=True)
class Grokking:
    """Omnigrok's MNIST grokking (docs/protocols.md §2): one run per dataset × init scale × weight decay × seed."""

    datasets: list[str]
    train_size: int
    train_subset: str
    init_scales: list[float]
    weight_decays: list[float]
    seeds: list[int]
    width: int
    depth: int
    lr: float
    batch_size: int
    max_steps: int
    dtype: str
    evaluation: GrokkingEvaluation
    stop: GrokkingStop
    state_every: int
    excluded_groups: list[dict]
    long_runs: list[dict]
    jacobian_penalties: list[float]


@dataclasses.dataclass(frozen=True)
class Checkpoints:
    """Walker's checkpoints (docs/protocols.md §3); changing these reruns extraction and what follows, never
    training."""

    memorised_train_acc: float
    generalised_test_acc: float


@dataclasses.dataclass(frozen=True)
class RobustnessImages:
    """the probed test images: first .. first+count-1 (Walker: 1000-1499)"""

    first: int
    count: int


@dataclasses.dataclass(frozen=True)
class RobustnessBisection:
    """bisection mode: first boundary crossing along k fixed rays"""

    bracket_step: float
    tol: float


@dataclasses.dataclass(frozen=True)
class RobustnessAdversarialMaxEps:
    """search limit of the PGD radius, per norm"""

    l2: float
    linf: float


@dataclasses.dataclass(frozen=True)
class RobustnessAdversarialTol:
    """bisection tolerance of the PGD radius, per norm"""

    l2: float
    linf: float


@dataclasses.dataclass(frozen=True)
class RobustnessAdversarialAttacks:
    """minimal-norm attacks (foolbox) beside PGD; per image the tightest verified radius wins"""

    l2: list[str]
    linf: list[str]


@dataclasses.dataclass(frozen=True)
class RobustnessAdversarial:
    """PGD radius: smallest eps at which PGD finds a misclassified point (bisection on eps)"""

    norms: list[str]
    steps: int
    step_size: float
    targeted: bool
    max_eps: RobustnessAdversarialMaxEps
    tol: RobustnessAdversarialTol
    attacks: RobustnessAdversarialAttacks


@dataclasses.dataclass(frozen=True)
class RobustnessTrajectory:
    """bisection radius along training, at milestone snapshots"""

    snapshots: int
    images: int


@dataclasses.dataclass(frozen=True)
class RobustnessBootstrap:
    """interval of the generalised/memorised median ratio"""

    resamples: int
    seed: int


@dataclasses.dataclass(frozen=True)
class Robustness:
    """Robustness probes of every checkpoint and along every run's snapshots (docs/protocols.md §4)."""

    images: RobustnessImages
    seed: int
    noise: str
    draws: int
    clip: bool
    max_radius: float
    grid_deltas: list[float]
    bisection: RobustnessBisection
    adversarial: RobustnessAdversarial
    trajectory: RobustnessTrajectory
    bootstrap: RobustnessBootstrap


@dataclasses.dataclass(frozen=True)
class SensitivityTrajectory:
    """lighter sizes at each milestone snapshot"""

    snapshots: int
    test_points: int
    train_points: int
    ellipses: int


@dataclasses.dataclass(frozen=True)
class SensitivityBootstrap:
    """intervals of the summaries (seeds, then items within a seed)"""

    resamples: int
    seed: int


@dataclasses.dataclass(frozen=True)
class Sensitivity:
    """Sensitivity (Novak et al. 2018; docs/protocols.md §5) of every checkpoint and along every run's snapshots."""

    test_points: int
    train_points: int
    ellipses: int
    ellipse_points: int
    jacobian_every: int
    seed: int
    slice_resolution: int
    slice_margin: float
    trajectory: SensitivityTrajectory
    bootstrap: SensitivityBootstrap


@dataclasses.dataclass(frozen=True)
class SimilarityImages:
    """the fixed set of test images whose activations are compared"""

    first: int
    count: int


@dataclasses.dataclass(frozen=True)
class Similarity:
    """Representation similarity (docs/protocols.md §7): layer x layer CKA within and between checkpoints, across
    seeds, and from every milestone snapshot to the final network."""

    images: SimilarityImages
    estimator: str
    rbf_threshold: float
    batch_size: int
    passes: int
    snapshots: int


@dataclasses.dataclass(frozen=True)
class CapacitySensitivity:
    """per network, on standardised inputs"""

    test_points: int
    train_points: int
    ellipses: int
    ellipse_points: int
    jacobian_every: int
    seed: int


@dataclasses.dataclass(frozen=True)
class CapacityBootstrap:
    """intervals of the correlations with the generalisation gap"""

    resamples: int
    seed: int


@dataclasses.dataclass(frozen=True)
class Capacity:
    """Capacity vs generalisation (Novak et al. Figure 1; docs/protocols.md §6): fully-connected ReLU networks of
    every width x depth (x optimizer x lr x batch size) x seed, trained with cross-entropy to 100 % training
    accuracy."""

    dataset: str
    train_size: int
    train_subset: str
    widths: list[int]
    depths: list[int]
    seeds: list[int]
    optimizers: list[str]
    lrs: list[float]
    batch_sizes: list[int]
    max_epochs: int
    dtype: str
    sensitivity: CapacitySensitivity
    bootstrap: CapacityBootstrap


@dataclasses.dataclass(frozen=True)
class AdversarialFeature:
    """Ortiz-Jiménez et al.: x + β·v_y, not clamped; v_y = sign(IDCT of one low-frequency DCT coefficient), every
    entry ±1 (classes 5-9: the negatives of 0-4); needs 10 classes"""

    method: str
    epsilon: float
    betas: list[float]


@dataclasses.dataclass(frozen=True)
class AdversarialOptimizer:
    """the optimiser and its learning-rate schedule (set every iteration; adversarial.lr is its peak)"""

    name: str
    momentum: float
    nesterov: bool
    weight_decay: float
    schedule: str
    peak: float
    milestones: list[float]


@dataclasses.dataclass(frozen=True)
class AdversarialPgd:
    """PGD-k adversarial training: uniform start, k steps of step·ε"""

    steps: int
    step: float


@dataclasses.dataclass(frozen=True)
class AdversarialSingleStep:
    """the single-step methods' knobs (adversarial.methods rs_fgsm, n_fgsm, grad_align)"""

    rs_fgsm_step: float
    n_fgsm_noise: float
    grad_align: float
    grad_align_epsilon: float


@dataclasses.dataclass(frozen=True)
class AdversarialLog:
    """every `every` iterations and every epoch, on the first `images` test images (held out)"""

    every: int
    images: int
    pgd_steps: int


@dataclasses.dataclass(frozen=True)
class AdversarialEvaluation:
    """of the best and the final network, on the next `images` test images"""

    images: int
    steps: int
    step: float
    restarts: int


@dataclasses.dataclass(frozen=True)
class AdversarialAutoattack:
    """AutoAttack (Croce & Hein 2020; standard version: APGD-CE, APGD-T, FAB-T and Square, L-inf at the run's
    epsilon) beside the evaluation PGD on the same images, for the networks of the probed runs on the clean data
    (beta = 0); needs the optional package pyautoattack (pip install -e ".[autoattack]")"""

    images: int
    batch_size: int


@dataclasses.dataclass(frozen=True)
class AdversarialOverfitting:
    """CO (docs/protocols.md §8), judged after the ε warm-up: held-out PGD accuracy falls more"""

    drop: float
    gap: float
    floor: float
    clean_drop: float


@dataclasses.dataclass(frozen=True)
class AdversarialProbes:
    """the study's radii and sensitivities of every final network (and of the best one where it is the network just
    before a collapse)"""

    epsilons: list[float]
    images: int
    norms: list[str]
    ellipses: int


@dataclasses.dataclass(frozen=True)
class Adversarial:
    """Adversarial training and catastrophic overfitting (docs/protocols.md §8): one run per method × ε × seed, and
    the data intervention x + β·v_y swept over β at one method and ε. L∞ threat model, images in [0, 1], cross-
    entropy."""

    dataset: str
    train_size: int
    train_subset: str
    model: str
    methods: list[str]
    epsilons: list[float]
    seeds: list[int]
    feature: AdversarialFeature
    epochs: int
    batch_size: int
    lr: float
    optimizer: AdversarialOptimizer
    augment: str
    warmup_epochs: int
    dtype: str
    pgd: AdversarialPgd
    single_step: AdversarialSingleStep
    log: AdversarialLog
    evaluation: AdversarialEvaluation
    autoattack: AdversarialAutoattack
    overfitting: AdversarialOverfitting
    probes: AdversarialProbes


@dataclasses.dataclass(frozen=True)
class RepresentationsPgdInputs:
    """the heatmaps' adversarial inputs: PGD against the row network (uniform start)"""

    steps: int
    step: float


@dataclasses.dataclass(frozen=True)
class RepresentationsGrokking:
    """the grokking MLP trained standard and with PGD, beside which the grokking checkpoints"""

    model: str
    epsilon: float


@dataclasses.dataclass(frozen=True)
class RepresentationsBootstrap:
    """intervals over seeds"""

    resamples: int
    seed: int


@dataclasses.dataclass(frozen=True)
class RepresentationsBlocksPgd:
    """PGD-k training of the block networks: uniform start, k steps of step·ε"""

    steps: int
    step: float


@dataclasses.dataclass(frozen=True)
class RepresentationsBlocks:
    """block structure at depth (docs/protocols.md §7.2): a CIFAR-style ResNet with BatchNorm trained standard and
    with PGD-k on few images (SGD with Nesterov momentum, one learning-rate cycle), beside each seed's untrained
    network (the control); the block scalar: the most consecutive layers whose every pair has debiased CKA above
    `threshold`"""

    dataset: str
    train_size: int
    train_subset: str
    model: str
    seeds: list[int]
    epsilon: float
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    pgd: RepresentationsBlocksPgd
    evaluation_images: int
    evaluation_steps: int
    images: int
    threshold: float


@dataclasses.dataclass(frozen=True)
class Representations:
    """Robust vs standard representations (Cianfarani et al.; docs/protocols.md §7): layer × layer CKA (heatmaps:
    similarity.*; every scalar: debiased linear CKA) of standard, PGD-trained and FGSM-trained networks (best and
    final: before and after catastrophic overfitting) of one deeper architecture and of each seed's untrained
    initialisation (the control), trained by the adversarial stage's rule on its data and with its training knobs
    (adversarial.*); the grokking checkpoints beside the grokking MLP's own family; and block structure at depth
    (representations.blocks: a ResNet of its own, trained standard and with PGD, beside each seed's untrained
    network)."""

    model: str
    epsilon: float
    seeds: list[int]
    images: int
    pgd_inputs: RepresentationsPgdInputs
    grokking: RepresentationsGrokking
    bootstrap: RepresentationsBootstrap
    blocks: RepresentationsBlocks


@dataclasses.dataclass(frozen=True)
class DelayedComplexity:
    """local complexity: hidden units whose sign changes over the frame x ± r·v_p"""

    points: int
    directions: int
    radii: list[float]
    seed: int


@dataclasses.dataclass(frozen=True)
class DelayedAdversarial:
    """the tightest radius (PGD and the minimal-norm attacks, robustness.adversarial.*) ..."""

    norm: str
    images: int
    epsilons: list[float]


@dataclasses.dataclass(frozen=True)
class DelayedOnset:
    """the onset steps read off each run's curves"""

    robust_fraction: float
    complexity_radius: float
    complexity_points: str


@dataclasses.dataclass(frozen=True)
class DelayedBootstrap:
    """intervals over seeds"""

    resamples: int
    seed: int


@dataclasses.dataclass(frozen=True)
class Delayed:
    """Delayed robustness through grokking (Humayun et al. 2024; GrokAlign; docs/protocols.md §9): local complexity,
    the adversarial radius and robust accuracy at every milestone snapshot and checkpoint of every grokking run (the
    long and the Jacobian-penalised runs too), the steps of memorisation, generalisation, robustness onset and the
    local-complexity peak and descent, and the lags between them over seeds."""

    snapshots: int
    complexity: DelayedComplexity
    adversarial: DelayedAdversarial
    onset: DelayedOnset
    bootstrap: DelayedBootstrap


@dataclasses.dataclass(frozen=True)
class Claims:
    """the study's conclusions evaluated from its tables (docs/protocols.md §11)"""

    min_seeds: int
    level: float


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """robustgen study configuration (config.yaml). Each key says what it sets."""

    device: str
    deterministic: bool
    data: Data
    grokking: Grokking
    checkpoints: Checkpoints
    robustness: Robustness
    sensitivity: Sensitivity
    similarity: Similarity
    capacity: Capacity
    adversarial: Adversarial
    representations: Representations
    delayed: Delayed
    claims: Claims
