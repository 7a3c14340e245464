"""The venue layer: the only part of arbot that talks to exchanges (and imports ccxt)."""
