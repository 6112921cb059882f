"""Test instrumentation, not production code: the Tansu test broker.

broker.py starts a real Kafka-protocol broker for tests, benchmarks and the demo. Only cli, demo,
filter/relay, the tests and the benchmarks may import it; it may import anything below cli.
Crash tests inject their fault hook from outside (pipeline/hooks.py, tests/fault_consumer.py).
"""
