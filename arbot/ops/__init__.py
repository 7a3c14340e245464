"""Operating the daemon: its status snapshot, Prometheus metrics and the local HTTP endpoint."""
