"""Metrics: toy-VAT ground truth now; the paper suite (eval) follows."""
