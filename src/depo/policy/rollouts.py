"""Batched rollouts of a model policy: N episodes advance together, one generator call per step.

Every agent step sends the prompts of all unfinished episodes to the generator at once; an episode
that finishes leaves the batch and the next waiting task takes its slot. With `batch_size=1` this
is the plain one-episode-at-a-time loop. The frame has one row per environment step, so its height
is the number of env steps a run took (what a throughput benchmark divides by wall time).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import polars as pl

from depo.agent.prompting import build_messages
from depo.agent.react import AgentTurn, parse_turn
from depo.envs.base import Task, TaskSuite, TextEnv
from depo.policy.base import GenerationConfig, Generator
from depo.policy.tokens import trajectory_token_totals
from depo.rollout.episodes import episode_id, step_record
from depo.schema import StepRecord, finalize, to_frame


@dataclass
class _Episode:
    index: int  # position of the task in the caller's list, so output order is the task order
    task: Task
    env: TextEnv
    observations: list[str]
    turns: list[AgentTurn] = field(default_factory=list)
    records: list[StepRecord] = field(default_factory=list)
    gen_tokens: list[int] = field(default_factory=list)


def rollout(
    generator: Generator,
    suite: TaskSuite,
    tasks: list[Task],
    source: str,
    config: GenerationConfig,
    history_turns: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = True,
) -> pl.DataFrame:
    """One episode of `generator`'s policy per task, as trajectory rows plus token columns."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if config.num_return_sequences != 1:
        raise ValueError(f"a rollout follows one completion per step; got num_return_sequences={config.num_return_sequences}")
    tasks = list(tasks)
    task_ids = [task.task_id for task in tasks]
    if len(set(task_ids)) != len(task_ids):
        duplicated = sorted({t for t in task_ids if task_ids.count(t) > 1})
        raise ValueError(f"tasks repeat task_id(s) {duplicated[:5]}; trajectory ids would collide")

    waiting = list(enumerate(tasks))[::-1]  # popped from the end, in task order
    active: list[_Episode] = []
    finished: dict[int, _Episode] = {}
    call_index = 0
    with tqdm(total=len(tasks), desc=f"{suite.name}/{source}", disable=not progress, leave=False) as bar:
        while waiting or active:
            while waiting and len(active) < batch_size:
                index, task = waiting.pop()
                env = suite.make_env()
                active.append(_Episode(index=index, task=task, env=env, observations=[env.reset(task)]))
            prompts = [
                build_messages(suite.system_prompt, episode.observations, episode.turns, history_turns)
                for episode in active
            ]
            # A fresh seed per call: sampled steps differ, and the same arguments repeat a run exactly.
            step_config = replace(config, seed=hash((config.seed, seed, call_index)) % 2**31)
            call_index += 1
            completions = generator.generate(prompts, step_config)
            still_running = []
            for episode, (completion,) in zip(active, completions):
                if _step(episode, completion.text, completion.n_tokens, source, seed):
                    finished[episode.index] = episode
                    bar.update(1)
                else:
                    still_running.append(episode)
            active = still_running

    records: list[StepRecord] = []
    token_columns: dict[str, list] = {"gen_tokens": [], "total_tokens": [], "avg_tokens_per_step": []}
    for index in range(len(tasks)):
        episode = finished[index]
        total, average = trajectory_token_totals(episode.gen_tokens)
        records.extend(episode.records)
        token_columns["gen_tokens"].extend(episode.gen_tokens)
        token_columns["total_tokens"].extend([total] * len(episode.records))
        token_columns["avg_tokens_per_step"].extend([average] * len(episode.records))
    return to_frame(records, extra=token_columns)


def _step(episode: _Episode, text: str, n_tokens: int, source: str, seed: int) -> bool:
    """Apply one completion to its episode; True when the episode is over."""
    # An unparseable completion is still a step: the empty action is answered as invalid, and the
    # raw text is kept as the thought so the failure stays visible in the data.
    turn = parse_turn(text) or AgentTurn(thought=text, action="")
    result = episode.env.step(turn.action)
    task = episode.task
    episode.records.append(
        step_record(task, episode_id(source, task, seed), len(episode.records), episode.observations[-1], turn,
                    result, source, seed)
    )
    episode.turns.append(turn)
    episode.observations.append(result.observation)
    episode.gen_tokens.append(n_tokens)
    if not result.done and episode.env.steps_taken >= episode.env.max_steps:
        raise RuntimeError(
            f"environment {task.env!r} did not end task {task.task_id!r} after its max_steps={episode.env.max_steps}"
        )
    if result.done:
        finalize(episode.records, success=bool(result.info.get("success", False)))
    return result.done


def rollout_test_tasks(
    generator: Generator,
    tasks: pl.DataFrame,
    resources: dict,
    envs: dict,
    env_names: list[str],
    n_tasks: dict[str, int],
    source: str,
    config: GenerationConfig,
    history_turns: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
) -> pl.DataFrame:
    """`rollout` on the first `n_tasks[env]` test tasks of each env in `env_names`, in one frame.

    Agent envs take their tasks from a tasks catalog frame (`depo.envs.base.select_tasks`), math its
    test problems from its suite; `resources` are the suites' data (`products`, `problems`) and `envs`
    their settings blocks.
    """
    from depo.envs import build_suite
    from depo.envs.base import select_tasks

    frames = []
    for name in env_names:
        suite = build_suite(name, envs.get(name, {}), **resources)
        if name == "math":
            env_tasks = suite.make_tasks("test", n_tasks["math"], seed=seed)
        else:
            env_tasks = select_tasks(tasks, name, "test", n_tasks[name])
        frames.append(rollout(generator, suite, env_tasks, source=source, config=config, history_turns=history_turns,
                              batch_size=batch_size, seed=seed))
    return pl.concat(frames, how="vertical")
