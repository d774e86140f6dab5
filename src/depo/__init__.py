"""DEPO: Dual-Efficiency Preference Optimization for LLM agents."""

__version__ = "0.1.0"
