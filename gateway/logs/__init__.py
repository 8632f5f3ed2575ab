"""Logs: reading a container's or a job's lines, in one numbering, however they are asked for.

- ``text``: bytes -> lines -> a page of at most so many bytes of JSON (pure);
- ``stamps``: timestamped lines: parsing, a day's lines, resuming at a stored point (pure);
- ``instance``: which pod a call reads, and whether the job exists at all;
- ``reader``: one instance's lines from where a call starts: the archive, then the pod's newest (the one reader);
- ``pages``: the paged calls slice it; ``gateway/streams/follow.py`` frames it as events for ``follow=true``.

The archive (``gateway/store``) is where lines outlive their pods; the collectors (``gateway/collector``) fill it.
"""
from .pages import instance_page, job_page
from .text import Page

__all__ = ["Page", "instance_page", "job_page"]
