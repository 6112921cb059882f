"""`python -m lsst_alert_pipeline.cli`: the same as the `lsst-alerts` command (cron, tests)."""

from . import main

if __name__ == "__main__":
    main()
