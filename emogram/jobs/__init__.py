"""The jobs layer: many topics from a file to a file, resumable, on one machine or on Ray.

``batching`` (``emogram.batch``), ``batch_io`` (readers, keys and writers), ``batch_workers``
(processes on this machine) and ``ray_batch`` (Ray Data). It stands on the public API
(docs/architecture.md).
"""
