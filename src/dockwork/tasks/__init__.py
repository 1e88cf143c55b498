"""dockwork's invoke collections. A project's tasks.py needs only::

    from dockwork.tasks import namespace

    ns = namespace()

Each namespace lives in its own module; this one only assembles them.
"""

from __future__ import annotations

from invoke.collection import Collection
from invoke.tasks import Task

from dockwork.tasks import db, deploy, quality, stack, testservers, web
from dockwork.tasks._signals import ForwardingLocal


def namespace(*extra: Collection) -> Collection:
    """The root collection: stack tasks at the top level, other namespaces beneath."""
    ns = Collection.from_module(stack)
    for member in vars(quality).values():
        if isinstance(member, Task):
            ns.add_task(member)
    ns.add_collection(Collection.from_module(db), name="db")
    ns.add_collection(Collection.from_module(web), name="web")
    ns.add_collection(Collection.from_module(deploy), name="deploy")
    ns.add_collection(Collection.from_module(testservers), name="test-servers")
    for collection in extra:
        ns.add_collection(collection)
    # signals (a cancelled CI job, a closed terminal) reach the command a task runs
    ns.configure({"runners": {"local": ForwardingLocal}})
    return ns


__all__ = ["namespace"]
