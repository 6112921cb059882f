"""Test instrumentation, not production code: the Tansu test broker and crash fault points.

broker.py starts a real Kafka-protocol broker for tests and benchmarks; faults.py kills the
process at a chosen step of `Pipeline.deliver` when LSST_ALERT_PIPELINE_FAULT is set.
Only cli, demo, filter/relay, the tests and the benchmarks may import it (pipeline/run.py calls
fault_point, an allowance listed in tests/test_layout.py); it may import anything below cli.
"""
