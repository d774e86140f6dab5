"""Policy training: behaviour cloning (SFT) and DEPO / KTO preference training, on `transformers.Trainer`.

- `config`: `BCConfig`, `DEPOConfig` (TrainingArguments subclasses, TRL style)
- `losses`: the DEPO objective (`depo_loss`, `efficiency_bonus`, `sequence_logps`)
- `data`: tokenisation with assistant masks, the length-bucketed batch plan, mismatched pairs, collators
- `attention`: the packed rows' attention (two causal attentions per row; one masked call for short rows)
- `bc`: `BCTrainer`, `train_bc`;  `depo`: `DEPOTrainer`, `train_depo`
- `run`: `TrainingOutcome` and checkpoint resuming
"""
from depo.training.bc import BCTrainer, train_bc
from depo.training.config import BCConfig, DEPOConfig, PolicyTrainingConfig
from depo.training.depo import DEPOTrainer, train_depo
from depo.training.losses import depo_loss, efficiency_bonus, sequence_logps
from depo.training.run import TrainingOutcome

__all__ = [
    "BCConfig",
    "BCTrainer",
    "DEPOConfig",
    "DEPOTrainer",
    "PolicyTrainingConfig",
    "TrainingOutcome",
    "depo_loss",
    "efficiency_bonus",
    "sequence_logps",
    "train_bc",
    "train_depo",
]
