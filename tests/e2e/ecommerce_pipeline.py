"""Seed 002 end to end, the shared part: `embedstream gen ecommerce` events in a
real Kafka topic, read by `embedstream serve` with a mapping, written into a
Qdrant (the real server or the test server: qdrant_real.py). Used by
test_ecommerce.py and test_resilience.py."""
from __future__ import annotations

import copy
import json
import math
import time
import uuid

from qdrant_real import point_count
from service import Service

PAYLOAD_FIELDS = ["event_type", "user_id", "session_id", "product.id", "product.category",
                  "product.price", "timestamp"]


def wait_until(pred, timeout, what, svc=None, poll=0.5):
    """pred()'s first truthy value within `timeout` seconds, else AssertionError
    (with the serve log's tail when svc is given)."""
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(poll)
    tail = f"\nserve log:\n{svc.tail()}" if svc else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last}){tail}")


def merge(base: dict, extra: dict) -> dict:
    """base with extra merged in, nested dicts key by key."""
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Pipeline:
    """One input topic (+ output and DLQ), a Qdrant and a serve config. `config`:
    more settings merged into the config file (JSON, which is YAML); `qdrant_url`:
    where serve writes (default: the Qdrant's own url, e.g. not a proxy)."""

    def __init__(self, run, broker, tmp_path, qdrant, partitions=3, config=None, qdrant_url=None):
        tag = uuid.uuid4().hex[:8]
        self.run, self.broker, self.tmp = run, broker, tmp_path
        self.input, self.output = f"ecommerce-events-{tag}", f"embeddings-{tag}"
        self.dlq, self.group = f"{self.input}-dlq", f"embedstream-{tag}"
        self.collection = f"ecommerce_{tag}"
        for t in (self.input, self.output, self.dlq):
            broker.create_topic(t, partitions)
        self.qdrant = qdrant
        self.config = tmp_path / f"serve-{tag}.yaml"
        settings = {
            "kafka": {"mappings": {self.input: {
                "id_field": "event_id", "text_template": "{product.name}. {product.description}",
                "payload_fields": PAYLOAD_FIELDS, "timestamp_field": "timestamp"}}},
            "sinks": {"qdrant": {"url": qdrant_url or qdrant.url, "collection": self.collection,
                                 "batch_size": 256, "timeout_ms": 3000}},
            "pipeline": {"retry_base_ms": 100, "retry_max_ms": 1000,
                         "breaker": {"failure_threshold": 3, "open_ms": 1000, "open_max_ms": 3000}},
        }
        self.config.write_text(json.dumps(merge(settings, config or {}), indent=2) + "\n")

    def generate(self, count, seed, rate=None, to_topic=True):
        """Events to a file and (to_topic) to the input topic (same seed, same
        events): {id: event}. The file is self.events_file(seed)."""
        path = self.events_file(seed)
        p = self.run(["gen", "ecommerce", "--count", str(count), "--seed", str(seed),
                      "--output", str(path)], timeout=600)
        assert p.returncode == 0, p.stderr.decode()
        if to_topic:
            args = ["gen", "ecommerce", "--count", str(count), "--seed", str(seed),
                    "--topic", self.input, "--kafka-brokers", self.broker.bootstrap]
            if rate:
                args += ["--rate", str(rate)]
            p = self.run(args, timeout=900)
            assert p.returncode == 0, p.stderr.decode()
        events = [json.loads(l) for l in path.read_text().split("\n") if l.strip()]
        assert len(events) == count
        return {e["event_id"]: e for e in events}

    def events_file(self, seed):
        return self.tmp / f"events-{seed}.jsonl"

    def produce_raw(self, lines):
        """Raw lines (bytes, no newline in them) to the input topic, no key."""
        path = self.tmp / f"raw-{uuid.uuid4().hex[:6]}.txt"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        args = ["produce", self.input, "--raw", "--file", str(path), "-b", self.broker.bootstrap]
        p = self.run(args, timeout=600)
        assert p.returncode == 0, p.stderr.decode()

    def serve(self, binary, model_dir, extra=(), name=None, wait=True):
        args = ["--config", str(self.config), "--kafka-brokers", self.broker.bootstrap,
                "--group", self.group, "--input-topic", self.input, "--output-topic",
                self.output, "--batch-max-wait-ms", "50", *extra]
        svc = Service(binary, model_dir, args, self.tmp / f"serve-{name or self.group}.log")
        if wait:
            svc.wait_ready()
        return svc

    def stored(self):
        return point_count(self.qdrant, self.collection)

    def records(self, topic):
        return read_topic(self.run, self.broker, topic)

    def dlq_records(self):
        return self.records(self.dlq)


def read_topic(run, broker, topic, idle_ms=3000):
    """Every record of a topic, as dicts (consume --format json: topic, partition,
    offset, timestamp_ms, key, headers, value)."""
    p = run(["consume", topic, "--from-beginning", "--format", "json",
             "--idle-timeout-ms", str(idle_ms), "-b", broker.bootstrap], timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    return [json.loads(l) for l in p.stdout.decode().split("\n") if l.strip()]


def get_path(obj, dotted):
    for k in dotted.split("."):
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


def expected_text(event):
    name = (event.get("product") or {}).get("name") or ""
    desc = (event.get("product") or {}).get("description") or ""
    return ". ".join(x for x in (name.strip(), desc.strip()) if x)


def assert_points_as_sent(points, events, every=1):
    """Exactly the events' ids as point ids; every `every`-th point in detail: a
    unit 384-d vector, the configured payload fields as sent, the rendered text."""
    assert set(points) == set(events), (
        f"point ids != event ids: {len(set(events) - set(points))} missing, "
        f"{len(set(points) - set(events))} unexpected")
    for eid in sorted(events)[::every]:
        e, p = events[eid], points[eid]
        assert len(p["vector"]) == 384
        assert abs(math.fsum(x * x for x in p["vector"]) - 1) < 1e-4
        payload = p["payload"]
        for f in PAYLOAD_FIELDS:
            assert get_path(payload, f) == get_path(e, f), (f, payload, e)
        assert payload["text"] == expected_text(e)
        assert "name" not in payload.get("product", {}), "only the configured payload fields"
