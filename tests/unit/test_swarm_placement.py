"""The placement check of `inv deploy.up`: a constraint is matched against the nodes as
Swarm matches it, and one no ready, active node satisfies is refused before any change."""

from __future__ import annotations

from typing import Any

import pytest

from dockwork.errors import DeployError
from dockwork.swarm.cluster import Constraint, Node, placement_problems

# -- the placement check, on its own ------------------------------------------------------

MANAGER = Node("m1", "node1", role="manager", labels={"zone": "a"})
WORKER = Node("w2", "node2", labels={"zone": "b"}, engine_labels={"disk": "ssd"})
DB_NODE = Node("w3", "node3", labels={"db": "true", "zone": "b"}, addr="10.0.0.3")


@pytest.mark.parametrize(
    ("text", "node", "expected"),
    [
        ("node.labels.db == true", DB_NODE, True),
        ("node.labels.db==true", DB_NODE, True),
        ("node.labels.db == TRUE", DB_NODE, True),  # values ignore case, as in Swarm
        ("node.labels.DB == true", DB_NODE, False),  # label names do not
        ("node.labels.db == true", WORKER, False),
        ("node.labels.db != true", WORKER, True),  # a label the node lacks is ""
        ("node.labels.db != true", DB_NODE, False),
        ("node.role == manager", MANAGER, True),
        ("node.role == worker", MANAGER, False),
        ("node.role != manager", WORKER, True),
        ("node.hostname == node2", WORKER, True),
        ("node.id == w3", DB_NODE, True),
        ("node.platform.os == linux", WORKER, True),
        ("node.platform.arch == x86_64", WORKER, True),
        ("engine.labels.disk == ssd", WORKER, True),
        ("engine.labels.disk == ssd", DB_NODE, False),
        ("node.ip == 10.0.0.0/24", DB_NODE, True),
        ("node.ip != 10.0.0.3", DB_NODE, False),
        ("node.colour == red", WORKER, False),  # a key Swarm does not know matches nothing
        ("node.colour != red", WORKER, False),
    ],
)
def test_a_constraint_matches_a_node_as_swarm_matches_it(
    text: str, node: Node, expected: bool
) -> None:
    assert Constraint.parse(text).matches(node) is expected


@pytest.mark.parametrize("text", ["node.labels.db", "node.labels.db = true", "== true", "x y"])
def test_a_constraint_swarm_would_refuse_is_an_error_naming_it(text: str) -> None:
    with pytest.raises(DeployError, match="is not `<key> == <value>`") as info:
        Constraint.parse(text)
    assert repr(text) in str(info.value)


def _stack(**constraints: list[str]) -> dict[str, Any]:
    return {
        "services": {
            name: {"image": "x", "deploy": {"placement": {"constraints": texts}}}
            for name, texts in constraints.items()
        }
        | {"cache": {"image": "redis"}}
    }


def test_placement_problems_name_the_service_and_the_constraint() -> None:
    nodes = [MANAGER, WORKER, DB_NODE]
    assert placement_problems(_stack(db=["node.labels.db == true"]), nodes) == []
    assert placement_problems(_stack(db=["node.labels.db == yes"]), nodes) == [
        "services.db: node.labels.db == yes matches no node"
    ]
    # each one matches a node, not one node both: both named
    both = ["node.role == manager", "node.labels.db == true"]
    assert placement_problems(_stack(db=both), nodes) == [
        "services.db: node.role == manager and node.labels.db == true match no node together"
    ]
    # of two constraints, the one that alone matches nothing is the one named
    one = ["node.role == worker", "node.labels.ssd == true"]
    assert placement_problems(_stack(app=one), nodes) == [
        "services.app: node.labels.ssd == true matches no node"
    ]


def test_a_constraint_only_a_drained_or_down_node_satisfies_is_a_problem() -> None:
    drained = Node("w3", "node3", labels={"db": "true"}, availability="drain")
    down = Node("w3", "node3", labels={"db": "true"}, state="down")
    for node in (drained, down):
        problems = placement_problems(
            _stack(db=["node.labels.db == true"]), [MANAGER, WORKER, node]
        )
        assert len(problems) == 1
        assert "matches only node3 (worker, " in problems[0]
        assert "where Swarm starts no task" in problems[0]


def test_a_node_from_docker_node_inspect() -> None:
    node = Node.from_inspect(
        {
            "ID": "abc",
            "Spec": {"Labels": {"db": "true"}, "Role": "worker", "Availability": "drain"},
            "Description": {
                "Hostname": "node3",
                "Platform": {"Architecture": "aarch64", "OS": "linux"},
                "Engine": {"Labels": {"disk": "ssd"}},
            },
            "Status": {"State": "ready", "Addr": "10.0.0.3"},
        }
    )
    assert node == Node(
        "abc",
        "node3",
        role="worker",
        os="linux",
        arch="aarch64",
        labels={"db": "true"},
        engine_labels={"disk": "ssd"},
        addr="10.0.0.3",
        state="ready",
        availability="drain",
    )
    assert not node.usable
