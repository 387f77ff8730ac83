"""Registered backbones: local model directories that reward models start from."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from training.models import BaseModel


def backbone_problem(path: str) -> str | None:
    """Why `path` cannot be a reward model's backbone, or None when it can (see backbones.py)."""
    from training.prm.backbones import BackboneError, check_backbone

    try:
        check_backbone(path)
    except BackboneError as exc:
        return str(exc)
    return None


def base_model_register(
    *, name: str, path: str, kind: str = BaseModel.Kind.CAUSAL_LM, notes: str | None = None
) -> BaseModel:
    """Register a local backbone under `name` after checking it (causal LM with weights).

    The parameter count is read from the config (built on the meta device, no weights loaded).
    Registering a name again updates its path and count: `load_demo` and the set-up call this on
    every run.
    """
    from training.prm.backbones import BackboneError, check_backbone

    errors: dict[str, list[str]] = {}
    if not name or len(name) > 128:
        errors["name"] = ["Give a name of 1 to 128 characters."]
    if kind not in BaseModel.Kind.values:
        errors["kind"] = [f"Kind must be one of {', '.join(BaseModel.Kind.values)}."]
    info = None
    try:
        info = check_backbone(path)
    except BackboneError as exc:
        errors["path"] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    fields: dict[str, Any] = {
        "path": info.path,
        "kind": kind,
        "parameter_count": info.parameter_count,
    }
    if notes is not None:
        fields["notes"] = notes
    with transaction.atomic():
        base_model, _ = BaseModel.objects.update_or_create(name=name, defaults=fields)
    return base_model


def base_model_path(name_or_path: str) -> str:
    """A registered base model's directory, or the argument itself when no model has that name."""
    registered = BaseModel.objects.filter(name=name_or_path).values_list("path", flat=True).first()
    return registered or name_or_path
