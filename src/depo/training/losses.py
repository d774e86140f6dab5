r"""The DEPO objective: KTO with an efficiency bonus for short, terse successful trajectories.

For a trajectory τ = (x, y), x the conversation up to the first assistant turn and y the rest, only the
assistant (Thought/Action) tokens of y are scored; system prompt and observations are masked out.

* implied reward    r(τ) = Σ_t log πθ(y_t | ·) − Σ_t log π_ref(y_t | ·)   (assistant tokens only;
  π_ref is the BC model)
* reference point   z0 = max(0, mean_batch[log πθ(y'|x) − log π_ref(y'|x)]), on mismatched pairs: each
  prompt x_i with the completion y_{i−1} of its batch neighbour (completions rotated by one, as TRL
  and HALOs do). It is computed without gradient and detached; a batch of 1 has no mismatched pair,
  so it is refused.
* efficiency bonus  b(τ) = α1 / T̄tok(τ) + α2 / Tstep(τ) for desirable τ, 0 for undesirable τ
  (T̄tok: mean generated tokens per step, Tstep: number of steps). The "undesirable penalty" variant
  uses b(τ) = −(α1 / T̄tok + α2 / Tstep) for undesirable τ as well.
* value, bonus_placement = "log_ratio" (default, the paper's form):
      desirable    v(τ) = λD · σ(β (r + b − z0))
      undesirable  v(τ) = λU · σ(β (z0 − (r + b)))
  bonus_placement = "margin" (SimPO-like: the bonus is a hurdle to clear instead of a head start):
      desirable    v(τ) = λD · σ(β (r − z0) − β b)
      undesirable  v(τ) = λU · σ(β (z0 − r) + β b)      (b ≤ 0 there, so it is also a hurdle)
* loss = mean_batch[λ_y − v(τ)], λ_y = λD for desirable τ and λU for undesirable τ.

With α1 = α2 = 0 this is exactly KTO as TRL's KTOTrainer computes it (loss_type="kto"): the same
mean of λ·(1 − σ(·)) and the same detached, batch-averaged, clamped KL estimate.

Inside a sigmoid a positive offset makes that example saturate earlier: under "log_ratio" an
efficient trajectory starts closer to the flat top of σ, so once r moves away from z0 it is pushed
less than an inefficient one. "margin" does the opposite: efficient trajectories must raise r further
before their value saturates.

Paper defaults: β = 0.2, λD = λU = 1, α1 = α2 = 3 (Llama) or 2 (Qwen).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

BONUS_PLACEMENTS = ("log_ratio", "margin")


def _check_batch_vector(name: str, value: torch.Tensor, size: int | None = None) -> int:
    if not isinstance(value, torch.Tensor) or value.dim() != 1:
        raise ValueError(f"{name} must be a 1-D tensor with one value per trajectory, got {value!r:.80}")
    if size is not None and value.shape[0] != size:
        raise ValueError(f"{name} has {value.shape[0]} values, expected the batch size {size}")
    return value.shape[0]


def efficiency_bonus(
    avg_tokens_per_step: torch.Tensor,
    steps: torch.Tensor,
    desirable: torch.Tensor,
    alpha_tokens: float,
    alpha_steps: float,
    penalize_undesirable: bool = False,
) -> torch.Tensor:
    """b(τ) = α1 / T̄tok + α2 / Tstep for desirable τ; 0 (or the negated size) for undesirable τ."""
    size = _check_batch_vector("avg_tokens_per_step", avg_tokens_per_step)
    _check_batch_vector("steps", steps, size)
    _check_batch_vector("desirable", desirable, size)
    if desirable.dtype != torch.bool:
        raise ValueError(f"desirable must be a bool tensor, got {desirable.dtype}")
    if alpha_tokens < 0 or alpha_steps < 0:
        raise ValueError(f"alpha_tokens and alpha_steps must be >= 0, got {alpha_tokens} and {alpha_steps}")
    avg_tokens_per_step = avg_tokens_per_step.to(torch.float32)
    steps = steps.to(torch.float32)
    magnitude = torch.zeros_like(avg_tokens_per_step)
    # A zero coefficient switches a term off, so its denominator is never read (KTO needs no counts).
    if alpha_tokens != 0:
        if (avg_tokens_per_step <= 0).any():
            raise ValueError("avg_tokens_per_step must be > 0 for every trajectory when alpha_tokens != 0")
        magnitude = magnitude + alpha_tokens / avg_tokens_per_step
    if alpha_steps != 0:
        if (steps <= 0).any():
            raise ValueError("steps must be > 0 for every trajectory when alpha_steps != 0")
        magnitude = magnitude + alpha_steps / steps
    undesirable_bonus = -magnitude if penalize_undesirable else torch.zeros_like(magnitude)
    return torch.where(desirable, magnitude, undesirable_bonus)


def depo_loss(
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    policy_kl_logps: torch.Tensor,
    reference_kl_logps: torch.Tensor,
    desirable: torch.Tensor,
    bonus: torch.Tensor,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    bonus_placement: str = "log_ratio",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean DEPO loss over the batch and its metrics (see the module docstring for the formula).

    `*_logps` are summed assistant-token log-probs per trajectory: matched (x_i, y_i) and mismatched
    (x_i, y_{i−1}). Metrics: `kl` (z0), `rewards/desirable` and `rewards/undesirable` (mean r per
    label, NaN when the batch has none), `bonus/mean`, and the label counts.
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if desirable_weight < 0 or undesirable_weight < 0:
        raise ValueError(
            f"desirable_weight and undesirable_weight must be >= 0, got {desirable_weight} and {undesirable_weight}"
        )
    if bonus_placement not in BONUS_PLACEMENTS:
        raise ValueError(f"bonus_placement must be one of {BONUS_PLACEMENTS}, got {bonus_placement!r}")
    size = _check_batch_vector("policy_logps", policy_logps)
    for name, value in (
        ("reference_logps", reference_logps),
        ("policy_kl_logps", policy_kl_logps),
        ("reference_kl_logps", reference_kl_logps),
        ("desirable", desirable),
        ("bonus", bonus),
    ):
        _check_batch_vector(name, value, size)
    if desirable.dtype != torch.bool:
        raise ValueError(f"desirable must be a bool tensor, got {desirable.dtype}")
    if size < 2:
        raise ValueError(
            "the reference point z0 needs a batch of at least 2 trajectories (mismatched pairs); got batch size "
            f"{size}: raise per_device_train_batch_size"
        )

    kl = (policy_kl_logps - reference_kl_logps).detach().mean().clamp(min=0)
    log_ratio = policy_logps - reference_logps
    if bonus_placement == "log_ratio":
        desirable_value = torch.sigmoid(beta * (log_ratio + bonus - kl))
        undesirable_value = torch.sigmoid(beta * (kl - (log_ratio + bonus)))
    else:
        desirable_value = torch.sigmoid(beta * (log_ratio - kl) - beta * bonus)
        undesirable_value = torch.sigmoid(beta * (kl - log_ratio) + beta * bonus)
    weight = torch.where(
        desirable, torch.full_like(log_ratio, desirable_weight), torch.full_like(log_ratio, undesirable_weight)
    )
    value = torch.where(desirable, desirable_value, undesirable_value)
    loss = (weight * (1 - value)).mean()

    rewards = log_ratio.detach()
    n_desirable = int(desirable.sum())
    n_undesirable = size - n_desirable
    metrics = {
        "kl": kl.item(),
        "rewards/desirable": rewards[desirable].mean().item() if n_desirable else float("nan"),
        "rewards/undesirable": rewards[~desirable].mean().item() if n_undesirable else float("nan"),
        "bonus/mean": bonus.detach().float().mean().item(),
        "count/desirable": n_desirable,
        "count/undesirable": n_undesirable,
    }
    return loss, metrics


IGNORE_INDEX = -100  # a position whose next token is not scored


def next_token_labels(input_ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """What each position is scored on: `input_ids[:, t + 1]` where `loss_mask[:, t + 1]` is 1, else IGNORE_INDEX."""
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[:, :-1] = torch.where(loss_mask[:, 1:].bool(), input_ids[:, 1:], IGNORE_INDEX)
    return labels


def labelled_logps(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: Sequence[torch.Tensor],
                   position_ids: torch.Tensor | None = None, cache=None, **model_kwargs) -> list[torch.Tensor]:
    """For each tensor of `labels` (one label per position, IGNORE_INDEX where unscored), per row the sum of
    log p(label | what that position sees), from one forward pass (fp32 softmax); `cache` holds the keys
    and values of tokens before `input_ids`, if any; `model_kwargs` go to the model (its attention function).

    The LM head and softmax run only at labelled positions (`logits_to_keep`): over a whole sequence they
    would cost as much as the rest of a small model and hold a (rows × length × vocab) tensor, while only
    the completion is scored. Several label tensors may score the same position with different tokens.
    """
    scored = [label != IGNORE_INDEX for label in labels]
    keep = torch.stack(scored).any(0)
    cached = {} if cache is None else {"cache": cache}
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False,
                   logits_to_keep=keep, **cached, **model_kwargs).logits
    n_kept = int(keep.sum())
    if logits.dim() != 2 or logits.shape[0] != n_kept:
        raise TypeError(
            f"{type(model).__name__} ignored a boolean logits_to_keep (logits of shape {tuple(logits.shape)}, expected "
            f"({n_kept}, vocab)): it needs a transformers causal LM that slices hidden states before its head"
        )
    # Upcast before the softmax: bf16 log-probs summed over hundreds of tokens drift visibly.
    log_probs = F.log_softmax(logits.float(), dim=-1)
    rows = keep.nonzero()[:, 0]  # row-major, the order of the kept positions in `logits`
    sums = []
    for label, mask in zip(labels, scored):
        kept_labels, kept_mask = label[keep], mask[keep]
        token_logps = log_probs.gather(1, kept_labels.clamp(min=0)[:, None]).squeeze(1)
        per_token = torch.where(kept_mask, token_logps, torch.zeros_like(token_logps))
        sums.append(torch.zeros(input_ids.shape[0], dtype=per_token.dtype, device=per_token.device)
                    .index_add(0, rows, per_token))
    return sums


def sequence_logps(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Σ log p(token | prefix) over the tokens where `loss_mask` is 1, one value per row (fp32 softmax)."""
    return labelled_logps(model, input_ids, attention_mask, [next_token_labels(input_ids, loss_mask)])[0]
