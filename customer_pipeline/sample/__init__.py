"""Sample customer data in the four source formats, with ground truth for identity resolution."""

from customer_pipeline.sample.generator import generate

__all__ = ["generate"]
