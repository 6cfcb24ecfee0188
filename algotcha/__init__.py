"""Algotcha backtest queue."""

__version__ = "0.1.0"
