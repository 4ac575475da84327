"""Learned data-assimilation baselines: neural networks trained on OSSE cases."""
