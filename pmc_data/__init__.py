"""pmc-data: reproducible, license-aware builds of the PMC-LLaMA corpora as HF datasets."""

__version__ = "0.1.0"
