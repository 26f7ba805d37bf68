"""Helpers for testing fedsim and its plugins; the product itself never imports them.

`loopback` launches a real Flower deployment on 127.0.0.1 (the deployment tests and `bench_deploy_latency`).
"""
