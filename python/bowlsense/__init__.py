"""bowlsense: privacy-preserving sound detection on microcontrollers, trained only on verified audio."""

__version__ = "0.1.0"
