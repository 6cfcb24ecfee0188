"""Prometheus metrics, the queue collector and exporters; Grafana and Prometheus configuration."""
