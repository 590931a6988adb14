"""Creating the topics the pipeline needs: each mapped table's (`cdc.topics.names`; `<prefix>.<system>.<table>` by
default) and the dead-letter topic. Idempotent: a topic that already exists is left as it is (a Debezium
connector's topics keep the partitions it created them with)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from cdc import log
from cdc.errors import CdcError, ServiceUnavailable
from cdc.mapping.model import MappingFile
from cdc.settings import Settings
from cdc.topics.names import table_topics
from cdc.topics.producer import broker_error

TOPIC_ALREADY_EXISTS = 36


class TopicError(CdcError):
    """The broker refused to create a topic (a policy, a bad partition count...)."""

    exit_code = 3


def mapped_topics(settings: Settings, mapping: MappingFile) -> list[str]:
    """Every change topic of the mapping file, then the dead-letter topic."""
    topics = [found.topic for found in table_topics(settings, mapping)]
    return list(dict.fromkeys(topics + [settings.dead_letter_topic]))


async def ensure_topics(settings: Settings, topics: Iterable[str] | None = None, *,
                        mapping: MappingFile | None = None, timeout: float = 30.0) -> list[str]:
    """Create the missing ones of `topics` (default: all mapped topics and the dead-letter topic) with
    `settings.topic_partitions` partitions. Returns the names created."""
    if topics is None:
        if mapping is None:
            from cdc.mapping.load import load_mapping_file

            mapping = load_mapping_file(settings.mapping_file)
        topics = mapped_topics(settings, mapping)
    wanted = list(dict.fromkeys(topics))
    admin = await admin_client(settings, timeout)
    try:
        brokers = (await admin.describe_cluster())["brokers"]
        replication = max(1, min(3, len(brokers)))
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(name=t, num_partitions=settings.topic_partitions, replication_factor=replication)
             for t in missing], timeout_ms=int(timeout * 1000))
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap}: cannot create topics: "
                                 f"{broker_error(exc)}") from None
    finally:
        await admin.close()
    created, failures = [], []
    for error in response.topic_errors:
        topic, code = error[0], error[1]
        message = error[2] if len(error) > 2 else None
        if code == 0:
            created.append(topic)
        elif code != TOPIC_ALREADY_EXISTS:
            failures.append(f"{topic}: {message or f'error code {code}'}")
    if failures:
        raise TopicError(f"Kafka at {settings.kafka_bootstrap} refused to create topics: {'; '.join(failures)}")
    if created:
        log.get(component="topics").info("topics created", topics=created,
                                         partitions=settings.topic_partitions, replication=replication)
    return created


async def admin_client(settings: Settings, timeout: float = 30.0) -> AIOKafkaAdminClient:
    """A started admin client; an unreachable broker is retried (logged) until `timeout`, then
    ServiceUnavailable. The caller closes it."""
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap,
                                    request_timeout_ms=int(min(timeout, 30) * 1000))
        try:
            await admin.start()
            return admin
        except KafkaError as exc:
            await admin.close()
            if time.monotonic() + delay > deadline:
                raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap} is unreachable: "
                                         f"{broker_error(exc)}") from None
            log.get(component="topics").warning("kafka unreachable, retrying", error=broker_error(exc),
                                                retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


_admin = admin_client  # older name, still imported by some tests
