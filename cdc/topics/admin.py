"""Creating the topics the pipeline needs: each mapped table's (`cdc.topics.names`; `<prefix>.<system>.<table>` by
default) and the dead-letter topic. Idempotent: a topic that already exists is left as it is (a Debezium
connector's topics keep the partitions it created them with)."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from cdc.errors import CdcError
from cdc.mapping.model import MappingFile
from cdc.settings import Settings
from cdc.topics.broker import DEADLINE, request, retriable
from cdc.topics.names import table_topics

log = structlog.get_logger(component="topics")

TOPIC_ALREADY_EXISTS = 36


class TopicError(CdcError):
    """The broker refused to create a topic (a policy, a bad partition count...)."""

    exit_code = 3


def mapped_topics(settings: Settings, mapping: MappingFile) -> list[str]:
    """Every change topic of the mapping file, then the dead-letter topic."""
    topics = [found.topic for found in table_topics(settings, mapping)]
    return list(dict.fromkeys(topics + [settings.dead_letter_topic]))


async def ensure_topics(settings: Settings, topics: Iterable[str] | None = None, *,
                        mapping: MappingFile | None = None, timeout: float = DEADLINE) -> list[str]:
    """Create the missing ones of `topics` (default: all mapped topics and the dead-letter topic) with
    `settings.topic_partitions` partitions. Returns the names created. Retriable broker errors (a controller
    still electing, a request timing out) are retried until `timeout`."""
    if topics is None:
        if mapping is None:
            from cdc.mapping.load import load_mapping_file

            mapping = load_mapping_file(settings.mapping_file)
        topics = mapped_topics(settings, mapping)
    wanted = list(dict.fromkeys(topics))
    admin = await admin_client(settings, timeout)
    created: list[str] = []
    replication = 1

    async def create_missing() -> None:
        nonlocal replication
        brokers = (await admin.describe_cluster())["brokers"]
        replication = max(1, min(3, len(brokers)))
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [NewTopic(name=t, num_partitions=settings.topic_partitions, replication_factor=replication)
             for t in missing], timeout_ms=int(min(timeout, 30) * 1000))
        failures, again = [], None
        for error in response.topic_errors:
            topic, code = error[0], error[1]
            message = error[2] if len(error) > 2 else None
            if code == 0:
                created.append(topic)
            elif code != TOPIC_ALREADY_EXISTS:
                problem = for_code(code)(f"{topic}: {message or f'error code {code}'}")
                if retriable(problem):
                    again = problem
                else:
                    failures.append(f"{topic}: {message or f'error code {code}'}")
        if failures:
            raise TopicError(f"Kafka at {settings.kafka_bootstrap} refused to create topics: {'; '.join(failures)}")
        if again is not None:
            raise again  # the topics it did create are there on the next attempt

    try:
        await request(settings, "cannot create topics", create_missing, timeout=timeout)
    finally:
        await admin.close()
    if created:
        log.info("topics created", topics=created,
                                         partitions=settings.topic_partitions, replication=replication)
    return created


async def admin_client(settings: Settings, timeout: float = DEADLINE) -> AIOKafkaAdminClient:
    """A started admin client; an unreachable broker is retried (logged) until `timeout`, then
    ServiceUnavailable. The caller closes it."""

    async def start() -> AIOKafkaAdminClient:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap,
                                    request_timeout_ms=int(min(timeout, 30) * 1000))
        try:
            await admin.start()
        except BaseException:
            await admin.close()
            raise
        return admin

    return await request(settings, "cannot connect", start, timeout=timeout)


_admin = admin_client  # older name, still imported by some tests
