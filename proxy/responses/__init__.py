"""What the gateway keeps for Responses API clients whose backend does not: stored conversations."""
