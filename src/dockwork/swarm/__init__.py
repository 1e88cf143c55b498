"""Deploying the Compose stack to Docker Swarm (``inv deploy.*``).

- :mod:`.render`: the stack file from the resolved compose file (pure);
- :mod:`.cluster`: the swarm's state through the ``docker`` CLI (services, tasks, jobs,
  secrets and configs), waiting for convergence;
- :mod:`.release`: the commit tag, building and pushing the images, the secrets' values;
- :mod:`.routing`: whether the engine's kernel has the IPVS that ``"mesh"`` routing needs.
"""
