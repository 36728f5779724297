"""The spend guard: budgets per window, reservations before forwarding, halt and resume."""
