"""Runners: a model's runtime in a process of its own or in this one, behind one interface."""
