"""End-to-end tests: the store between real Prometheus and node-exporter processes."""
