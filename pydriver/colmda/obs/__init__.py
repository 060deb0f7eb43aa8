"""Observations: operators, the observation file format, simulated retrievals (twin experiments), in-situ
networks and reference fields."""
