"""Server-Sent Event streams: followed logs and watched jobs (the contract: docs/api.md, "Follow and watch").

``sse`` frames events (pure), ``token`` signs and checks stream tokens (pure), ``slots`` caps each user's
concurrent streams across every worker of the host, ``runner`` turns a producer into a response body with
heartbeats, timeouts and the shutdown event, and ``follow`` / ``watch`` are the producers.
"""
