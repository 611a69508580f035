"""deploy/rabbitmq/ lists exactly the queues the services' @consumes handlers use."""

import importlib

from nameko.containers import ServiceContainer

from shared.messaging import TOPOLOGY_FILE, Consumes, load_topology, queue_arguments, queue_type
from shared.ops.registry import ALL_SERVICES


def consumers_in_code() -> set[tuple[str, str, str]]:
    found = set()
    for name in ALL_SERVICES:
        module = importlib.import_module(f"services.{name}.service")
        for attr in vars(module).values():
            if isinstance(attr, type) and getattr(attr, "name", None) == name:
                container = ServiceContainer(attr, {"AMQP_URI": "amqp://"})
                for ext in container.entrypoints:
                    if isinstance(ext, Consumes):
                        found.add((ext.source_service, ext.event_type, f"{name}.{ext.method_name}"))
    return found


def test_topology_files_match_the_code():
    declared = {
        (c["source"], c["event"], c["consumer"]) for c in load_topology(TOPOLOGY_FILE)["consumers"]
    }
    assert declared == consumers_in_code()


def test_every_source_has_an_exchange():
    topology = load_topology(TOPOLOGY_FILE)
    assert {c["source"] for c in topology["consumers"]} <= set(topology["exchanges"])


def test_queue_arguments_follow_the_configured_type():
    classic = queue_arguments({"QUEUE_TYPE": "classic"}, "q")
    assert classic == {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "q.parked"}
    quorum = queue_arguments({"QUEUE_TYPE": "quorum", "DELIVERY_LIMIT": 7}, "q")
    assert quorum["x-queue-type"] == "quorum" and quorum["x-delivery-limit"] == 7
    try:
        queue_type({"QUEUE_TYPE": "lazy"})
    except ValueError as exc:
        assert "classic or quorum" in str(exc)
    else:
        raise AssertionError("an unknown queue type must be refused")


def test_nameko_run_finds_only_the_real_service_in_each_module():
    from nameko.cli.run import import_service

    for name in ALL_SERVICES:
        found = import_service(f"services.{name}.service")
        assert [cls.name for cls in found] == [name]


def test_every_consumed_event_is_declared_by_its_producer():
    from shared.events import registered_type

    consumers_in_code()  # imports every service, registering their event types
    missing = []
    for item in load_topology(TOPOLOGY_FILE)["consumers"]:
        known = registered_type(item["event"])
        module = type(known.schema).__module__ if known else ""
        if not module.startswith(f"services.{item['source']}."):
            missing.append(f"{item['consumer']} <- {item['source']}.{item['event']} ({module})")
    assert missing == []
