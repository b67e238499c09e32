"""tfforge: reproducible TensorFlow wheels tuned to the CPUs they run on."""

__version__ = "0.1.0"
