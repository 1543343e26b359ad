"""Consumer groups with real Python clients against a running busbar broker.

Usage: groups.py HOST:PORT

- confluent-kafka, group.protocol=consumer (KIP-848) and classic: three consumers on a 6-partition topic,
  members joining and leaving mid-stream; each record is counted only after its commit is accepted, so every
  record must be counted exactly once.
- kafka-python, classic protocol: two consumers share a topic, every record consumed once.
- A consumer killed with SIGKILL (no LeaveGroup) is evicted after session.timeout.ms and its partitions move.
- Admin: list, describe (members, assignments), lag, reset offsets (earliest, timestamp, latest), delete.
Exits non-zero on the first failure.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition, ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient, NewTopic

BOOT = sys.argv[1]


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", flush=True)
        sys.exit(1)


def create_topic(name, partitions):
    admin = AdminClient({"bootstrap.servers": BOOT})
    for f in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        f.result()


def produce(topic, partitions, start, end):
    p = Producer({"bootstrap.servers": BOOT, "linger.ms": 5})
    for i in range(start, end):
        p.produce(topic, key=f"k{i}", value=str(i), partition=i % partitions)
    check(p.flush(30) == 0, "all records delivered")


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.assignments = {}
        self.overlap = None

    def record(self, p, o):
        with self.lock:
            self.counts[(p, o)] = self.counts.get((p, o), 0) + 1

    def change(self, worker, added=(), removed=()):
        """Records a rebalance callback. Callbacks run before the client acts on a rebalance (before it rejoins,
        or acknowledges a revocation), so two owners of one partition here is a real double assignment; sampling
        assignment() after poll() is not exact (a worker may still show partitions its client already gave up)."""
        with self.lock:
            if not added and worker not in self.assignments:
                return  # a stopped worker's consumer revoking while it closes
            self.assignments[worker] = (self.assignments.get(worker, set()) | set(added)) - set(removed)
            seen = set()
            for ps in self.assignments.values():
                if seen & ps:
                    self.overlap = f"partitions claimed twice: {self.assignments}"
                seen |= ps

    def drop(self, worker):
        with self.lock:
            self.assignments.pop(worker, None)

    def wait_cover(self, n, within=90):
        deadline = time.time() + within
        while time.time() < deadline:
            with self.lock:
                parts = [p for ps in self.assignments.values() for p in ps]
                if sorted(parts) == list(range(n)):
                    return {w: set(ps) for w, ps in self.assignments.items()}
            time.sleep(0.1)
        check(False, f"assignments never covered {n} partitions exactly once: {self.assignments}")

    def wait_count(self, n, within=120):
        deadline = time.time() + within
        while time.time() < deadline and len(self.counts) < n:
            time.sleep(0.1)
        check(len(self.counts) >= n, f"processed {len(self.counts)} of {n}")

    def assert_exactly_once(self, n):
        twice = {k: v for k, v in self.counts.items() if v > 1}
        check(not twice, f"records processed twice after an accepted commit: {list(twice)[:10]}")
        check(len(self.counts) == n, f"processed {len(self.counts)} records, expected {n}")
        check(self.overlap is None, self.overlap or "")


class Worker(threading.Thread):
    def __init__(self, wid, group, topic, conf, ledger):
        super().__init__(daemon=True)
        self.wid, self.topic, self.ledger = wid, topic, ledger
        self.stop_flag = threading.Event()
        c = {"bootstrap.servers": BOOT, "group.id": group, "enable.auto.commit": False,
             "auto.offset.reset": "earliest"}
        c.update(conf)
        self.consumer = Consumer(c)
        # Eager assignments and revocations carry the whole set, incremental (KIP-848) ones the change: applying
        # them as additions and removals is right for both.
        self.consumer.subscribe(
            [topic],
            on_assign=lambda _c, parts: ledger.change(wid, added=[tp.partition for tp in parts]),
            on_revoke=lambda _c, parts: ledger.change(wid, removed=[tp.partition for tp in parts]),
        )

    def run(self):
        while not self.stop_flag.is_set():
            m = self.consumer.poll(0.1)
            if m is not None and m.error() is None:
                try:
                    self.consumer.commit(offsets=[TopicPartition(self.topic, m.partition(), m.offset() + 1)],
                                         asynchronous=False)
                    self.ledger.record(m.partition(), m.offset())
                except Exception:
                    pass  # a fenced member's commit fails; the next owner starts from the last accepted one
        self.ledger.drop(self.wid)
        self.consumer.close()

    def stop(self):
        self.stop_flag.set()
        self.join(30)


def join_leave_mid_stream(conf, label):
    topic, group = f"{label}-{uuid.uuid4().hex[:6]}", f"{label}-group"
    create_topic(topic, 6)
    produce(topic, 6, 0, 600)
    ledger = Ledger()
    ws = [Worker(i, group, topic, conf, ledger) for i in range(3)]
    for w in ws:
        w.start()
    ledger.wait_cover(6)
    produce(topic, 6, 600, 1200)
    ws[1].stop()
    ledger.wait_cover(6)
    w3 = Worker(3, group, topic, conf, ledger)
    w3.start()
    produce(topic, 6, 1200, 1800)
    ledger.wait_count(1800)
    deadline = time.time() + 90
    while time.time() < deadline:
        cover = ledger.wait_cover(6)
        if len(cover) == 3 and all(len(p) == 2 for p in cover.values()):
            break
        time.sleep(0.2)
    check(len(cover) == 3 and all(len(p) == 2 for p in cover.values()), f"three members, two partitions each: {cover}")
    ledger.assert_exactly_once(1800)
    for w in (ws[0], ws[2], w3):
        w.stop()
    print(f"ok: {label}: 1800 records exactly once while members joined and left; final assignment {cover}", flush=True)


def kafka_python_group():
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.structs import OffsetAndMetadata, TopicPartition as KTP
    topic = f"kp-{uuid.uuid4().hex[:6]}"
    create_topic(topic, 4)
    produce(topic, 4, 0, 400)
    ledger = Ledger()
    stop = threading.Event()

    class Listener(ConsumerRebalanceListener):
        def __init__(self, wid):
            self.wid = wid

        def on_partitions_revoked(self, revoked):
            ledger.change(self.wid, removed=[tp.partition for tp in revoked])

        def on_partitions_assigned(self, assigned):
            ledger.change(self.wid, added=[tp.partition for tp in assigned])

    def run(wid):
        c = KafkaConsumer(bootstrap_servers=BOOT, group_id="kafka-python-group", enable_auto_commit=False,
                          auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500)
        c.subscribe([topic], listener=Listener(wid))
        while not stop.is_set():
            for tp, msgs in c.poll(timeout_ms=100).items():
                for m in msgs:
                    try:
                        try:
                            meta = OffsetAndMetadata(m.offset + 1, None, -1)
                        except TypeError:
                            meta = OffsetAndMetadata(m.offset + 1, None)
                        c.commit({KTP(topic, m.partition): meta})
                        ledger.record(m.partition, m.offset)
                    except Exception:
                        pass
        ledger.drop(wid)
        c.close()

    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    for t in ts:
        t.start()
    ledger.wait_count(400)
    ledger.wait_cover(4)
    ledger.assert_exactly_once(400)
    stop.set()
    for t in ts:
        t.join(30)
    print("ok: kafka-python: two consumers shared 4 partitions, 400 records exactly once", flush=True)


CHILD = """
import sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "session.timeout.ms": 6000,
              "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"})
c.subscribe([sys.argv[3]])
while True:
    c.poll(0.1)
    if c.assignment():
        print("assigned", flush=True)
"""


def killed_consumer_is_evicted():
    topic, group = f"kill-{uuid.uuid4().hex[:6]}", "kill-group"
    create_topic(topic, 6)
    ledger = Ledger()
    w = Worker(0, group, topic, {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}, ledger)
    w.start()
    ledger.wait_cover(6)
    child = subprocess.Popen([sys.executable, "-c", CHILD, BOOT, group, topic], stdout=subprocess.PIPE, text=True)
    check(child.stdout.readline().strip() == "assigned", "the child consumer got partitions")
    deadline = time.time() + 60
    while time.time() < deadline and len(ledger.assignments.get(0, ())) == 6:
        time.sleep(0.1)
    check(len(ledger.assignments.get(0, ())) < 6, "the survivor gave partitions to the child")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    killed = time.time()
    deadline = killed + 60
    while time.time() < deadline and len(ledger.assignments.get(0, ())) != 6:
        time.sleep(0.1)
    took = time.time() - killed
    check(len(ledger.assignments.get(0, ())) == 6, "the killed consumer's partitions moved to the survivor")
    check(took >= 4.0, f"evicted after the session timeout, not before ({took:.1f}s)")
    w.stop()
    print(f"ok: SIGKILLed consumer evicted and its partitions moved after {took:.1f}s (session.timeout.ms=6000)",
          flush=True)


def admin_operations():
    topic, group = f"adm-{uuid.uuid4().hex[:6]}", "admin-group"
    create_topic(topic, 2)
    produce(topic, 2, 0, 100)
    ledger = Ledger()
    w = Worker(0, group, topic, {"session.timeout.ms": 6000}, ledger)
    w.start()
    ledger.wait_count(100)
    admin = AdminClient({"bootstrap.servers": BOOT})
    listed = admin.list_consumer_groups().result(30)
    ids = {g.group_id: g for g in listed.valid}
    check(group in ids, f"group listed: {list(ids)}")
    desc = admin.describe_consumer_groups([group])[group].result(30)
    check(len(desc.members) == 1, f"one member: {desc}")
    parts = sorted(tp.partition for tp in desc.members[0].assignment.topic_partitions)
    check(parts == [0, 1], f"member owns both partitions: {parts}")
    w.stop()
    produce(topic, 2, 100, 120)
    offs = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(30)
    probe = Consumer({"bootstrap.servers": BOOT, "group.id": "probe"})
    lag = 0
    for tp in offs.topic_partitions:
        lo, hi = probe.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
        lag += hi - tp.offset
    check(lag == 20, f"lag 20 after 20 unconsumed records, got {lag}")

    def reset(offsets):
        tps = [TopicPartition(topic, p, o) for p, o in offsets.items()]
        admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)])[group].result(30)
        got = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(30)
        return {tp.partition: tp.offset for tp in got.topic_partitions}

    check(reset({0: 0, 1: 0}) == {0: 0, 1: 0}, "reset to earliest")
    by_time = probe.offsets_for_times([TopicPartition(topic, p, 0) for p in (0, 1)], timeout=10)
    check(reset({tp.partition: tp.offset for tp in by_time}) == {0: 0, 1: 0}, "reset to a timestamp")
    check(reset({0: 60, 1: 60}) == {0: 60, 1: 60}, "reset to latest")
    probe.close()
    res = admin.delete_consumer_groups([group])[group].result(30)
    listed = admin.list_consumer_groups().result(30)
    check(group not in {g.group_id for g in listed.valid}, "deleted group is gone")
    print("ok: admin list, describe, lag, reset (earliest, timestamp, latest), delete", flush=True)


if __name__ == "__main__":
    import confluent_kafka
    print(f"confluent-kafka {confluent_kafka.version()} librdkafka {confluent_kafka.libversion()[0]}", flush=True)
    join_leave_mid_stream({"group.protocol": "consumer"}, "kip848")
    join_leave_mid_stream({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}, "classic")
    kafka_python_group()
    killed_consumer_is_evicted()
    admin_operations()
    print("groups suite: all passed", flush=True)
