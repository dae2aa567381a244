"""A toy translation task for study 12: pre-train a Transformer, then fine-tune it.

"Languages" are fixed-length sequences of word ids. Task A (pre-training, plenty of data):
translate word by word through dictionary A, keeping the order. Task B (fine-tuning, little
data): dictionary B — which agrees with A on half of the words — and reversed word order. The
model (``gdjax.models.Seq2SeqTransformer``) is pre-trained on A with Adam, then fine-tuned on B
with RMSprop and a warm-up + cosine learning-rate schedule; the same fine-tuning run from a fresh
initialisation is the control. Everything here is **synthetic** by construction.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

import gdjax
from experiments._core import Context
from experiments.studies import init_variables, prng_key
from gdjax.models import Seq2SeqTransformer
from gdjax.models.transformer import greedy_decode

BOS = 1


@dataclasses.dataclass
class Task:
    """Source/target pairs of one toy language pair."""

    src: np.ndarray
    tgt_in: np.ndarray
    tgt: np.ndarray


def make_task(
    rng: np.random.Generator, n: int, words: int, length: int, dictionary: np.ndarray, reverse: bool
) -> Task:
    src = rng.integers(2, words + 2, size=(n, length)).astype(np.int32)
    tgt = dictionary[src - 2]
    if reverse:
        tgt = tgt[:, ::-1]
    tgt = np.ascontiguousarray(tgt, np.int32)
    tgt_in = np.concatenate([np.full((n, 1), BOS, np.int32), tgt[:, :-1]], 1)
    return Task(src, tgt_in, tgt)


def run_translation(ctx: Context) -> dict:
    rng = np.random.default_rng(ctx.seed + 21)
    words, length = ctx.pick(12, 30), ctx.pick(5, 8)
    dict_a = rng.permutation(words).astype(np.int32) + 2
    dict_b = dict_a.copy()
    half = rng.permutation(words)[: words // 2]
    dict_b[half] = dict_a[rng.permutation(half)]  # half of the words translate differently
    pre = make_task(rng, ctx.pick(2000, 20000), words, length, dict_a, reverse=False)
    fine = make_task(rng, ctx.pick(200, 600), words, length, dict_b, reverse=True)
    test = make_task(rng, ctx.pick(200, 2000), words, length, dict_b, reverse=True)
    vocab = words + 2
    model = Seq2SeqTransformer(
        src_vocab_size=vocab,
        tgt_vocab_size=vocab,
        d_model=ctx.pick(32, 64),
        num_heads=4,
        num_layers=ctx.pick(1, 2),
        d_ff=ctx.pick(64, 128),
        max_len=length,
    )
    init = init_variables(ctx, model, pre.src[:1], pre.tgt_in[:1])

    def loss(p, b):
        return gdjax.losses.softmax_cross_entropy(model.apply(p, b[0], b[1]), b[2])

    def token_acc(p, b):
        return gdjax.metrics.accuracy(model.apply(p, b[0], b[1]), b[2])

    as_data = lambda t: (t.src, t.tgt_in, t.tgt)  # noqa: E731
    pre_epochs, fine_epochs = ctx.pick(2, 6), ctx.pick(5, 40)
    pretrained = gdjax.fit(
        loss,
        init,
        gdjax.adam(1e-3),
        as_data(pre),
        batch_size=64,
        epochs=pre_epochs,
        # quick: a fixed order (each epoch's permutation is a program of its own to compile)
        shuffle=not ctx.quick,
        key=prng_key(ctx),
        drop_last=True,
    )
    steps = fine_epochs * (len(fine.src) // 32)
    schedule = gdjax.schedules.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=1e-3, warmup_steps=max(steps // 10, 1), decay_steps=steps
    )
    decode = jax.jit(lambda p, s: greedy_decode(model, p, s, BOS, length))
    out = {
        "words": words,
        "length": length,
        "pretrain_examples": len(pre.src),
        "finetune_examples": len(fine.src),
        "test_examples": len(test.src),
        "pretrain_epochs": pre_epochs,
        "finetune_epochs": fine_epochs,
        "pretrain_final_loss": float(pretrained.history["loss"][-1]),
    }
    for name, start in (
        ("pre-trained, then fine-tuned", pretrained.params),
        ("from scratch (control)", init),
    ):
        res = gdjax.fit(
            loss,
            start,
            gdjax.rmsprop(schedule),
            as_data(fine),
            batch_size=32,
            epochs=fine_epochs,
            shuffle=not ctx.quick,
            key=prng_key(ctx, ctx.seed + 1),
            drop_last=True,
            validation_data=as_data(test),
            metrics={"token_accuracy": token_acc},
        )
        pred = np.asarray(decode(res.params, test.src))
        out[name] = {
            "test_token_accuracy_teacher_forced": float(res.history["val_token_accuracy"][-1]),
            "test_exact_match_greedy": float(np.mean(np.all(pred == test.tgt, axis=1))),
            "test_token_accuracy_greedy": float(np.mean(pred == test.tgt)),
            "final_train_loss": float(res.history["loss"][-1]),
            "val_loss_curve": np.asarray(res.history["val_loss"]).tolist(),
        }
    return out
