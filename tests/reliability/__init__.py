"""Reliability suite (issue 7): crashes, broker outages, hostile bytes, full disks, overlap."""
