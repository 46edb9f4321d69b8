"""Accuracy measures: one confusion matrix per evaluation and every metric derived from it;
SAR speckle-filter quality measures."""
