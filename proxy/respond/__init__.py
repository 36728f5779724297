"""The respond step: the forwarded answer to the client (whole or streamed, tapped or translated),
its headers, errors in the client's dialect, and the outcome handed to the record.

Kept import-free: the record keeper imports `respond.outcome`, and the responder imports the keeper.
"""
