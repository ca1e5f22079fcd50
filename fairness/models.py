"""Models of the fairness app."""
