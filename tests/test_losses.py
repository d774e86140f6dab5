"""The DEPO objective against hand-computed values (`depo.training.losses`)."""
from __future__ import annotations

import math

import pytest
import torch

from depo.training import DEPOConfig, depo_loss, efficiency_bonus


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def tensor(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


DESIRABLE = torch.tensor([True, False, True])
POLICY, REFERENCE = tensor(-1.0, -2.0, -3.0), tensor(-1.5, -1.0, -3.25)  # r = 0.5, -1.0, 0.25
POLICY_KL, REFERENCE_KL = tensor(-2.0, -3.0, -1.0), tensor(-2.5, -3.0, -1.4)  # mean 0.3


def test_kto_loss_without_bonus_matches_the_formula():
    beta, z0 = 0.2, 0.3
    loss, metrics = depo_loss(POLICY, REFERENCE, POLICY_KL, REFERENCE_KL, DESIRABLE, torch.zeros(3), beta=beta)
    values = [sigmoid(beta * (0.5 - z0)), sigmoid(beta * (z0 - -1.0)), sigmoid(beta * (0.25 - z0))]
    assert loss.item() == pytest.approx(sum(1 - v for v in values) / 3, abs=1e-6)
    assert metrics["kl"] == pytest.approx(z0, abs=1e-6)
    assert metrics["rewards/desirable"] == pytest.approx(0.375, abs=1e-6)
    assert metrics["rewards/undesirable"] == pytest.approx(-1.0, abs=1e-6)
    assert (metrics["count/desirable"], metrics["count/undesirable"]) == (2, 1)


def test_weights_scale_each_label():
    beta, z0 = 0.5, 0.3
    loss, _ = depo_loss(POLICY, REFERENCE, POLICY_KL, REFERENCE_KL, DESIRABLE, torch.zeros(3), beta=beta,
                        desirable_weight=2.0, undesirable_weight=0.5)
    expected = (2 * (1 - sigmoid(beta * (0.5 - z0))) + 0.5 * (1 - sigmoid(beta * (z0 + 1.0)))
                + 2 * (1 - sigmoid(beta * (0.25 - z0)))) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_bonus_inside_the_log_ratio():
    beta, z0 = 0.2, 0.3
    bonus = tensor(1.5, 0.0, 0.75)
    loss, metrics = depo_loss(POLICY, REFERENCE, POLICY_KL, REFERENCE_KL, DESIRABLE, bonus, beta=beta)
    values = [sigmoid(beta * (0.5 + 1.5 - z0)), sigmoid(beta * (z0 + 1.0)), sigmoid(beta * (0.25 + 0.75 - z0))]
    assert loss.item() == pytest.approx(sum(1 - v for v in values) / 3, abs=1e-6)
    assert metrics["bonus/mean"] == pytest.approx(0.75, abs=1e-6)
    # the bonus is not part of the implied reward
    assert metrics["rewards/desirable"] == pytest.approx(0.375, abs=1e-6)


def test_penalty_variant_lowers_undesirable_values():
    beta, z0 = 0.2, 0.3
    bonus = efficiency_bonus(tensor(10.0, 20.0, 5.0), tensor(2.0, 4.0, 1.0), DESIRABLE, alpha_tokens=3.0,
                             alpha_steps=2.0, penalize_undesirable=True)
    b = [3 / 10 + 2 / 2, -(3 / 20 + 2 / 4), 3 / 5 + 2 / 1]
    assert bonus.tolist() == pytest.approx(b, abs=1e-6)
    loss, _ = depo_loss(POLICY, REFERENCE, POLICY_KL, REFERENCE_KL, DESIRABLE, bonus, beta=beta)
    values = [sigmoid(beta * (0.5 + b[0] - z0)), sigmoid(beta * (z0 - (-1.0 + b[1]))),
              sigmoid(beta * (0.25 + b[2] - z0))]
    assert loss.item() == pytest.approx(sum(1 - v for v in values) / 3, abs=1e-6)


def test_margin_placement_makes_the_bonus_a_hurdle():
    beta, z0 = 0.2, 0.3
    bonus = tensor(1.5, -0.5, 0.75)
    loss, _ = depo_loss(POLICY, REFERENCE, POLICY_KL, REFERENCE_KL, DESIRABLE, bonus, beta=beta,
                        bonus_placement="margin")
    values = [sigmoid(beta * (0.5 - z0) - beta * 1.5), sigmoid(beta * (z0 + 1.0) + beta * -0.5),
              sigmoid(beta * (0.25 - z0) - beta * 0.75)]
    assert loss.item() == pytest.approx(sum(1 - v for v in values) / 3, abs=1e-6)
    log_ratio_loss, _ = depo_loss(POLICY, REFERENCE, POLICY_KL, REFERENCE_KL, DESIRABLE, bonus, beta=beta)
    assert loss.item() > log_ratio_loss.item()


def test_reference_point_is_clamped_at_zero():
    beta = 0.2
    negative_kl = tensor(-3.0, -3.0, -3.0)  # policy below reference on mismatched pairs: mean −1
    loss, metrics = depo_loss(POLICY, REFERENCE, negative_kl, negative_kl + 1, DESIRABLE, torch.zeros(3), beta=beta)
    assert metrics["kl"] == 0.0
    values = [sigmoid(beta * 0.5), sigmoid(beta * 1.0), sigmoid(beta * 0.25)]
    assert loss.item() == pytest.approx(sum(1 - v for v in values) / 3, abs=1e-6)


def test_no_gradient_flows_through_the_reference_point():
    policy_logps = POLICY.clone().requires_grad_()
    policy_kl_logps = POLICY_KL.clone().requires_grad_()
    loss, _ = depo_loss(policy_logps, REFERENCE, policy_kl_logps, REFERENCE_KL, DESIRABLE, torch.zeros(3), beta=0.2)
    loss.backward()
    assert policy_kl_logps.grad is None
    assert policy_logps.grad is not None and policy_logps.grad.abs().min() > 0
    # desirable rows are pushed up, undesirable ones down
    assert (policy_logps.grad[DESIRABLE] < 0).all() and (policy_logps.grad[~DESIRABLE] > 0).all()


def test_efficiency_bonus_values():
    desirable = torch.tensor([True, False])
    bonus = efficiency_bonus(tensor(4.0, 8.0), tensor(2.0, 5.0), desirable, alpha_tokens=2.0, alpha_steps=3.0)
    assert bonus.tolist() == pytest.approx([2 / 4 + 3 / 2, 0.0])
    tokens_only = efficiency_bonus(tensor(4.0, 8.0), tensor(2.0, 5.0), desirable, alpha_tokens=2.0, alpha_steps=0.0)
    assert tokens_only.tolist() == pytest.approx([0.5, 0.0])


def test_zero_alphas_give_no_bonus_and_need_no_counts():
    bonus = efficiency_bonus(tensor(0.0, 0.0), tensor(0.0, 0.0), torch.tensor([True, False]), 0.0, 0.0,
                             penalize_undesirable=True)
    assert bonus.tolist() == [0.0, 0.0]


def test_efficiency_bonus_refuses_zero_counts_it_would_divide_by():
    with pytest.raises(ValueError, match="steps must be > 0"):
        efficiency_bonus(tensor(4.0), tensor(0.0), torch.tensor([True]), alpha_tokens=0.0, alpha_steps=1.0)


def test_batch_size_one_is_refused():
    one = tensor(-1.0)
    with pytest.raises(ValueError, match="at least 2 trajectories"):
        depo_loss(one, one, one, one, torch.tensor([True]), torch.zeros(1), beta=0.2)
    with pytest.raises(ValueError, match="per_device_train_batch_size must be >= 2"):
        DEPOConfig(output_dir="unused", per_device_train_batch_size=1, use_cpu=True)
