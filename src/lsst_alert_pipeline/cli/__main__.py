"""`python -m lsst_alert_pipeline.cli ...` runs `lsst-alerts ...` (the tests start consumers so)."""

from . import main

main()
