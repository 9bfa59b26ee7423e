"""How Centralita runs: settings, the local stack launcher, the command line, topic admin."""
