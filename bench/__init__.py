"""RetentionOps benchmark: speed, memory and scale of the daily pack (``python -m bench``)."""
