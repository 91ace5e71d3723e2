"""What the tests, the benchmark and the docs share, and nothing the servers need: the
registry of models, and running a server as a process. Standard library only."""
