#!/usr/bin/env python3
"""The specification's manual run: `python3 lsst_alert_consumer.py` consumes the filtered stream.

Edit kafka_config, topic and output_dir below (or use lsst_alerts.toml / LSST_ALERTS_* variables,
which take precedence). Any `lsst-alerts consume` flag works here too, e.g. --max-messages 100.
"""

import sys

kafka_config = {
    "bootstrap.servers": "your-kafka-broker:9092",
    "group.id": "lsst-alert-consumer",
    "auto.offset.reset": "earliest",
}
topic = "lsst-extendedness-filtered"  # Your filtered stream topic
output_dir = "lsst_alerts"

if __name__ == "__main__":
    from lsst_alert_pipeline.cli import main

    main(["consume", *sys.argv[1:]],
         obj={"base_settings": {"kafka": kafka_config, "topic": topic, "output_dir": output_dir}})
