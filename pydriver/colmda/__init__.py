"""colmda: land data assimilation for soil moisture on a CoLM-style column core."""

__version__ = "0.1.0"
