"""Benchmarks of overlord's HTTP serving (``make bench``). See bench/README.md.

Every figure is printed next to a ratio against a baseline measured in the same
run (the same server's ``GET /status/health`` rps): absolute numbers on a shared
2-core machine are noise, ratios are not.
"""
