"""`driftgate top`: a terminal view of a running gateway, built only on its HTTP endpoints.

`client` talks HTTP (no Textual in it); `state` holds what was read; the `*_view` modules turn
that state into Rich renderables; `app` is the Textual application. Textual is imported only
here, so the gateway's start-up never loads it.
"""
