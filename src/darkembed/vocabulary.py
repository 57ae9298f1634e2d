"""Names every stage shares, in a module that imports nothing, so that a stage (or a model module on a machine
without the data stack) can use them without importing another stage."""

#: The label of a host no source labels, and the open-set answer of a classifier that abstains.
UNKNOWN = "unknown"
