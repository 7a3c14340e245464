"""Trade-only keys: the encrypted keystore, permission probes, and the no-withdraw guard."""
