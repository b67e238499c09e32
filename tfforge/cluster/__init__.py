"""Handing builds to engines a team already runs: a Slurm cluster, a Bazel remote cache server."""
