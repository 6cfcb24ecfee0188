"""Binance's public kline archive (data.binance.vision): layout, verified downloads."""
