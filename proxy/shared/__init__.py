"""State that the gateways of a deployment (or the workers of one host) share: backend cooldowns."""
