"""Phase 1 (interactive) labeling: the labeler steers a live generator one step at a time.

Design note: docs/phase1.md. Writes in ``services``, reads in ``selectors``, the candidate
sampler (with its per-process backend cache) in ``sampling``, endpoints in ``apis``.
"""
