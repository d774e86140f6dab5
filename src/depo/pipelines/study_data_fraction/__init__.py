"""The data-fraction study (the paper's Fig. 3): DEPO on 25/50/75/100 % of the DEPO data vs BC."""
from depo.pipelines.study_data_fraction.pipeline import create_pipeline

__all__ = ["create_pipeline"]
