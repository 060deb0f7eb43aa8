"""Evaluation: skill metrics, site comparisons with flux towers, figures."""
