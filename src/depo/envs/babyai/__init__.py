"""BabyAI as a text environment on the real minigrid levels (AgentGym-style observations and actions)."""
from depo.envs.babyai.env import BabyAIEnv
from depo.envs.babyai.levels import DEFAULT_LEVELS, registered_levels
from depo.envs.babyai.suite import BabyAISuite

__all__ = ["DEFAULT_LEVELS", "BabyAIEnv", "BabyAISuite", "registered_levels"]
