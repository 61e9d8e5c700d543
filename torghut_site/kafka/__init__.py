"""Kafka, in four modules that import downward only:

- `clients`: every producer, consumer and admin client is built here (`kafka_producer`, ...)
  so librdkafka's own log lines go through Python logging, rate-limited;
- `messages`: consumed records (`RawMessage`), dead letters and the handler protocols;
  `torghut_site.services` imports it to record dead letters;
- `config`: the idempotent producer's configuration and a consumer's settings read from its
  `<prefix>_*` Django settings (`consumer_settings_from`);
- `topics`: every topic the configuration names (`manage.py kafka_topics`) and the existence
  check every consumer and producer makes before it uses one (topics are never auto-created);
- `consumer`: the shared `BatchConsumer` loop and `consumer_build`, the one factory of the order
  feed's, the TA signals' and the whitepaper intake's consumers; it imports the services.

This package re-exports nothing, so importing a record type never loads the consumer.
"""
