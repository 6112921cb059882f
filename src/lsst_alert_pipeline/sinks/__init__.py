"""Where alerts go: the daily CSV files, the FITS cutouts and the dead-letter folder."""
