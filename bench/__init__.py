"""The benchmark (issue 5, in progress): run the servers under a C load generator and
measure what each IO model costs. So far: the load generator and its Python driver."""
