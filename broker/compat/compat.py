"""Compatibility scenario against a running busbar broker, with real clients.

confluent-kafka and kafka-python (and kcat, driven by 10-broker.sh through this script) create a topic with
3 partitions, produce keyed records with headers under every codec, consume them all back and compare them
byte for byte, list offsets by time, alter retention online and delete the topic. Any mismatch exits non-zero.

Usage: python3 compat.py HOST:PORT
"""

import random
import string
import subprocess
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 10_000
KAFKA_PYTHON_PER_CODEC = 500
PARTITIONS = 3


def fail(message):
    print(f"MISMATCH: {message}", file=sys.stderr)
    sys.exit(1)


def text(rng, n):
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def expected_records():
    """(client, codec, i) -> (key, value, headers), printable so kcat's text output can be compared too."""
    rng = random.Random(42)
    out = {}
    for client, count in (("confluent", PER_CODEC), ("kafka-python", KAFKA_PYTHON_PER_CODEC)):
        for codec in CODECS:
            for i in range(count):
                key = f"{client}-{codec}-key-{i % 97}".encode()
                value = f"{client}|{codec}|{i}|{text(rng, rng.randint(1, 300))}".encode()
                headers = [("codec", codec.encode()), ("seq", str(i).encode()), ("client", client.encode())]
                out[(client, codec, i)] = (key, value, headers)
    return out


def produce(bootstrap, topic, records):
    for codec in CODECS:
        producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 5, "acks": "all"})
        errors = []
        for (client, c, i), (key, value, headers) in records.items():
            if client == "confluent" and c == codec:
                producer.produce(topic, key=key, value=value, headers=headers,
                                 on_delivery=lambda err, _msg: err and errors.append(err))
                producer.poll(0)
        if producer.flush(60) != 0 or errors:
            fail(f"confluent-kafka {codec}: {len(errors)} delivery errors, first {errors[:1]}")
        kp_codec = None if codec == "none" else codec
        kp = KafkaProducer(bootstrap_servers=bootstrap, compression_type=kp_codec, acks="all", linger_ms=5,
                           enable_idempotence=False)
        futures = [kp.send(topic, key=key, value=value, headers=headers)
                   for (client, c, i), (key, value, headers) in records.items()
                   if client == "kafka-python" and c == codec]
        for f in futures:
            f.get(timeout=60)
        kp.close()
        print(f"produced {codec}")


def consume_kafka_python(bootstrap, topic, total):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10_000)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got = []
    for message in consumer:
        got.append((message.partition, message.offset, message.key, message.value,
                    [(k, bytes(v)) for k, v in message.headers]))
        if len(got) >= total:
            break
    consumer.close()
    return got


def check(got, records, label):
    if len(got) != len(records):
        fail(f"{label}: consumed {len(got)} records, produced {len(records)}")
    seen_offsets = set()
    matched = set()
    for partition, offset, key, value, headers in got:
        if (partition, offset) in seen_offsets:
            fail(f"{label}: duplicate offset {partition}/{offset}")
        seen_offsets.add((partition, offset))
        h = dict(headers)
        client = h["client"].decode()
        codec = h["codec"].decode()
        seq = int(h["seq"].decode())
        want = records.get((client, codec, seq))
        if want is None or (key, value, headers) != want:
            fail(f"{label}: record {client}/{codec}/{seq} at {partition}/{offset} differs")
        matched.add((client, codec, seq))
    if len(matched) != len(records):
        fail(f"{label}: {len(records) - len(matched)} records missing")
    for p in range(PARTITIONS):
        offsets = sorted(o for q, o in seen_offsets if q == p)
        if offsets != list(range(len(offsets))):
            fail(f"{label}: partition {p} offsets are not dense")
    print(f"{label}: {len(got)} records identical")


def consume_kcat(bootstrap, topic, records):
    out = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
         "-f", "%p\t%o\t%k\t%h\t%s\n"],
        check=True, capture_output=True, timeout=300).stdout.decode()
    got = []
    for line in out.splitlines():
        partition, offset, key, headers, value = line.split("\t")
        pairs = [tuple(h.split("=", 1)) for h in headers.split(",")]
        got.append((int(partition), int(offset), key.encode(), value.encode(), [(k, v.encode()) for k, v in pairs]))
    check(got, records, "kcat")


def list_offsets_by_time(bootstrap):
    topic = "compat-times"
    # Recent timestamps: records older than the default retention (7 days) would be deleted in the background.
    base = int(time.time() * 1000) - 100_000
    kp = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    for i in range(1, 11):
        kp.send(topic, value=b"t", partition=0, timestamp_ms=base + i * 1000).get(timeout=30)
    kp.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    found = consumer.offsets_for_times({tp: base + 4500})[tp]
    if found is None or found.offset != 4 or found.timestamp != base + 5000:
        fail(f"kafka-python offsets_for_times(base+4500) = {found}, expected offset 4 at base+5000 ms")
    if consumer.offsets_for_times({tp: base + 99_000})[tp] is not None:
        fail("offsets_for_times past the end should find nothing")
    consumer.close()
    out = subprocess.run(["kcat", "-Q", "-b", bootstrap, "-t", f"{topic}:0:{base + 7000}"], check=True,
                         capture_output=True, timeout=60).stdout.decode()
    if "offset 6" not in out:
        fail(f"kcat -Q for base+7000 ms: {out!r}, expected offset 6")
    print("list offsets by time: ok")


def alter_retention_online(bootstrap):
    topic = "compat-retention"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(100):
        producer.produce(topic, value=b"old", timestamp=int(time.time() * 1000) - 3_600_000)
    producer.flush(30)
    entry = ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", topic, incremental_configs=[entry])
    admin.incremental_alter_configs([resource])[resource].result(30)
    described = admin.describe_configs([ConfigResource("topic", topic)])
    value = list(described.values())[0].result(30)["retention.ms"].value
    if value != "1000":
        fail(f"retention.ms after alter is {value}")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    deadline = time.time() + 30
    while time.time() < deadline:
        start = consumer.beginning_offsets([tp])[tp]
        if start == 100:
            print("alter retention online: old records deleted without restart")
            consumer.close()
            return
        time.sleep(0.5)
    fail(f"retention did not apply: log start offset {start}, expected 100")


def delete_topic(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.delete_topics([topic], timeout_ms=30_000)
    admin.close()
    listing = subprocess.run(["kcat", "-L", "-b", bootstrap], check=True, capture_output=True, timeout=60).stdout.decode()
    if f'topic "{topic}"' in listing:
        fail(f"{topic} still listed after delete:\n{listing}")
    print(f"delete topic {topic}: ok")


def main():
    bootstrap = sys.argv[1]
    topic = "compat"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    listing = subprocess.run(["kcat", "-L", "-b", bootstrap, "-t", topic], check=True, capture_output=True,
                             timeout=60).stdout.decode()
    if "3 partitions" not in listing:
        fail(f"kcat metadata for {topic}: {listing}")
    records = expected_records()
    produce(bootstrap, topic, records)
    check(consume_kafka_python(bootstrap, topic, len(records)), records, "kafka-python")
    consume_kcat(bootstrap, topic, records)
    list_offsets_by_time(bootstrap)
    alter_retention_online(bootstrap)
    delete_topic(bootstrap, topic)
    print("compatibility scenario: all checks passed")


if __name__ == "__main__":
    main()
