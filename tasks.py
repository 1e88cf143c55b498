"""Tasks for this project: `inv --list`. The workflow itself lives in dockwork."""

from dockwork.tasks import namespace

ns = namespace()
