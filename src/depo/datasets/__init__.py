"""Kedro datasets for the project's own artefacts (the adapter layer between domain code and the catalog)."""
from depo.datasets.model_directory import ModelDirectoryDataset

__all__ = ["ModelDirectoryDataset"]
