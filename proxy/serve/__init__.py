"""The client side of the server: bounded connections, protocol errors, the shutdown drain."""
