"""Data: the VAT folder data set, the toy-VAT generator and folder checks."""
