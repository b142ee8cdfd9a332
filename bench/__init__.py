"""Benchmarks of the MES server at national scale (issue 8): ``python -m bench.run --quick|--full``.

Every figure is a median over repeated runs with its min and max; every comparison is a ratio
measured in the same run (the machines are shared and noisy). See ``bench/report.md``.
"""
