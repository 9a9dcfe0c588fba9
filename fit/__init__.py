"""Fit / predict / report stage of the model-ladder harness."""
