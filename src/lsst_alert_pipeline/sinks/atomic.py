"""How every sink writes a file so that a crash never leaves half of it under its real name."""

# A file is written under this prefix, then renamed; recovery deletes what still carries it.
TEMP_PREFIX = ".tmp-"
