"""What the tests, the benchmark and the docs share, and nothing the servers need: the
registry of models (registry.py), running a server as a process (process.py) and the
sections generated from the registry (generate.py), all standard library only; and
measuring a server's process (measure.py), the one module that needs a package (psutil)."""
