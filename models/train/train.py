"""Training recipe for the streaming Transformer-Transducer.

    parley train --train data/corpus/en/train.jsonl --dev data/corpus/en/dev.jsonl \
        --tokenizer data/lang/en/bpe.model --exp-dir exp/en --epochs 12 --max-seconds 160

    # many GPUs / nodes: the same command under torchrun (DistributedDataParallel; gloo on CPU, nccl on GPU)
    torchrun --nproc_per_node 8 -m models.train.train --train ... --exp-dir exp/en

    # SM²: one encoder, a head per output language, trained on tasks SRC:TGT (models/train/tasks.py), with a streaming
    # language identifier; then language expansion: a zh head on the frozen encoder (docs/sm2.md has the recipe)
    parley train --train data/corpus-ml/{en,de,es,fr,it,zh}/train.jsonl --dev data/corpus-ml/{en,de,...}/dev.jsonl \
        --output-languages en de es fr it --tasks en:en de:de es:es fr:fr it:it de:en es:en fr:en it:en zh:en \
        --lid-languages en de es fr it zh --exp-dir exp/sm2
    parley train ... --output-languages en de es fr it zh --tasks en:zh de:zh zh:zh --freeze-encoder \
        --init exp/sm2/best.pt --exp-dir exp/sm2-zh

    # configurable multilingual model (models/nn/cmm.py): per-language experts in the encoder; every utterance
    # trains with a random selection of languages that holds its own (size uniform in 1..L); dev uses all of them
    parley train ... --cmm-languages en de es fr it zh --cmm-rank 0 --cmm-every 1

    # open-domain recipe: pruned RNN-T loss (joiner on 5-row bands) on the modified topology (one symbol per frame)
    parley train ... --loss pruned --prune-range 5 --rnnt-type modified

Every batch draws its attention limits (dynamic chunk training): a chunk of 2-16 encoder frames (80-640 ms) and
1-8 chunks of history, or, with probability `--full-context-prob`, the whole utterance. So one model serves every
latency setting, chosen at inference time. Running it again with the same --exp-dir resumes from last.pt, in the
middle of an epoch if need be. The exp dir receives: last.pt (every --checkpoint-every steps), epoch-N.pt,
best.pt (lowest dev WER), step-N.pt (--keep-steps), log.jsonl, curve.png, train_config.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from models.data.manifest import Utterance, read_training_manifests
from models.data.mixtures import MixConfig
from models.nn.checkpoint import init_from, save_checkpoint
from models.nn.cmm import sample_language_masks
from models.nn.encoder import EncoderConfig, count_parameters
from models.nn.lid import IGNORE
from models.nn.search import greedy_search
from models.nn.transducer import LOSSES, ModelConfig, Transducer
from models.train.dataset import DurationBatchSampler, UtteranceDataset, collate, feature_stats
from models.train.feature_cache import FeatureCache, build_feature_cache
from models.train.mixing import MixingDataset
from models.train.perturb import AugmentSettings
from models.train.pruned_rnnt import DEFAULT_PRUNE_RANGE
from models.train.rnnt_loss import RNNT_TYPES
from models.train.tasks import MultiTaskDataset, Task, TaskBatchSampler, parse_tasks
from models.train.tokenizer import MODEL_NAME, Tokenizer
from parley.contract import BLANK_ID, FBANK_SHIFT_MS
from parley.wer import error_counts


@dataclass
class TrainConfig:
    """The whole recipe; saved in every checkpoint and as train_config.json."""

    train: list[str]
    dev: list[str]
    tokenizer: str
    exp_dir: str
    target: str = "text"  # "text" (captions) or a language code (that translation of every utterance)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder_dim: int = 256
    joiner_dim: int = 320
    ctc_weight: float = 0.2
    rnnt_type: str = "standard"  # "modified": at most one symbol per frame (and decoded so)
    loss: str = "full"  # "pruned": the joiner on bands of prune_range rows only (models/train/pruned_rnnt.py)
    prune_range: int = DEFAULT_PRUNE_RANGE
    simple_loss_scale: float = 0.5  # weight of the pruned loss's simple loss once warmed up
    prune_warmup_steps: int = 2000  # steps over which the simple loss goes 1 -> simple_loss_scale, pruned 0.1 -> 1
    epochs: int = 10
    max_seconds: float = 160.0  # padded audio seconds per batch (per process)
    lr: float = 2e-3
    warmup_steps: int = 800
    min_lr_ratio: float = 0.05
    weight_decay: float = 1e-2
    clip: float = 5.0
    chunk_sizes: tuple[int, ...] = (2, 4, 8, 16)
    left_chunks: tuple[int, ...] = (1, 2, 4, 8)
    full_context_prob: float = 0.2
    augment: bool = True
    mel_warp_prob: float = 0.0  # feature-domain VTLP per training item (models/train/perturb.py `mel_warp`)
    seed: int = 0
    num_workers: int = 1
    checkpoint_every: int = 200
    keep_steps: tuple[int, ...] = ()  # also save the checkpoint at these steps as step-N.pt (models/train/average.py)
    dev_utts: int = 200
    init: str = ""  # checkpoint whose weights (those of matching name and shape) start a new run
    dev_every: int = 0  # also decode dev every this many steps (0: only after each epoch)
    dev_chunk: int = 8
    dev_left_chunks: int = 4
    max_steps: int = 0  # stop after this many steps in total (0: run all epochs)
    threads: int = 0  # torch CPU threads (0: all cores)
    amp: str = "none"  # "bf16": forward passes under torch.autocast in bfloat16 (CPUs with AVX512-BF16, GPUs)
    feature_cache: str = ""  # precomputed training features (models/train/feature_cache.py), built on first use
    # Multi-head (SM²) models; all empty for a single-head model, which uses `tokenizer` and `target`.
    heads: list[str] = field(default_factory=list)  # output languages, one head each (tokenizers in lang_dir)
    tasks: list[str] = field(default_factory=list)  # "SRC:TGT" (models/train/tasks.py); empty: every head's captions
    lang_dir: str = "models/lang"  # <lang>/bpe.model of every head
    lid_languages: list[str] = field(default_factory=list)  # source languages of the streaming LID; empty: none
    lid_weight: float = 0.1
    lid_hidden: int = 0
    ctc_on_translations: bool = False  # CTC assumes a monotonic alignment, which translations lack
    freeze_encoder: bool = False  # train only the heads (the encoder and the LID stay as initialized)
    init_head: str = ""  # with `init` from a single-head checkpoint: the head its decoder/joiner initialize
    # Dynamic mixing (t-SOT, models/train/mixing.py): > 0 draws this many two-talker mixtures of the train
    # manifests' utterances afresh every epoch (their word timings give the serialized labels); 0: none.
    mix_per_epoch: int = 0
    mix_gain_db: float = 5.0  # the second talker's level, uniform in [-mix_gain_db, +mix_gain_db] dB
    mix_p_single: float = 0.1  # share of single-talker items
    mix_p_sequential: float = 0.1  # share of two-talker items without overlap
    mix_speaker: str = "base"  # who is another talker: "base" (another speaker) or "voice" (another voice string)

    @property
    def multi_head(self) -> bool:
        return bool(self.heads)

    def tokenizer_paths(self) -> dict[str, str]:
        """Output language -> sentencepiece model, for a multi-head model."""
        return {h: str(Path(self.lang_dir) / h / MODEL_NAME) for h in self.heads}

    def task_list(self) -> list[Task]:
        """The multi-head tasks (default: each head's captions).

        Raises:
            ValueError: a task whose target has no head, or LID settings without heads.
        """
        tasks = parse_tasks(self.tasks) if self.tasks else [Task(h, h) for h in self.heads]
        if bad := [t.name for t in tasks if t.target not in self.heads]:
            raise ValueError(f"task(s) {bad} target a language without a head; heads: {self.heads}")
        return tasks


def _dist_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment, or a single process."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warm-up to `lr`, then cosine decay to `lr * min_lr_ratio` at `total` steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def rnnt_loss_scales(step: int, cfg: TrainConfig) -> dict[str, float]:
    """The pruned loss's weights at `step`: `simple_scale` of the simple loss, `pruned_scale` of the pruned one.

    icefall's zipformer schedule: at first the bands come from an untrained simple joiner and say little, so the
    simple loss carries the training (weight 1) and the pruned loss is damped (0.1); both move linearly to
    (`simple_loss_scale`, 1) over `prune_warmup_steps` and stay there. A run that starts from a pruned checkpoint
    (`--init`) has trained bands already: give it --prune-warmup-steps 0.
    """
    if cfg.loss != "pruned":
        return {}
    w = min(1.0, step / cfg.prune_warmup_steps) if cfg.prune_warmup_steps > 0 else 1.0
    return {"simple_scale": 1.0 - w * (1.0 - cfg.simple_loss_scale), "pruned_scale": 0.1 + 0.9 * w}


def draw_attention_limits(rng: random.Random, cfg: TrainConfig) -> tuple[int, int]:
    """(chunk, left_chunks) for one batch; (-1, -1) is full context."""
    if rng.random() < cfg.full_context_prob:
        return -1, -1
    return rng.choice(cfg.chunk_sizes), rng.choice(cfg.left_chunks)


def model_config(cfg: TrainConfig, vocab_size: int | dict[str, int]) -> ModelConfig:
    """The model a recipe trains: one head of `vocab_size`, or (a dict) a head per output language."""
    heads = vocab_size if isinstance(vocab_size, dict) else {}
    return ModelConfig(
        vocab_size=0 if heads else int(vocab_size),  # type: ignore[arg-type]
        encoder=cfg.encoder,
        decoder_dim=cfg.decoder_dim,
        joiner_dim=cfg.joiner_dim,
        ctc_weight=cfg.ctc_weight,
        rnnt_type=cfg.rnnt_type,
        loss=cfg.loss,
        prune_range=cfg.prune_range,
        heads=heads,
        lid_languages=list(cfg.lid_languages),
        lid_hidden=cfg.lid_hidden,
    )


def _targets(cfg: TrainConfig) -> set[str]:
    """The texts a run trains and scores on: "text" (captions) and the languages of the translations it uses."""
    if not cfg.multi_head:
        return {cfg.target}
    return {"text" if t.is_caption else t.target for t in cfg.task_list()}


def _text_of(target: str):
    if target == "text":
        return lambda u: u.text
    return lambda u: u.translations[target]


# What a plan trains or scores on: the task (None: a single-head model's one task), its utterances, the target's
# tokenizer (text -> ids) and the target text of an utterance.
_TaskData = tuple[Task | None, list[Utterance], Callable[[str], list[int]], Callable[[Utterance], str]]
_STATS_UTTERANCES = 400  # utterances the feature statistics are computed from


@dataclass
class _Plan:
    """The data side of a run: the tasks' train and dev utterances, the tokenizers and the per-step model inputs."""

    train: list[_TaskData]
    dev: list[_TaskData]
    vocab: int | dict[str, int]  # V of the single head, or of each output language
    tokenizers: dict[str, Tokenizer]  # by output language; "" for the single head
    language: str  # what a single-head model's dev WER is scored as
    lid_ids: dict[str, int] = field(default_factory=dict)  # source language -> LID class
    lid_weight: float = 0.0
    ctc_on_translations: bool = False
    cmm_ids: dict[str, int] = field(default_factory=dict)  # source language -> CMM expert index; empty: no CMM

    def score_language(self, task: Task | None, _utts: list[Utterance]) -> str:
        return self.language if task is None else task.target

    def stats_dataset(self, sets: list[UtteranceDataset]) -> UtteranceDataset:
        """The feature statistics' utterances: the single task's first ones, or the first of every source language
        in turn (one language's loudness and spectrum should not set everyone's normalization)."""
        if len(sets) == 1:
            return sets[0]
        by_source: dict[str, list[Utterance]] = {}
        for task, utts, _, _ in self.train:
            assert task is not None
            by_source.setdefault(task.source, utts)
        mixed = [u for group in zip(*by_source.values(), strict=False) for u in group][:_STATS_UTTERANCES]
        return UtteranceDataset(mixed, lambda _: [], lambda _: "", None)

    def step_kwargs(
        self, task: Task | None, batch: int, device: torch.device, rng: random.Random | None = None
    ) -> dict:
        """The forward's head, LID targets and loss switches for a batch of `task` (none for a single head); with a
        CMM encoder, every utterance's random language selection (`sample_language_masks`, drawn from `rng`)."""
        if task is None:
            return {}
        lid = self.lid_ids.get(task.source, IGNORE)
        kw = {
            "head": task.target,
            "languages": torch.full((batch,), lid, dtype=torch.long, device=device),
            "lid_weight": self.lid_weight,
            "use_ctc": task.is_caption or self.ctc_on_translations,
        }
        if self.cmm_ids:
            assert rng is not None, "a CMM batch needs the training loop's random generator"
            spoken = [self.cmm_ids[task.source]] * batch
            kw["language_mask"] = sample_language_masks(spoken, len(self.cmm_ids), rng).to(device)
        return kw


def _plan(cfg: TrainConfig, train_all: list[Utterance], dev_all: list[Utterance]) -> _Plan:
    """Splits the manifests' utterances into the recipe's tasks.

    Raises:
        ValueError: an LID without heads, a task without training utterances, an LID language without any.
    """
    if not cfg.multi_head:
        if cfg.lid_languages or cfg.tasks or cfg.encoder.cmm_languages:
            raise ValueError(
                "--lid-languages, --tasks and --cmm-languages need a multi-head model (--output-languages)"
            )
        tok = Tokenizer(cfg.tokenizer)
        text_of = _text_of(cfg.target)
        language = cfg.target if cfg.target != "text" else (train_all[0].language if train_all else "en")
        return _Plan(
            train=[(None, train_all, tok.encode, text_of)],
            dev=[(None, dev_all[: cfg.dev_utts], tok.encode, text_of)],
            vocab=tok.vocab_size,
            tokenizers={"": tok},
            language=language,
        )
    toks = {h: Tokenizer(p) for h, p in cfg.tokenizer_paths().items()}
    tasks = cfg.task_list()
    train, dev = [], []
    for t in tasks:
        utts = t.select(train_all)
        if not utts:
            raise ValueError(f"task {t.name}: no training utterances in {t.source} with a {t.target} text")
        train.append((t, utts, toks[t.target].encode, t.text_of))
        dev_utts = t.select(dev_all)[: cfg.dev_utts]
        if dev_utts:
            dev.append((t, dev_utts, toks[t.target].encode, t.text_of))
    spoken = {t.source for t in tasks}
    if cfg.lid_languages and not cfg.freeze_encoder and (missing := sorted(set(cfg.lid_languages) - spoken)):
        raise ValueError(f"LID language(s) {missing} have no training speech in any task")
    cmm = cfg.encoder.cmm_languages
    if cmm and (unknown := sorted(spoken - set(cmm))):
        raise ValueError(f"source language(s) {unknown} of the tasks have no CMM expert: --cmm-languages {cmm}")
    return _Plan(
        train=train,
        dev=dev,
        vocab={h: t.vocab_size for h, t in toks.items()},
        tokenizers=toks,
        language="",
        lid_ids={lang: i for i, lang in enumerate(cfg.lid_languages)},
        # A frozen LID (language expansion) has nothing to learn: its loss would only cost time.
        lid_weight=0.0 if cfg.freeze_encoder else cfg.lid_weight,
        ctc_on_translations=cfg.ctc_on_translations,
        cmm_ids={lang: i for i, lang in enumerate(cmm)},
    )


@torch.no_grad()
def evaluate_wer(
    model: Transducer,
    loader: DataLoader,
    tokenizer: Tokenizer,
    refs: list[str],
    language: str,
    chunk: int,
    left_chunks: int,
    device: torch.device,
    head: str | None = None,
) -> tuple[float, list[str]]:
    """Greedy-search WER of `model`'s head `head` on a loader's utterances under the given attention limits.

    A CTC-only model (ctc_weight 1, encoder pre-training) is decoded with CTC greedy search instead.
    """
    model.eval()
    hyps = [""] * len(refs)
    ctc_output = model.head(head).ctc_output
    with torch.no_grad():
        for batch in loader:
            feats, lens = batch["feats"].to(device), batch["feat_lens"].to(device)
            enc, enc_lens = model.encoder(feats, lens, chunk, left_chunks)
            if model.cfg.ctc_weight >= 1.0 and ctc_output is not None:
                found = ctc_greedy(ctc_output(enc).argmax(-1), enc_lens)
            else:
                found = [h.tokens for h in greedy_search(model, enc, enc_lens, head=head)]
            for i, toks in zip(batch["index"].tolist(), found, strict=True):
                hyps[i] = tokenizer.decode(toks)
    return error_counts(refs, hyps, language).rate, hyps


def ctc_greedy(best: torch.Tensor, lens: torch.Tensor) -> list[list[int]]:
    """Best path `(B, T)` token ids -> token lists with repeats merged and blanks dropped."""
    out = []
    for row, n in zip(best.tolist(), lens.tolist(), strict=True):
        toks, prev = [], BLANK_ID
        for t in row[:n]:
            if t != prev and t != BLANK_ID:
                toks.append(t)
            prev = t
        out.append(toks)
    return out


def plot_curve(log: list[dict], path: Path) -> None:
    """Training loss and dev WER against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in log if "loss" in r]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(steps, [r["loss"] for r in log if "loss" in r], lw=0.8, label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    dev = [r for r in log if "dev_wer" in r]
    if dev:
        ax2 = ax.twinx()
        ax2.plot([r["step"] for r in dev], [100 * r["dev_wer"] for r in dev], "o-", color="tab:red", label="dev WER")
        ax2.set_ylabel("dev WER (%)")
        ax2.legend(loc="upper center")
    ax.legend(loc="upper right")
    ax.set_title("Parley transducer training")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _feature_cache(
    cfg: TrainConfig, utts: list[Utterance], augment: AugmentSettings | None, main_proc: bool, world: int
) -> FeatureCache | None:
    """The run's feature cache (None without --feature-cache): the first process computes what it lacks."""
    if not cfg.feature_cache:
        return None
    speeds = (augment or AugmentSettings.off()).speed_factors
    if main_proc:
        have = FeatureCache(cfg.feature_cache) if (Path(cfg.feature_cache) / "meta.json").exists() else None
        todo = have.missing(utts) if have is not None else utts
        if todo:
            print(f"feature cache {cfg.feature_cache}: computing {len(set(u.id for u in todo))} utterances")
            speeds = speeds if have is None else have.speed_factors
            build_feature_cache(todo, cfg.feature_cache, speeds, jobs=os.cpu_count() or 1)
    if world > 1:
        dist.barrier()
    return FeatureCache(cfg.feature_cache)


def _mixing_dataset(cfg: TrainConfig, plan, augment: AugmentSettings | None) -> MixingDataset:
    """The dynamic-mixing training set of `--mix-per-epoch` (a single-head caption model only).

    Raises:
        ValueError: a multi-head model, a translation target, or a feature cache (mixtures are made from audio).
    """
    if cfg.multi_head or cfg.target != "text":
        raise ValueError("--mix-per-epoch trains a single-head caption model (t-SOT); not with heads or --target")
    if cfg.feature_cache:
        raise ValueError("--mix-per-epoch mixes audio on the fly: it cannot use --feature-cache")
    ((_, utts, enc, _),) = plan.train
    mix = MixConfig(
        p_single=cfg.mix_p_single,
        p_sequential=cfg.mix_p_sequential,
        gain_db=cfg.mix_gain_db,
        speaker=cfg.mix_speaker,
    )
    return MixingDataset(utts, enc, mix, cfg.mix_per_epoch, seed=cfg.seed, augment=augment)


def train(cfg: TrainConfig) -> dict:
    """Runs (or resumes) training; returns the last dev result. Works alone or under torchrun."""
    if cfg.amp not in ("none", "bf16"):
        raise ValueError(f"amp {cfg.amp!r}: choose none or bf16")
    rank, world, local_rank = _dist_info()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    exp = Path(cfg.exp_dir)
    main_proc = rank == 0
    if main_proc:
        exp.mkdir(parents=True, exist_ok=True)
        (exp / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))

    train_all, dev_all = read_training_manifests(
        cfg.train, cfg.dev, _targets(cfg), unique_ids=bool(cfg.feature_cache) and not cfg.mix_per_epoch
    )
    plan = _plan(cfg, train_all, dev_all)
    augment = AugmentSettings(warp_prob=cfg.mel_warp_prob) if cfg.augment else None
    train_sets: list[UtteranceDataset | MixingDataset]
    if cfg.mix_per_epoch:
        train_sets = [_mixing_dataset(cfg, plan, augment)]
    else:
        cache = _feature_cache(cfg, [u for _, utts, _, _ in plan.train for u in utts], augment, main_proc, world)
        train_sets = [
            UtteranceDataset(utts, enc, text_of, augment, seed=cfg.seed, cache=cache)
            for _, utts, enc, text_of in plan.train
        ]
    train_ds = MultiTaskDataset(train_sets)
    sampler = TaskBatchSampler(
        [
            DurationBatchSampler(
                d.durations(),
                cfg.max_seconds,
                seed=cfg.seed,
                rank=rank,
                world_size=world,
                durations_of_epoch=d.durations if isinstance(d, MixingDataset) else None,
            )
            for d in train_sets
        ],
        train_ds.offsets,
        seed=cfg.seed,
    )
    loader = DataLoader(
        train_ds, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.num_workers, persistent_workers=False
    )
    devs = []  # (task, loader, refs, scoring language)
    for task, utts, enc, text_of in plan.dev:
        ds = UtteranceDataset(utts, enc, text_of, None)
        dl = DataLoader(
            ds, batch_sampler=DurationBatchSampler(ds.durations(), cfg.max_seconds, shuffle=False), collate_fn=collate
        )
        devs.append((task, dl, [text_of(u) for u in utts], plan.score_language(task, train_all)))

    mcfg = model_config(cfg, plan.vocab)
    model = Transducer(mcfg).to(device)
    if cfg.freeze_encoder:
        for frozen in (model.encoder, model.lid):
            if frozen is not None:
                frozen.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    steps_per_epoch = len(sampler)
    total = cfg.epochs * steps_per_epoch if not cfg.max_steps else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    state = {"step": 0, "epoch": 0, "batch": 0, "best_wer": float("inf"), "log": [], "train_seconds": 0.0}
    last = exp / "last.pt"
    if last.exists():
        ck = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        state.update(ck["state"])
        if main_proc:
            print(f"resumed from {last}: epoch {state['epoch']} batch {state['batch']} step {state['step']}")
    elif cfg.init:
        n, skipped = init_from(model, cfg.init, cfg.init_head)
        if main_proc:
            print(f"initialized {n} tensors from {cfg.init}; kept fresh: {', '.join(skipped) or 'none'}")
    else:
        # Global feature normalization from the training data (the same on every rank: the same utterances).
        model.encoder.subsampling.set_feature_stats(*feature_stats(plan.stats_dataset(train_sets)))
    if main_proc:
        tasks = f" in {len(plan.train)} tasks" if cfg.multi_head else ""
        print(
            f"model: {count_parameters(model) / 1e6:.2f} M parameters; {len(train_ds)} train utterances{tasks} "
            f"({sum(train_ds.durations()) / 3600:.2f} h), {steps_per_epoch} steps/epoch x {cfg.epochs} epochs, "
            f"{world} process(es) on {device}"
            + (
                f"; {(count_parameters(model) - sum(p.numel() for p in trainable)) / 1e6:.2f} M of them frozen "
                "(encoder and LID)"
                if cfg.freeze_encoder
                else ""
            )
        )
    # A multi-head step trains one head: the others get no gradient, which DDP must be told about.
    ddp = DistributedDataParallel(model, find_unused_parameters=cfg.multi_head) if world > 1 else model

    def train_mode() -> None:
        model.train()
        if cfg.freeze_encoder:  # a frozen encoder computes what it will compute at inference: no dropout
            model.encoder.eval()

    def save(path: Path) -> None:
        if main_proc:
            extra = {"tokenizers": cfg.tokenizer_paths()} if cfg.multi_head else {}
            save_checkpoint(path, model, asdict(cfg), str(cfg.tokenizer), state, opt.state_dict(), **extra)

    def run_dev() -> float:
        """Greedy error rate of every dev task; their mean decides best.pt (WER of a translation head: a
        cheap stand-in for BLEU that falls as it rises)."""
        rates = {}
        for task, dl, refs, lang in devs:
            head = task.target if task is not None else None
            tok = plan.tokenizers[head or ""]
            rates[task.name if task is not None else ""], _ = evaluate_wer(
                model, dl, tok, refs, lang, cfg.dev_chunk, cfg.dev_left_chunks, device, head=head
            )
        w = sum(rates.values()) / max(1, len(rates))
        rec = {"step": state["step"], "epoch": state["epoch"], "dev_wer": w}
        if cfg.multi_head:
            rec["dev_tasks"] = rates
        state["log"].append(rec)
        if w < state["best_wer"]:
            state["best_wer"] = w
            save(exp / "best.pt")
        return w

    rng = random.Random(cfg.seed)
    last_wer = None
    while state["epoch"] < cfg.epochs and (not cfg.max_steps or state["step"] < cfg.max_steps):
        epoch = state["epoch"]
        sampler.set_epoch(epoch)
        train_ds.epoch = epoch
        skip = state["batch"]
        rng.seed(cfg.seed * 7919 + epoch)
        train_mode()
        n_batches = len(sampler)  # this epoch's: bucketing makes the count vary a little between epochs
        bar = tqdm(
            total=n_batches,
            initial=skip,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not main_proc,
            dynamic_ncols=True,
        )
        t0 = time.time()
        finished_epoch = True  # unless max_steps stops the loop below before the epoch's last batch
        if skip:  # resuming mid-epoch: the batches this epoch has not seen yet
            it = DataLoader(
                train_ds, batch_sampler=list(sampler)[skip:], collate_fn=collate, num_workers=cfg.num_workers
            )
        else:
            it = loader
        for batch in it:
            chunk, left = draw_attention_limits(rng, cfg)
            for g in opt.param_groups:
                g["lr"] = lr_at(state["step"], total, cfg)
            task = plan.train[train_ds.task_of(int(batch["index"][0]))][0]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16"):
                loss, info = ddp(
                    batch["feats"].to(device),
                    batch["feat_lens"].to(device),
                    batch["tokens"].to(device),
                    batch["token_lens"].to(device),
                    chunk,
                    left,
                    **plan.step_kwargs(task, len(batch["index"]), device, rng),
                    **rnnt_loss_scales(state["step"], cfg),
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(trainable, cfg.clip)
            if torch.isfinite(gnorm):
                opt.step()
            state["step"] += 1
            state["batch"] += 1
            if main_proc:
                rec = {
                    "step": state["step"],
                    "epoch": epoch,
                    "loss": float(loss.detach()),
                    "lr": opt.param_groups[0]["lr"],
                    "grad_norm": float(gnorm),
                    "chunk": chunk,
                    "left": left,
                    # throughput on any hardware: the batch's audio, training seconds so far (dev decodes not counted)
                    "audio_s": round(float(batch["feat_lens"].sum()) * FBANK_SHIFT_MS / 1000, 2),
                    "seconds": round(state["train_seconds"] + time.time() - t0, 2),
                    **({"task": task.name} if cfg.multi_head else {}),
                    **info,
                }
                state["log"].append(rec)
                bar.set_postfix(loss=f"{rec['loss']:.3f}", lr=f"{rec['lr']:.2e}")
            bar.update(1)
            if state["step"] % cfg.checkpoint_every == 0:
                state["train_seconds"] += time.time() - t0
                t0 = time.time()
                save(last)
                if main_proc:
                    plot_curve(state["log"], exp / "curve.png")
            if state["step"] in cfg.keep_steps:
                save(exp / f"step-{state['step']}.pt")
            if cfg.dev_every and state["step"] % cfg.dev_every == 0 and main_proc:
                w = run_dev()
                bar.write(f"step {state['step']}: dev WER {100 * w:.2f}%")
                train_mode()
            if cfg.max_steps and state["step"] >= cfg.max_steps:
                finished_epoch = state["batch"] >= n_batches
                break
        bar.close()
        state["train_seconds"] += time.time() - t0
        if finished_epoch:
            state["epoch"] += 1
            state["batch"] = 0
        if main_proc:
            last_wer = run_dev()
            print(
                f"epoch {epoch + 1}: dev WER {100 * last_wer:.2f}% (chunk {cfg.dev_chunk}, "
                f"left {cfg.dev_left_chunks} chunks), step {state['step']}"
            )
            save(last)
            if finished_epoch:
                save(exp / f"epoch-{epoch + 1}.pt")
            plot_curve(state["log"], exp / "curve.png")
            with open(exp / "log.jsonl", "w") as f:
                for r in state["log"]:
                    f.write(json.dumps(r) + "\n")
        if world > 1:
            dist.barrier()
    if world > 1:
        dist.destroy_process_group()
    return {"dev_wer": last_wer, "step": state["step"], "best_wer": state["best_wer"]}


def _parse(argv: Sequence[str] | None) -> TrainConfig:
    p = argparse.ArgumentParser(
        prog="parley train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d = TrainConfig([], [], "", "")
    p.add_argument("--train", nargs="+", required=True, help="training manifests (JSONL)")
    p.add_argument("--dev", nargs="+", required=True, help="dev manifests (JSONL); the first --dev-utts are decoded")
    p.add_argument(
        "--tokenizer", help="sentencepiece model of the output language (bpe.model); single-head models only"
    )
    p.add_argument("--exp-dir", required=True, help="where checkpoints, logs and the curve go; resumes from it")
    p.add_argument("--target", default=d.target, help="'text' for captions or a language code for translations")
    p.add_argument("--d-model", type=int, default=d.encoder.d_model, help="encoder width")
    p.add_argument("--layers", type=int, default=d.encoder.num_layers, help="encoder layers")
    p.add_argument("--heads", type=int, default=d.encoder.num_heads, help="attention heads")
    p.add_argument("--ff-dim", type=int, default=d.encoder.ff_dim, help="feed-forward width")
    p.add_argument("--conv-kernel", type=int, default=d.encoder.conv_kernel, help="depthwise conv kernel")
    p.add_argument(
        "--subsampling-channels",
        type=int,
        default=d.encoder.subsampling_channels,
        help="channels of the conv subsampling",
    )
    p.add_argument(
        "--dropout",
        type=float,
        default=d.encoder.dropout,
        help="encoder dropout (0 trains faster while the model still underfits; dropout is a tenth of a CPU step)",
    )
    p.add_argument("--decoder-dim", type=int, default=d.decoder_dim, help="prediction network width")
    p.add_argument("--joiner-dim", type=int, default=d.joiner_dim, help="joiner width")
    p.add_argument("--ctc-weight", type=float, default=d.ctc_weight, help="weight of the auxiliary CTC loss")
    p.add_argument(
        "--rnnt-type",
        choices=RNNT_TYPES,
        default=d.rnnt_type,
        help="transducer topology: standard (any number of symbols per frame) or modified (at most one; sherpa-onnx "
        "decodes such a model as Parley does; needs no more tokens than encoder frames) (default: standard)",
    )
    p.add_argument(
        "--loss",
        choices=LOSSES,
        default=d.loss,
        help="full: the joiner on the whole (T, U+1) lattice; pruned: a simple additive joiner's loss picks bands of "
        "--prune-range rows per frame and the joiner runs on those only (k2's pruned RNN-T) (default: full)",
    )
    p.add_argument(
        "--prune-range", type=int, default=d.prune_range, help="rows per frame of the pruned loss's bands (default: 5)"
    )
    p.add_argument(
        "--simple-loss-scale",
        type=float,
        default=d.simple_loss_scale,
        help="weight of the pruned loss's simple loss after the warm-up (default: 0.5)",
    )
    p.add_argument(
        "--prune-warmup-steps",
        type=int,
        default=d.prune_warmup_steps,
        help="steps over which the simple loss's weight falls from 1 and the pruned loss's rises from 0.1 to 1 "
        "(0 after --init from a pruned checkpoint) (default: 2000)",
    )
    p.add_argument("--epochs", type=int, default=d.epochs, help="epochs")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="stop after this many steps (0: no limit)")
    p.add_argument("--max-seconds", type=float, default=d.max_seconds, help="padded audio seconds per batch")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW)")
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help="linear warm-up steps")
    p.add_argument(
        "--full-context-prob", type=float, default=d.full_context_prob, help="probability of a full-context batch"
    )
    p.add_argument("--no-augment", action="store_true", help="no speed perturbation or SpecAugment")
    p.add_argument(
        "--mel-warp",
        type=float,
        default=d.mel_warp_prob,
        help="probability of a vocal-tract-length warp of each item's features, factor 0.85-1.15 (default 0: off)",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--num-workers", type=int, default=d.num_workers, help="data loader processes")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="steps between last.pt saves")
    p.add_argument(
        "--keep-steps",
        type=int,
        nargs="+",
        default=[],
        help="also keep the checkpoints of these steps as step-N.pt, to average (python -m models.train.average)",
    )
    p.add_argument("--dev-utts", type=int, default=d.dev_utts, help="dev utterances decoded after each epoch")
    p.add_argument("--init", default="", help="start from the matching weights of this checkpoint (new run only)")
    p.add_argument("--dev-every", type=int, default=d.dev_every, help="also decode dev every N steps (0: never)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    p.add_argument(
        "--amp",
        choices=["none", "bf16"],
        default=d.amp,
        help="bf16: mixed precision (torch.autocast; weights, loss lattice and optimizer stay fp32). About 1.8x "
        "faster on CPUs with AVX512-BF16 and on GPUs; slower on CPUs without it (default: none)",
    )
    p.add_argument(
        "--feature-cache",
        default="",
        help="folder of precomputed training features (fbank at each speed factor; built on first use, resumable): "
        "the data loader then reads no audio and computes no fbank, a third of a step on a 2-core CPU",
    )
    mix = p.add_argument_group("dynamic mixing (t-SOT): fresh two-talker mixtures of the train manifests every epoch")
    mix.add_argument(
        "--mix-per-epoch",
        type=int,
        default=d.mix_per_epoch,
        help="mixtures drawn per epoch from the train utterances (they need word timings); 0: train on them as is",
    )
    mix.add_argument("--mix-gain-db", type=float, default=d.mix_gain_db, help="second talker's level range, +- dB")
    mix.add_argument("--mix-p-single", type=float, default=d.mix_p_single, help="share of single-talker items")
    mix.add_argument(
        "--mix-p-sequential", type=float, default=d.mix_p_sequential, help="share of pairs without overlap"
    )
    mix.add_argument(
        "--mix-speaker",
        choices=("base", "voice"),
        default=d.mix_speaker,
        help="another talker is another speaker, prosody aside (base, default) or another voice string (voice)",
    )
    sm2 = p.add_argument_group("multi-head (SM²) models: a head per output language, tasks SRC:TGT, streaming LID")
    sm2.add_argument(
        "--output-languages", nargs="+", default=[], help="one head per output language (tokenizers from --lang-dir)"
    )
    sm2.add_argument(
        "--tasks",
        nargs="+",
        default=[],
        help="SRC:TGT pairs: SRC speech to its caption (TGT = SRC) or TGT translation (default: every head's captions)",
    )
    sm2.add_argument("--lang-dir", default=d.lang_dir, help="folder with <language>/bpe.model (default: models/lang)")
    sm2.add_argument("--lid-languages", nargs="+", default=[], help="source languages of the streaming LID")
    sm2.add_argument("--lid-weight", type=float, default=d.lid_weight, help="weight of the LID cross-entropy")
    sm2.add_argument("--lid-hidden", type=int, default=d.lid_hidden, help="LID hidden layer width (0: linear)")
    sm2.add_argument("--ctc-on-translations", action="store_true", help="also apply the CTC loss to translation tasks")
    sm2.add_argument(
        "--freeze-encoder", action="store_true", help="train the heads only (language expansion; use with --init)"
    )
    sm2.add_argument(
        "--cmm-languages",
        nargs="+",
        default=[],
        help="configurable multilingual model: a language expert per language in the encoder (models/nn/cmm.py); "
        "each training utterance gets a random selection of them that holds its spoken language",
    )
    sm2.add_argument(
        "--cmm-rank", type=int, default=d.encoder.cmm_rank, help="CMM expert rank (0: a full D x D linear map)"
    )
    sm2.add_argument(
        "--cmm-every", type=int, default=d.encoder.cmm_every, help="CMM experts in every k-th encoder layer"
    )
    sm2.add_argument(
        "--init-head", default="", help="with --init of a single-head checkpoint: the head its decoder/joiner start"
    )
    a = p.parse_args(argv)
    if not a.output_languages and not a.tokenizer:
        p.error("--tokenizer is required for a single-head model (or give --output-languages)")
    enc = EncoderConfig(
        d_model=a.d_model,
        num_layers=a.layers,
        num_heads=a.heads,
        ff_dim=a.ff_dim,
        conv_kernel=a.conv_kernel,
        subsampling_channels=a.subsampling_channels,
        dropout=a.dropout,
        cmm_languages=a.cmm_languages,
        cmm_rank=a.cmm_rank,
        cmm_every=a.cmm_every,
    )
    return TrainConfig(
        train=a.train,
        dev=a.dev,
        tokenizer=a.tokenizer or "",
        exp_dir=a.exp_dir,
        target=a.target,
        encoder=enc,
        decoder_dim=a.decoder_dim,
        joiner_dim=a.joiner_dim,
        ctc_weight=a.ctc_weight,
        rnnt_type=a.rnnt_type,
        loss=a.loss,
        prune_range=a.prune_range,
        simple_loss_scale=a.simple_loss_scale,
        prune_warmup_steps=a.prune_warmup_steps,
        epochs=a.epochs,
        max_steps=a.max_steps,
        max_seconds=a.max_seconds,
        lr=a.lr,
        warmup_steps=a.warmup_steps,
        full_context_prob=a.full_context_prob,
        augment=not a.no_augment,
        mel_warp_prob=a.mel_warp,
        seed=a.seed,
        num_workers=a.num_workers,
        checkpoint_every=a.checkpoint_every,
        keep_steps=tuple(a.keep_steps),
        dev_utts=a.dev_utts,
        dev_every=a.dev_every,
        init=a.init,
        threads=a.threads,
        amp=a.amp,
        feature_cache=a.feature_cache,
        heads=a.output_languages,
        tasks=a.tasks,
        lang_dir=a.lang_dir,
        lid_languages=a.lid_languages,
        lid_weight=a.lid_weight,
        lid_hidden=a.lid_hidden,
        ctc_on_translations=a.ctc_on_translations,
        freeze_encoder=a.freeze_encoder,
        init_head=a.init_head,
        mix_per_epoch=a.mix_per_epoch,
        mix_gain_db=a.mix_gain_db,
        mix_p_single=a.mix_p_single,
        mix_p_sequential=a.mix_p_sequential,
        mix_speaker=a.mix_speaker,
    )


def main(argv: Sequence[str] | None = None) -> int:
    result = train(_parse(argv))
    if _dist_info()[0] == 0:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
