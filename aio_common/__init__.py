"""Pieces both services share: the Immich ML protocol, HTTP errors and limits, logging."""
