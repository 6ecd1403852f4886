"""The local backend: runs a job under Ray on this machine (a head gpuarb starts and stops) or on a Ray cluster
you already run (owned GPUs), submitting it through the Ray Jobs API.

- ``backend.py``: RayBackend, the Backend protocol over the pieces below.
- ``jobs.py``: what is submitted (entrypoint, working directory, environment, submission ids); pure.
- ``status.py``: what a Ray job's end means (preempted, failed, cancelled); pure.
- ``state.py``: the per-cluster JSON state files and their locks.
- ``heads.py``: heads gpuarb starts here, their processes and ports.
- ``client.py``: the Jobs API edge (connecting, whether it answers, what its errors mean).
- ``logs.py``: following a job's output live.

Nothing here imports Ray at module level: ``gpuarb --help`` stays fast.
"""
