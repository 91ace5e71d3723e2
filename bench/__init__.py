"""The benchmark: every server, ours and a few well-known peers, under a C load generator
(loadgen.c, driven by loadgen.py), measured (measure.py) and compared as ratios in
tables and charts (report.py, charts.py). Run it with `python3 -m bench`."""
