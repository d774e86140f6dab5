"""Every parameters block, validated once when a pipeline starts (`depo.hooks.ParameterValidationHook`).

A wrong value fails before any node runs, with a message naming the parameter (`mcts.simulations:
must be >= 1`), so a long run never dies halfway on a typo. Unknown keys are errors too. Training
blocks are checked by building their `TrainingArguments` configs, which own those rules.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from depo.envs import ENV_NAMES
from depo.evaluation.metrics import AGENT_METRICS
from depo.evaluation.studies import BONUS_VARIANTS, DATA_FRACTION_SLOTS, PENALTY_VARIANTS

Probability = float


class Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _known_envs(names: Any) -> Any:
    unknown = [n for n in (names if isinstance(names, (list, dict)) else []) if n not in ENV_NAMES]
    if unknown:
        raise ValueError(f"unknown environment(s) {unknown}; expected some of {list(ENV_NAMES)}")
    return names


class BabyAIParams(Block):
    levels: list[str] | None = None
    max_steps: PositiveInt = 20

    @field_validator("levels")
    @classmethod
    def _levels_exist(cls, levels):
        if levels is not None:
            from depo.envs.babyai.levels import check_levels

            check_levels(levels)
        return levels


class WebShopParams(Block):
    max_steps: PositiveInt = 15
    goal_seed: int = 233
    test_fraction: float = Field(0.2, gt=0, lt=1)


class MathParams(Block):
    benchmarks: list[Literal["gsm8k", "math", "simuleq"]] | None = None
    max_steps: PositiveInt = 1


class EnvsParams(Block):
    babyai: BabyAIParams = BabyAIParams()
    webshop: WebShopParams = WebShopParams()
    math: MathParams = MathParams()


class WebShopCatalogParams(Block):
    items_path: str | None = None
    attributes_path: str | None = None
    n_products: PositiveInt = 300
    seed: int = 0


class MathDataParams(Block):
    source: Literal["generated", "jsonl", "hub"]
    n_per_benchmark: PositiveInt
    seed: int = 0
    paths: dict[Literal["gsm8k", "math", "simuleq"], str] = {}
    benchmarks: list[Literal["gsm8k", "math", "simuleq"]]

    @model_validator(mode="after")
    def _paths_for_jsonl(self):
        if self.source == "jsonl" and not self.paths:
            raise ValueError("source 'jsonl' needs paths: {benchmark: file.jsonl}")
        return self


class RolloutsParams(Block):
    envs: list[str]
    seed: int = 0
    n_train_tasks: dict[str, int]
    n_test_tasks: dict[str, int]
    _envs = field_validator("envs", "n_train_tasks", "n_test_tasks")(_known_envs)

    @model_validator(mode="after")
    def _counts(self):
        for split in ("n_train_tasks", "n_test_tasks"):
            counts = getattr(self, split)
            for env in self.envs:
                if counts.get(env, 0) < 1:
                    raise ValueError(f"{split}.{env} must be a positive number of tasks")
        return self


class TinyModelParams(Block):
    vocab_size: int = Field(ge=261)
    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_heads: PositiveInt
    num_key_value_heads: PositiveInt | None = None
    intermediate_size: PositiveInt
    max_position_embeddings: PositiveInt
    seed: int = 0

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        if self.num_key_value_heads and self.num_heads % self.num_key_value_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be divisible by num_key_value_heads "
                             f"({self.num_key_value_heads})")
        return self


def _training_config(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Build the TrainingArguments subclass so its own checks run now (no output is written)."""
    from depo.training import BCConfig, DEPOConfig

    config_class = BCConfig if kind == "bc" else DEPOConfig
    try:
        config_class(output_dir="unused-validation-dir", **settings)
    except (TypeError, ValueError) as error:
        raise ValueError(str(error)) from None
    return settings


class CorpusParams(Block):
    envs: list[str]
    n_tasks: dict[str, PositiveInt]
    math_problems_per_benchmark: PositiveInt
    seed: int = 0
    verbose_probability: Probability = Field(ge=0, le=1)
    detour_probability: Probability = Field(ge=0, le=1)
    keep_failed: bool = False
    _envs = field_validator("envs", "n_tasks")(_known_envs)


class EndpointParams(Block):
    model_config = ConfigDict(extra="allow")
    base_url: str
    model: str


class ProposerParams(Block):
    type: Literal["expert", "endpoint"]
    verbose_probability: Probability = Field(0.5, ge=0, le=1)
    endpoint: EndpointParams | None = None


class MCTSParams(Block):
    envs: list[str]
    n_tasks: dict[str, PositiveInt]
    simulations: PositiveInt
    num_proposals: PositiveInt
    exploration: float = Field(ge=0)
    max_depth: PositiveInt
    rollout_policy: Literal["expert", "random"]
    seed: int = 0
    proposer: ProposerParams
    _envs = field_validator("envs", "n_tasks")(_known_envs)


class ThresholdParams(Block):
    desirable_min_reward: float
    undesirable_reward_range: tuple[float, float]
    step_limit: int | None = Field(None, ge=2)


class RewriterParams(Block):
    type: Literal["rule", "endpoint"]
    max_words: PositiveInt = 40
    endpoint: EndpointParams | None = None


class LabelingParams(Block):
    seed: int = 0
    rewriter: RewriterParams
    thresholds: dict[str, ThresholdParams]
    _envs = field_validator("thresholds")(_known_envs)

    @field_validator("thresholds")
    @classmethod
    def _consistent(cls, thresholds):
        from depo.labeling import thresholds_from_params

        thresholds_from_params({env: block.model_dump() for env, block in thresholds.items()})
        return thresholds


class BCParams(Block):
    training: dict[str, Any]
    output_dir: str

    @field_validator("training")
    @classmethod
    def _training(cls, training):
        return _training_config("bc", training)


class BaseModelParams(BCParams):
    """Instruct-style training of the tiny model: BC's settings plus the corpus it trains on."""

    corpus: CorpusParams


class VariantParams(Block):
    model_config = ConfigDict(extra="allow")  # any DEPOConfig field; checked with the shared block
    name: str
    output_dir: str


class EvaluationParams(Block):
    stages: list[Literal["base", "bc", "kto", "depo"]]
    envs: list[str]
    n_tasks: dict[str, PositiveInt]
    max_new_tokens: PositiveInt
    history_turns: PositiveInt | None = None
    batch_size: PositiveInt
    bootstrap_resamples: PositiveInt
    seed: int = 0
    _envs = field_validator("envs", "n_tasks")(_known_envs)


class ModelRolloutsParams(Block):
    envs: list[str]
    n_tasks: dict[str, PositiveInt]
    max_new_tokens: PositiveInt
    history_turns: PositiveInt | None = None
    batch_size: PositiveInt
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0)
    seed: int = 0
    _envs = field_validator("envs", "n_tasks")(_known_envs)

    @model_validator(mode="after")
    def _counts(self):
        missing = [env for env in self.envs if env not in self.n_tasks]
        if missing:
            raise ValueError(f"n_tasks has no count for {missing}")
        return self


class BenchmarksParams(Block):
    repeats: PositiveInt
    seed: int = 0
    torch_threads: PositiveInt | None = None
    corpus_tasks: PositiveInt
    rollout_tasks: PositiveInt
    rollout_batch_size: PositiveInt
    rollout_max_steps: PositiveInt
    max_new_tokens: PositiveInt
    history_turns: PositiveInt | None = None
    trainer_tasks: PositiveInt
    trainer_batch_size: int = Field(ge=2)  # DEPO's reference point needs two rows per batch
    mcts_tasks: PositiveInt
    scaling_tasks: PositiveInt
    scaling_multiples: list[PositiveInt] = Field(min_length=2)
    flops_tasks: PositiveInt
    flops_batch_size: PositiveInt
    matmul_size: PositiveInt

    @field_validator("scaling_multiples")
    @classmethod
    def _distinct(cls, multiples):
        if len(set(multiples)) < 2:
            raise ValueError(f"needs at least two distinct multiples to fit a growth exponent, got {multiples}")
        return multiples


StudyMetric = Literal[AGENT_METRICS]
# Stage names of the default run; a study variant of the same name would be confused with them.
DEFAULT_STAGES = ("base", "bc", "kto", "depo")


class StudyEvaluationParams(Block):
    """The envs a study evaluates on; every other evaluation setting is the `evaluation` block's."""

    envs: list[Literal["babyai", "webshop"]] = Field(min_length=1)


class StudyVariantParams(VariantParams):
    """A study's DEPO variant: checked as a DEPOConfig on its own (the shared block is checked apart)."""

    @model_validator(mode="after")
    def _depo_settings(self):
        if self.name in DEFAULT_STAGES:
            raise ValueError(f"name {self.name!r} is a stage of the default run; choose another")
        _training_config("depo", self.model_dump(exclude={"name", "output_dir"}))
        return self


class StudySlotParams(Block):
    variant: StudyVariantParams


def _distinct(what: str, values: list[Any]) -> None:
    if len(set(values)) < len(values):
        raise ValueError(f"the variants' {what} must differ, got {values}")


class _TrainingStudyParams(Block):
    evaluation: StudyEvaluationParams
    metrics: list[StudyMetric] = Field(min_length=1)

    def _variants(self, slots: tuple[str, ...]) -> list[StudyVariantParams]:
        variants = [getattr(self, slot).variant for slot in slots]
        _distinct("names", [variant.name for variant in variants])
        _distinct("output_dir", [variant.output_dir for variant in variants])
        return variants


class _DataFractionStudy(_TrainingStudyParams):
    @model_validator(mode="after")
    def _fractions(self):
        variants = self._variants(DATA_FRACTION_SLOTS)
        unset = [f"{slot}.variant.data_fraction" for slot, variant in zip(DATA_FRACTION_SLOTS, variants, strict=True)
                 if "data_fraction" not in variant.model_dump()]
        if unset:
            raise ValueError(f"{', '.join(unset)} missing: each slot sets the fraction of depo_dataset it trains on")
        _distinct("data_fraction", [variant.model_dump()["data_fraction"] for variant in variants])
        return self


class _BonusStudy(_TrainingStudyParams):
    @model_validator(mode="after")
    def _names(self):
        self._variants(BONUS_VARIANTS)
        return self


class _PenaltyStudy(_TrainingStudyParams):
    @model_validator(mode="after")
    def _penalizes(self):
        for variant in self._variants(PENALTY_VARIANTS):
            if not variant.model_dump().get("penalize_undesirable"):
                raise ValueError(
                    f"variant {variant.name!r} must set penalize_undesirable: true (it is the penalty study)"
                )
        return self


# One field per slot / variant of the pipelines (`depo.evaluation.studies`), so a missing or misspelled one is named.
DataFractionStudyParams = create_model(
    "DataFractionStudyParams", __base__=_DataFractionStudy, **{slot: (StudySlotParams, ...) for slot in DATA_FRACTION_SLOTS}
)
BonusStudyParams = create_model(
    "BonusStudyParams", __base__=_BonusStudy, **{variant: (StudySlotParams, ...) for variant in BONUS_VARIANTS}
)
PenaltyStudyParams = create_model(
    "PenaltyStudyParams", __base__=_PenaltyStudy, **{variant: (StudySlotParams, ...) for variant in PENALTY_VARIANTS}
)


BLOCKS: dict[str, type[Block]] = {
    "envs": EnvsParams,
    "webshop_catalog": WebShopCatalogParams,
    "math_data": MathDataParams,
    "rollouts": RolloutsParams,
    "tiny_model": TinyModelParams,
    "base_model": BaseModelParams,
    "mcts": MCTSParams,
    "labeling": LabelingParams,
    "bc": BCParams,
    "evaluation": EvaluationParams,
    "model_rollouts": ModelRolloutsParams,
    "benchmarks": BenchmarksParams,
    "study_data_fraction": DataFractionStudyParams,
    "study_penalty": PenaltyStudyParams,
    "study_bonus": BonusStudyParams,
}
VARIANT_BLOCKS = ("depo", "kto")


class ParameterError(ValueError):
    """One or more parameters are invalid; the message names each as `block.key.subkey`."""


def _describe(block: str, error: ValidationError) -> list[str]:
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in (block, *problem["loc"]))
        lines.append(f"{where}: {problem['msg'].removeprefix('Value error, ')}")
    return lines


def validate_parameters(params: dict[str, Any], names: set[str]) -> None:
    """Validate the top-level blocks in `names` (those a pipeline reads); raise naming every bad one."""
    problems: list[str] = []
    for name in sorted(names):
        if name not in params:
            continue
        value = params[name]
        try:
            if name in BLOCKS:
                BLOCKS[name].model_validate(value)
            elif name in VARIANT_BLOCKS:
                variant = VariantParams.model_validate(value.get("variant", {}))
                shared = params.get("preference_training", {})
                settings = {**shared, **variant.model_dump(exclude={"name", "output_dir"})}
                try:
                    _training_config("depo", settings)
                except ValueError as error:
                    problems.append(f"{name}.variant (with preference_training): {error}")
        except ValidationError as error:
            problems += _describe(name, error)
    if "preference_training" in names and not any(v in names for v in VARIANT_BLOCKS):
        try:
            _training_config("depo", params.get("preference_training", {}))
        except ValueError as error:
            problems.append(f"preference_training: {error}")
    if problems:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(problems))
