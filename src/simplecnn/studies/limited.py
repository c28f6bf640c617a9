"""Study: ResNets limited to 5 M parameters (source 004) and what they owe to augmentation.

The six designs are named configurations of the one ResNet builder (``models.LIMITED``);
this module holds the two regimens (the paper's multi-step SGD, and ``budget``: the core's
one-cycle training options that fit a CPU budget without touching the architecture), the
paper's augmentations (online as a policy, or offline as fixed copies), the ablation
settings, the training grid, each design's measured cost, and the statistics and checks the
chapter states: mean ± std over seeds, paired differences between designs with their
intervals, rank agreement with the paper's Table 1, and whether the run's regime can answer
its question at all (accuracy floor, overfitting without augmentation, resolved gains).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm.auto import tqdm

from simplecnn.core import augment
from simplecnn.core.cache import Cache
from simplecnn.core.complexity import macs, train_images_per_s
from simplecnn.core.data import DataSplits, ImageSet
from simplecnn.core.metrics import accuracy, holm
from simplecnn.core.device import device_description
from simplecnn.core.memory import ISOLATED_ENV, activation_bytes, measure_train_step_peak
from simplecnn.core.models import LIMITED, ResNetSpec, build_model, count_params
from simplecnn.core.results import Headline
from simplecnn.core.train import TrainConfig, train_model

DESIGNS = ["I", "IIa", "IIb", "IIIa", "IIIb", "IV"]
PAPER_ACC = {"I": 94.24, "IIa": 95.67, "IIb": 95.17, "IIIa": 95.10, "IIIb": 93.82, "IV": 92.42}  # Table 1, %
# The paper's regimen (source 004 §2): a 5 M budget, 50 epochs of batch 32 over the 50 k
# originals plus five offline copies (300 k images), milestones at epochs 15/25/35/45.
PAPER = {"budget": 5_000_000, "epochs": 50, "batch_size": 32, "copies": 5, "images": 300_000, "lr": 0.1,
         "milestones": (15, 25, 35, 45), "momentum": 0.9, "weight_decay": 1e-4, "gamma": 0.1,
         "params_m": 4.9,  # "about 4.9 million parameters", each design
         "iv_kernel": 7, "iv_skip": 5}  # design IV: "each convolutional layer" 3x3 -> 7x7, skips 1x1 -> 5x5
MILESTONE_FRACTIONS = tuple(m / PAPER["epochs"] for m in PAPER["milestones"])  # 0.3, 0.5, 0.7, 0.9
COLOR_RANGE = (0.5, 1.5)  # "each change was in between 0.5 and 1.5 of the original value"
PAPER_SETTING = "CIFAR-10 test, full width (~4.9 M parameters), 50 epochs of its offline ×5 set, one run"
HUE_READINGS = ("scale", "shift")  # the paper's sentence; torchvision's ColorJitter(hue=0.5)
ANCHORS = pd.DataFrame([  # reference points quoted in the chapter (params in millions, CIFAR-10 test %)
    {"model": "ResNet-20 (He et al. 2016)", "params_m": 0.27, "acc": 91.25},
    {"model": "airbench95 (Jordan 2024)", "params_m": 4.6, "acc": 95.01},
    {"model": "Efficient-ResNets (2022)", "params_m": 4.70, "acc": 96.04},
])


# --- the fifth augmentation: hue as the paper states it -----------------------------------

def scale_hue(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Multiply each uint8 image's hue (in turns, modulo one) by its factor.

    The paper's fifth augmentation changes hue "between 0.5 and 1.5 of the original value";
    torchvision's ColorJitter(hue=0.5) instead adds up to half a turn, which randomises
    colour entirely. Scaling keeps reds (hue 0) red and moves other hues in proportion."""
    hsv = augment.rgb_to_hsv(x.float() / 255)
    h = (hsv[:, 0] * factors.to(x.device).view(-1, 1, 1)).remainder(1.0)
    return augment.to_uint8(augment.hsv_to_rgb(torch.stack((h, hsv[:, 1], hsv[:, 2]), 1)))


@augment.register("color_hue_scale")
def color_hue_scale(x: torch.Tensor, g: torch.Generator, index: torch.Tensor, epoch: int) -> torch.Tensor:
    """Source 004's fifth augmentation as written: brightness, contrast and saturation
    factors in [0.5, 1.5] (as core's ``color``) and a hue *factor* in [0.5, 1.5]."""
    low, high = COLOR_RANGE
    f = augment.jitter_bcs(x, g, low, high)
    hue = low + (high - low) * torch.rand(len(x), generator=g)
    return scale_hue((f * 255).round().to(torch.uint8), hue)


def augmentations(hue: str = "scale") -> tuple[str, ...]:
    """The paper's five augmentations in its order; ``hue`` picks the fifth's hue reading."""
    if hue not in HUE_READINGS:
        raise ValueError(f"hue must be one of {HUE_READINGS}, got {hue!r}")
    return ("flip", "crop", "scale_crop", "rotate", "color_hue_scale" if hue == "scale" else "color")


AUGMENTATIONS = augmentations("scale")


# --- online policy or offline copies --------------------------------------------------------

def policy(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The paper's offline ×(1+k) set as an online policy over ``names`` (empty: none)."""
    return (f"oneof:{'+'.join(names)}",) if names else ()


@dataclass(frozen=True)
class Setting:
    """One augmentation setting of a training run.

    ``combine="oneof"`` is the paper's form: each draw shows the image as it is or with
    exactly one of ``names`` (online), or, with ``offline`` = k > 0, the training set is the
    originals plus k fixed copies and nothing is augmented online. ``combine="each"``
    applies every name to every draw (the modern crop+flip default). ``epochs`` overrides
    the grid's epoch count (the offline row of the ablation runs fewer epochs of its larger
    set, so that it takes as many steps as the online rows)."""

    names: tuple[str, ...] = ()
    combine: str = "oneof"
    offline: int = 0
    epochs: int | None = None

    def __post_init__(self):
        if self.combine not in ("oneof", "each"):
            raise ValueError(f"combine must be 'oneof' or 'each', got {self.combine!r}")
        if self.offline and (self.combine != "oneof" or not self.names):
            raise ValueError("offline copies need the paper's one-of form and at least one augmentation")
        object.__setattr__(self, "names", tuple(self.names))

    def online(self) -> tuple[str, ...]:
        """What TrainConfig.augment gets: nothing for offline sets."""
        if self.offline or not self.names:
            return ()
        return policy(self.names) if self.combine == "oneof" else self.names


CROP_FLIP = Setting(("crop", "flip"), "each")


def ablation_settings(names: tuple[str, ...] = AUGMENTATIONS, leave_one_out: bool = True, offline_copies: int = 0,
                      epochs: int | None = None) -> dict[str, Setting]:
    """none, all five (the paper's one-of policy), crop+flip (each draw), each alone, each
    left out (optional), and, with ``offline_copies`` k, all five as the paper's offline
    ×(1+k) set at the online rows' number of steps (``epochs`` / (1 + k) epochs)."""
    label = {n: "color" if n.startswith("color") else n for n in names}
    settings = {"none": Setting(), "all": Setting(tuple(names)), "crop+flip": CROP_FLIP}
    settings.update({f"only {label[a]}": Setting((a,)) for a in names})
    if leave_one_out:
        settings.update({f"without {label[a]}": Setting(tuple(b for b in names if b != a)) for a in names})
    if offline_copies:
        if epochs is None or epochs % (offline_copies + 1):
            raise ValueError(f"the offline row needs epochs divisible by {offline_copies + 1} (the copies plus the "
                             f"originals) to take as many steps as the online rows; got {epochs}")
        settings[f"all, offline ×{offline_copies}"] = Setting(tuple(names), offline=offline_copies,
                                                              epochs=epochs // (offline_copies + 1))
    return settings


def offline_copies_of(train: ImageSet, names: tuple[str, ...] | list[str], copies: int, seed: int,
                      chunk: int = 4096) -> ImageSet:
    """The originals followed by ``copies`` augmented copies of the whole set, drawn once.

    Copy j applies ``names[j % len(names)]``: with the paper's five names and five copies,
    one copy per augmentation (300 k images from 50 k). As in the paper the ``flip`` copy is
    mirrored outright and, when ``flip`` is among ``names``, every other copy is randomly
    flipped first. One seeded generator draws all copies, so a seed fixes the set."""
    if copies < 0:
        raise ValueError(f"offline copies must be >= 0, got {copies}")
    if copies and not names:
        raise ValueError("offline copies need at least one augmentation")
    if copies == 0:
        return train
    g = torch.Generator().manual_seed(seed)
    parts = [train.images]
    for j in range(copies):
        name = names[j % len(names)]
        fn = augment.mirror if name == "flip" else augment.AUGMENTATIONS[name]
        out = torch.empty_like(train.images)
        for start in range(0, len(train), chunk):
            index = torch.arange(start, min(start + chunk, len(train)))
            x = train.images[index]
            if name != "flip" and "flip" in names:
                x = augment.flip(x, g, index, 0)
            out[index] = fn(x, g, index, 0)
        parts.append(out)
    return ImageSet(torch.cat(parts), train.labels.repeat(copies + 1), train.classes)


def with_offline_copies(data: DataSplits, names: tuple[str, ...], copies: int, seed: int) -> DataSplits:
    """``data`` whose training set holds the originals plus ``copies`` fixed augmented copies;
    the spec records them, so such runs never share a cache entry with online ones."""
    if copies == 0:
        return data
    train = offline_copies_of(data.train, names, copies, seed)
    spec = {**data.spec, "offline": {"names": list(names), "copies": copies, "seed": seed}}
    return replace(data, train=train, spec=spec)


# --- regimen, designs, training grid --------------------------------------------------------

def paper_regimen(epochs: int, batch_size: int, lr: float, augment: tuple[str, ...], seed: int) -> TrainConfig:
    """SGD with momentum 0.9 (no Nesterov), weight decay 1e-4, plain cross-entropy, the rate
    divided by 10 at 30/50/70/90 % of training (the paper's 15/25/35/45 of 50 epochs)."""
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, momentum=PAPER["momentum"], nesterov=False,
                       weight_decay=PAPER["weight_decay"], schedule="multistep",
                       milestones=tuple(epochs * f for f in MILESTONE_FRACTIONS), gamma=PAPER["gamma"],
                       label_smoothing=0.0, augment=augment, seed=seed)


REGIMENS = ("paper", "budget")


@dataclass(frozen=True)
class Regimen:
    """How every run of a grid trains, apart from its augmentation, seed and epochs.

    ``paper``: ``paper_regimen`` (label smoothing, EMA and TTA are ignored). ``budget``:
    the core's training options that do not change the architecture, for a short budget:
    Nesterov SGD with a one-cycle rate that decays to zero at the end of the budget (the
    schedule that wins under a fixed budget, Li et al. 2020), weight decay 5e-4, label
    smoothing, an optional EMA of the weights and flip test-time augmentation."""

    name: str = "budget"
    batch_size: int = 256
    lr: float = 0.4
    label_smoothing: float = 0.1
    ema: float = 0.0
    tta: bool = True
    cpu_bf16: bool = False  # bf16 autocast on the CPU too (either regimen)

    def __post_init__(self):
        if self.name not in REGIMENS:
            raise ValueError(f"unknown regimen {self.name!r}; known: {REGIMENS}")

    def config(self, epochs: int, augment: tuple[str, ...], seed: int) -> TrainConfig:
        if self.name == "paper":
            return replace(paper_regimen(epochs, self.batch_size, self.lr, augment, seed), cpu_bf16=self.cpu_bf16)
        return TrainConfig(epochs=epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=5e-4,
                           schedule="onecycle", warmup=0.2, label_smoothing=self.label_smoothing,
                           augment=augment, seed=seed, ema=self.ema, tta=self.tta, cpu_bf16=self.cpu_bf16)

    def describe(self) -> str:
        if self.name == "paper":
            return f"the paper's multi-step SGD at batch {self.batch_size}, lr {self.lr}"
        extras = [f"label smoothing {self.label_smoothing}"] + ([f"EMA {self.ema}"] if self.ema else []) + (
            ["flip test-time augmentation"] if self.tta else []) + (["bf16 autocast"] if self.cpu_bf16 else [])
        return f"one-cycle Nesterov SGD to lr {self.lr} at batch {self.batch_size}, " + ", ".join(extras)


def kernel_text(design: str) -> dict[str, str]:
    """The kernels a design's spec sets, as text (``7×7``) for the chapter to glue."""
    spec: ResNetSpec = LIMITED[design]
    side = lambda k: f"{k}×{k}"  # noqa: E731
    stem = 3  # the CIFAR stem of core.models.ResNet is a 3×3 conv in every design
    return {"stem": side(stem), "first": side(spec.first_kernel), "second": side(spec.kernel),
            "skip": side(spec.skip_kernel)}


def params_with_stem_kernel(design: str, kernel: int, num_classes: int = 10) -> int:
    """Parameters of a design at paper scale with its stem conv given ``kernel`` (the code's
    stem is 3×3): what the other reading of design IV's "each convolutional layer" costs."""
    model = build_model(f"limited_{design}", num_classes)
    conv = model.stem[0]
    model.stem[0] = torch.nn.Conv2d(conv.in_channels, conv.out_channels, kernel, padding=kernel // 2, bias=False)
    return count_params(model)


def design_table(width: float, resolution: int = 32, num_classes: int = 10) -> pd.DataFrame:
    """Exact parameter counts at paper scale, and parameters and MACs at ``width``."""
    rows = []
    for d in DESIGNS:
        paper = build_model(f"limited_{d}", num_classes)
        small = build_model(f"limited_{d}", num_classes, width=width)
        rows.append({"design": d, "paper_params": count_params(paper), "paper_macs": macs(paper, resolution),
                     "params": count_params(small), "macs": macs(small, resolution), "paper_acc": PAPER_ACC[d]})
    return pd.DataFrame(rows).set_index("design")


def train_and_test(design: str, data: DataSplits, config: TrainConfig, width: float,
                   cache: Cache | None = None, track_val: bool = True, train_images: ImageSet | None = None) -> dict:
    """Train (or load) one design and return its test accuracy, time and history; with
    ``train_images`` also its accuracy on them (un-augmented: does it fit its training set?)."""
    trained = train_model(f"limited_{design}", data, config, {"width": width}, cache, track_val=track_val)
    acc = accuracy(trained.logits(data.test, "test"), data.test.labels)
    out = {"design": design, "seed": config.seed, "acc": acc, "train_s": trained.train_s, "history": trained.history}
    if train_images is not None:
        out["train_acc"] = accuracy(trained.logits(train_images, "train"), train_images.labels)
    return out


def train_grid(designs: Sequence[str], settings: dict[str, Setting], seeds: Sequence[int], data: DataSplits,
               width: float, epochs: int, regimen: Regimen, track_val: bool = True, train_acc: bool = False,
               cache: Cache | None = None) -> pd.DataFrame:
    """One row per design × augmentation setting × seed, trained with ``regimen``.

    Offline settings train on the originals plus their fixed copies, drawn once per setting
    (seed 0 of the copies, the same for every design and training seed); ``train_acc``
    scores each run on the original training images too."""
    rows = []
    for name, setting in tqdm(settings.items(), desc="settings", disable=len(settings) == 1):
        train_data = with_offline_copies(data, setting.names, setting.offline, seed=0)
        for design in tqdm(designs, desc="designs", disable=len(designs) == 1):
            for seed in seeds:
                config = regimen.config(setting.epochs or epochs, setting.online(), seed)
                rows.append({"setting": name, **train_and_test(design, train_data, config, width, cache, track_val,
                                                               data.train if train_acc else None)})
    return pd.DataFrame(rows)


def design_costs(designs: Sequence[str], resolution: int = 32, batch: int = 32, num_classes: int = 10,
                 measure: bool = True, cache: Cache | None = None) -> pd.DataFrame:
    """What each design costs at paper scale (full width): exact parameters, MACs, fp32
    activation memory of one image, and, with ``measure``, the measured peak memory of one
    training step at ``batch`` (fresh process) and training images/s on this device. The
    measurements are cached by design, batch, resolution and device."""
    cache = cache or Cache()
    rows = []
    for d in designs:
        model = build_model(f"limited_{d}", num_classes)
        with torch.no_grad():
            row = {"design": d, "paper_params": count_params(model), "paper_macs": macs(model, resolution),
                   "activation_bytes": activation_bytes(model, (3, resolution, resolution))}
        if measure:
            spec = {"design": d, "batch": batch, "resolution": resolution, "device": device_description(),
                    "torch": torch.__version__, "allocator": ISOLATED_ENV}
            row["train_step_peak_bytes"] = cache.get_or_compute("limited_peak", spec, lambda: measure_train_step_peak(
                "simplecnn.core.models:build_model", f"limited_{d}", batch, resolution, num_classes))
            row["train_img_s"] = cache.get_or_compute("limited_rate", spec, lambda: train_images_per_s(
                build_model(f"limited_{d}", num_classes), batch, resolution, num_classes))
        rows.append(row)
    return pd.DataFrame(rows).set_index("design")


def history_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run and epoch: design, seed and that epoch's history entries."""
    return pd.DataFrame([{"design": r.design, "seed": r.seed, **h} for r in runs.itertuples() for h in r.history])


# --- statistics -------------------------------------------------------------------------------

def summarise(runs: pd.DataFrame, by: str) -> pd.DataFrame:
    """Mean and sample std (ddof 1) of accuracy in %, mean training time and runs per ``by``."""
    grouped = runs.groupby(by, sort=False)
    return pd.DataFrame({"acc_mean": grouped["acc"].mean() * 100, "acc_std": grouped["acc"].std(ddof=1) * 100,
                         "train_s": grouped["train_s"].mean(), "n": grouped.size()})


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of the mean of ``values``; NaN bounds with one value."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


PAIRWISE_TESTS = ("pooled", "paired")


def pairwise_differences(runs: pd.DataFrame, level: float = 0.95, alpha: float = 0.05,
                         test: str = "pooled") -> pd.DataFrame:
    """Every pair of designs: the difference of their mean test accuracies (percentage
    points), an interval, a two-sided p-value Holm-adjusted over all pairs, and
    ``resolved`` when the adjusted p is below ``alpha``.

    ``pooled`` (default): Student's t with the seed-to-seed variance pooled over every design
    (one-way ANOVA's residual, N − k degrees of freedom), the usual choice when each design
    has few seeds and their noise is alike: with 2 seeds a pair alone has 1 degree of
    freedom, the pool of 6 designs 6. ``paired``: the t-test of the per-seed differences
    (only that pair's seeds). ``std`` is the std of the per-seed differences either way.
    With one seed per design nothing is resolved."""
    if test not in PAIRWISE_TESTS:
        raise ValueError(f"unknown pairwise test {test!r}; known: {PAIRWISE_TESTS}")
    acc = runs.pivot_table(index="seed", columns="design", values="acc", sort=False) * 100
    counts = acc.count()
    dof = int(counts.sum() - len(counts))
    pooled_var = float(sum(acc[c].dropna().var(ddof=1) * (counts[c] - 1) for c in acc.columns if counts[c] > 1)
                       / dof) if dof > 0 else math.nan
    rows, p_values = [], {}
    for a, b in itertools.combinations(acc.columns, 2):
        d = (acc[a] - acc[b]).dropna().to_numpy()
        std = float(d.std(ddof=1)) if len(d) > 1 else math.nan
        if test == "paired":
            mean, low, high = t_interval(d, level)
            se, df = (std / math.sqrt(len(d)), len(d) - 1) if len(d) > 1 else (math.nan, 0)
        else:
            mean = float(acc[a].mean() - acc[b].mean())
            se, df = math.sqrt(pooled_var * (1 / counts[a] + 1 / counts[b])) if dof > 0 else math.nan, dof
            half = stats.t.ppf(0.5 + level / 2, df) * se if df > 0 else math.nan
            low, high = mean - half, mean + half
        if df < 1 or math.isnan(se):
            p = math.nan
        elif se == 0:
            p = 1.0 if mean == 0 else 0.0
        else:
            p = float(2 * stats.t.sf(abs(mean) / se, df))
        rows.append({"a": a, "b": b, "diff": mean, "std": std, "se": se, "df": df, "low": low, "high": high,
                     "n": len(d), "p": p, "test": test})
        p_values[f"{a}-{b}"] = p
    out = pd.DataFrame(rows)
    finite = {k: v for k, v in p_values.items() if not math.isnan(v)}
    adjusted = holm(finite) if finite else {}
    out["p_holm"] = [adjusted.get(f"{a}-{b}", math.nan) for a, b in zip(out["a"], out["b"])]
    out["resolved"] = out["p_holm"] < alpha
    return out


def _permutation_p(x: np.ndarray, y: np.ndarray, statistic, permutations: int, seed: int) -> float:
    """One-sided p-value of ``statistic(x, y)`` being as large as observed when ``y``'s order is
    random: exact over all orders up to eight items, Monte Carlo (plus one) above."""
    observed = statistic(x, y) - 1e-12
    if len(y) <= 8:
        hits = [statistic(x, np.asarray(p)) >= observed for p in itertools.permutations(y)]
        return float(np.mean(hits))
    rng = np.random.default_rng(seed)
    hits = sum(statistic(x, rng.permutation(y)) >= observed for _ in range(permutations))
    return (hits + 1) / (permutations + 1)


def rank_agreement(paper: dict[str, float], measured: dict[str, float], permutations: int = 10_000,
                   seed: int = 0) -> dict[str, float]:
    """Kendall's tau and Spearman's rho between the paper's accuracies and the measured ones
    over the designs both have, each with a one-sided permutation p-value (the chance that
    a random order of the designs agrees at least as well)."""
    keys = [k for k in paper if k in measured]
    x = np.array([paper[k] for k in keys], dtype=np.float64)
    y = np.array([measured[k] for k in keys], dtype=np.float64)
    if len(keys) < 2:
        return {"n": len(keys), "kendall": math.nan, "kendall_p": math.nan, "spearman": math.nan,
                "spearman_p": math.nan}
    kendall = lambda a, b: float(stats.kendalltau(a, b).statistic)  # noqa: E731
    spearman = lambda a, b: float(stats.spearmanr(a, b).statistic)  # noqa: E731
    return {"n": len(keys), "kendall": kendall(x, y), "kendall_p": _permutation_p(x, y, kendall, permutations, seed),
            "spearman": spearman(x, y), "spearman_p": _permutation_p(x, y, spearman, permutations, seed)}


def ablation_summary(runs: pd.DataFrame, reference: str = "none") -> pd.DataFrame:
    """Per augmentation setting: accuracy mean ± std (in %) and the gain over ``reference``
    paired by seed (mean ± std, percentage points), in the settings' order; with the runs'
    training accuracy (``train_acc``), its mean too."""
    acc = runs.pivot_table(index="seed", columns="setting", values="acc", sort=False) * 100
    gains = acc.sub(acc[reference], axis=0)
    out = pd.DataFrame({"acc_mean": acc.mean(), "acc_std": acc.std(ddof=1), "gain_mean": gains.mean(),
                        "gain_std": gains.std(ddof=1), "n": acc.count()})
    if "train_acc" in runs:
        out["train_acc_mean"] = runs.groupby("setting", sort=False)["train_acc"].mean() * 100
    return out


def gains(runs: pd.DataFrame, reference: str = "none") -> pd.DataFrame:
    """One row per run outside ``reference``: its accuracy gain over the reference run of the
    same seed, in percentage points (what the ablation figure draws)."""
    base = runs[runs.setting == reference].set_index("seed")["acc"]
    out = runs[runs.setting != reference].copy()
    out["gain"] = (out["acc"] - out["seed"].map(base)) * 100
    return out


def difference_matrix(pairs: pd.DataFrame, designs: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pairwise table as a square matrix of mean differences (row minus column, points)
    and a matching matrix of marks ("*" where the pair is resolved), for a heatmap."""
    designs = list(designs)
    diff = pd.DataFrame(np.nan, index=designs, columns=designs)
    mark = pd.DataFrame("", index=designs, columns=designs)
    for r in pairs.itertuples():
        diff.loc[r.a, r.b], diff.loc[r.b, r.a] = r.diff, -r.diff
        if r.resolved:
            mark.loc[r.a, r.b] = mark.loc[r.b, r.a] = "*"
    return diff, mark


def rank_verdict(rank: dict, n_resolved: int, alpha: float = 0.05) -> str:
    """One sentence on whether the paper's order of the designs survives here."""
    if not np.isfinite(rank.get("kendall_p", math.nan)):
        return "With fewer than two designs there is no order to compare."
    if rank["kendall_p"] < alpha and rank["kendall"] > 0:
        return "The paper's order survives: an agreement this close is unlikely under a random order."
    tail = (" and no pair of designs is resolved, so no order could have survived here" if n_resolved == 0
            else "")
    return (f"The paper's order does not survive: an agreement this close or closer arises under a random "
            f"order with probability {rank['kendall_p']:.2f}{tail}.")


def ablation_verdict(overfit: dict, checks: dict[str, dict]) -> str:
    """What the ablation may conclude, given its own checks."""
    if not overfit["met"]:
        return ("The model does not overfit without augmentation, so this regime cannot show what augmentation "
                "does; the gains below are not conclusions.")
    if not all(c["resolved"] for c in checks.values()):
        return ("The model overfits without augmentation, but not every reference gain clears the seed noise: "
                "the regime is too noisy to rank the augmentations; read the bars as unresolved.")
    return "The regime can answer the question: the model overfits without augmentation and both gains are resolved."


def offline_text(by_setting: pd.DataFrame, online: str = "all") -> str:
    """The offline row against the online one, paired by seed, or a note that it did not run."""
    offline = [s for s in by_setting.index if "offline" in s]
    if not offline or online not in by_setting.index:
        return "the offline row did not run in this profile"
    row, ref = by_setting.loc[offline[0]], by_setting.loc[online]
    return (f"{offline[0]}: {row['acc_mean']:.1f} ± {row['acc_std']:.1f} % against online "
            f"{ref['acc_mean']:.1f} ± {ref['acc_std']:.1f} %, a difference of "
            f"{row['acc_mean'] - ref['acc_mean']:+.1f} points")


# --- checks the chapter prints: can this run answer its question? --------------------------

def floor_check(by_design: pd.DataFrame, floor: float) -> dict:
    """Every design's mean test accuracy at or above ``floor`` (%): below it the designs are
    too little trained for their differences to say anything about the designs."""
    below = [d for d in by_design.index if by_design.loc[d, "acc_mean"] < floor]
    low = float(by_design["acc_mean"].min())
    verdict = "met" if not below else f"NOT met ({', '.join(below)} below)"
    return {"floor": floor, "met": not below, "below": below, "lowest": low,
            "text": f"accuracy floor {floor:g} %: lowest design mean {low:.1f} %: {verdict}"}


def gain_checks(by_setting: pd.DataFrame, settings: Sequence[str] = ("all", "crop+flip"), reference: str = "none",
                k: float = 2.0) -> dict[str, dict]:
    """For each of ``settings``: does it beat ``reference`` by more than ``k`` seed standard
    deviations (the larger of the two settings' std over seeds)? If not, the regime cannot
    show what augmentation does and the chapter says so."""
    out = {}
    for name in settings:
        if name not in by_setting.index:
            continue
        gain, gain_std = float(by_setting.loc[name, "gain_mean"]), float(by_setting.loc[name, "gain_std"])
        noise = k * float(np.nanmax([by_setting.loc[name, "acc_std"], by_setting.loc[reference, "acc_std"]]))
        resolved = bool(np.isfinite(noise) and gain > noise)
        out[name] = {"gain": gain, "gain_std": gain_std, "threshold": noise, "resolved": resolved,
                     "text": f"{name} beats {reference} by {gain:.1f} ± {gain_std:.1f} points "
                             f"(needs > {noise:.1f}, {k:g} seed-std): {'resolved' if resolved else 'NOT resolved'}"}
    return out


def overfit_check(by_setting: pd.DataFrame, reference: str = "none", train_floor: float = 95.0) -> dict:
    """Without augmentation the model must (nearly) fit its training set while test accuracy
    lags: only then can augmentation's regularisation show."""
    train = float(by_setting.loc[reference, "train_acc_mean"])
    test = float(by_setting.loc[reference, "acc_mean"])
    met = train >= train_floor
    return {"train_acc": train, "test_acc": test, "train_floor": train_floor, "met": met,
            "text": f"without augmentation: training accuracy {train:.1f} % vs test {test:.1f} % "
                    f"(overfitting regime needs training ≥ {train_floor:g} %): {'met' if met else 'NOT met'}"}


# --- results and headline -----------------------------------------------------------------

def _plain(value):
    return value.item() if hasattr(value, "item") else value


def results_dict(table: pd.DataFrame, by_design: pd.DataFrame, pairs: pd.DataFrame, rank: dict,
                 ablation: pd.DataFrame, setting: dict, costs: pd.DataFrame | None = None,
                 checks: dict | None = None) -> dict:
    """The chapter's results json: designs, pairwise differences, rank agreement, ablation,
    each design's cost at paper scale, the chapter's checks, and the setting the numbers
    were measured in (for ``headline``)."""
    designs = {d: {"paper_params": int(table.loc[d, "paper_params"]), "params": int(table.loc[d, "params"]),
                   "macs": int(table.loc[d, "macs"]), "acc_mean": float(by_design.loc[d, "acc_mean"]),
                   "acc_std": float(by_design.loc[d, "acc_std"]), "train_s": float(by_design.loc[d, "train_s"]),
                   "n": int(by_design.loc[d, "n"]), "paper_acc": PAPER_ACC[d]} for d in by_design.index}
    out = {"designs": designs,
           "pairwise": [{k: _plain(v) for k, v in row.items()} for row in pairs.to_dict("records")],
           "rank_corr": rank,
           "augmentation": {s: {k: float(v) for k, v in r.items()} for s, r in ablation.iterrows()},
           "setting": setting}
    if costs is not None:
        out["costs"] = {d: {k: _plain(v) for k, v in r.items()} for d, r in costs.iterrows()}
    if checks is not None:
        out["checks"] = checks
    return out


def headline(results: dict) -> list[Headline]:
    """Each design's test accuracy (mean ± std over seeds) beside the paper's, the rank
    agreement with Table 1, and the gain of all five augmentations over none."""
    s = results["setting"]
    where = (f"top-1, CIFAR-10 test ({s['n_test']:,} images), {s['resolution']} px, width ×{s['width']}, "
             f"{s['epochs']} epochs on {s['n_train']:,} images, {s['augmentation']}")
    rows = []
    for d, r in results["designs"].items():
        n = r.get("n", len(s["seeds"]))
        rows.append(Headline(f"design {d} test accuracy (%)", r["acc_mean"], r["acc_mean"] - r["acc_std"],
                             r["acc_mean"] + r["acc_std"], f"mean ± std, {n} seeds", where, r["paper_acc"],
                             PAPER_SETTING))
    rank = results["rank_corr"]
    for stat, name in (("kendall", "Kendall's tau"), ("spearman", "Spearman's rho")):
        rows.append(Headline(f"{name} with Table 1's order of the designs", rank[stat],
                             setting=f"{rank['n']} designs' mean accuracies, one-sided permutation p = "
                                     f"{rank[stat + '_p']:.3g}", source=1.0, source_setting="the paper's own order"))
    aug = results["augmentation"]
    a = s.get("ablation", {})
    ablation_where = (f"top-1, CIFAR-10 test, design {s['ablation_design']} at width ×{a.get('width', s['width'])}, "
                      f"{a.get('epochs', s['epochs'])} epochs on {a.get('n_train', s['n_train']):,} images")
    for key, name in (("all", "the five augmentations"), ("crop+flip", "crop+flip")):
        if key in aug and "none" in aug:
            g = aug[key]
            rows.append(Headline(f"gain of {name} over none (points)", g["gain_mean"],
                                 g["gain_mean"] - g["gain_std"], g["gain_mean"] + g["gain_std"],
                                 f"mean ± std of per-seed gains, {int(g['n'])} seeds", ablation_where, None,
                                 "not measured by the paper (it credits augmentation with most of its accuracy)"))
    return rows
