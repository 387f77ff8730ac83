"""Base-model registry: registration checks, found/missing, the admin-only API, name resolution."""

from __future__ import annotations

import shutil

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from labeling.models import Labeler
from training import services
from training.models import BaseModel, PRMVersion

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory) -> str:
    """A tiny BERT encoder (bidirectional attention) saved as a normal model directory."""
    from transformers import BertConfig, BertModel

    path = tmp_path_factory.mktemp("bert")
    config = BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )  # fmt: skip
    BertModel(config).save_pretrained(path)
    return str(path)


def _client(role: str | None = "admin", superuser: bool = False) -> APIClient:
    user = get_user_model().objects.create_user(
        username=f"u-{role}-{superuser}", password="x-unused-password", is_superuser=superuser
    )
    if role:
        Labeler.objects.create(user=user, role=role)
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_register_counts_parameters_from_the_config_and_is_idempotent(tiny_backbone):
    from transformers import AutoModelForCausalLM

    model = services.base_model_register(name="tiny", path=tiny_backbone, notes="test")
    loaded = AutoModelForCausalLM.from_pretrained(tiny_backbone, local_files_only=True)
    assert model.parameter_count == sum(p.numel() for p in loaded.parameters())
    assert model.kind == "causal_lm" and model.found and model.notes == "test"
    again = services.base_model_register(name="tiny", path=tiny_backbone)
    assert again.id == model.id and again.notes == "test"
    assert BaseModel.objects.count() == 1


def test_register_refuses_an_encoder_a_missing_directory_and_bad_fields(bert_dir, tmp_path):
    with pytest.raises(ValidationError) as refused:
        services.base_model_register(name="bert", path=bert_dir)
    assert "not a causal (decoder-only) model" in refused.value.message_dict["path"][0]
    with pytest.raises(ValidationError) as missing:
        services.base_model_register(name="", path=str(tmp_path / "nope"), kind="seq2seq")
    assert set(missing.value.message_dict) == {"name", "path", "kind"}
    assert "not a local directory" in missing.value.message_dict["path"][0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="no config.json"):
        services.base_model_register(name="empty", path=str(tmp_path / "empty"))
    assert BaseModel.objects.count() == 0


def test_api_is_admin_only_and_reports_found_and_missing(tiny_backbone, tmp_path):
    present = services.base_model_register(name="tiny", path=tiny_backbone)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_backbone, copy)
    gone = services.base_model_register(name="gone", path=str(copy))
    shutil.rmtree(copy)

    assert APIClient().get("/api/training/base-models/").status_code in (401, 403)
    assert _client("labeler").get("/api/training/base-models/").status_code == 403
    assert _client(None, superuser=True).get("/api/training/base-models/").status_code == 200
    response = _client("admin").get("/api/training/base-models/")
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()}
    assert rows["tiny"] == {
        "id": present.id,
        "name": "tiny",
        "path": present.path,
        "kind": "causal_lm",
        "parameter_count": present.parameter_count,
        "found": True,
        "notes": "",
        "created_at": rows["tiny"]["created_at"],
    }
    assert rows["gone"]["found"] is False and rows["gone"]["id"] == gone.id


def test_training_accepts_a_registered_name_or_a_path_and_refuses_an_encoder(
    tiny_backbone, bert_dir
):
    services.base_model_register(name="tiny", path=tiny_backbone)
    by_name = services.prm_version_create(name="v1", base_model="tiny")
    by_path = services.prm_version_create(name="v2", base_model=tiny_backbone)
    assert by_name.base_model == by_path.base_model == BaseModel.objects.get().path
    with pytest.raises(ValidationError) as refused:
        services.prm_version_create(name="v3", base_model=bert_dir)
    assert "not a causal (decoder-only) model" in refused.value.message_dict["base_model"][0]
    response = _client("admin").post(
        "/api/training/versions/", {"name": "v4", "base_model": bert_dir}, format="json"
    )
    assert response.status_code == 400
    assert "not a causal" in response.json()["base_model"][0]
    assert not PRMVersion.objects.filter(name__in=["v3", "v4"]).exists()


def test_admin_lists_base_models_with_found_and_refuses_an_encoder(client, tiny_backbone, bert_dir):
    user = get_user_model().objects.create_superuser("root", "r@example.com", "x-unused-password")
    client.force_login(user)
    services.base_model_register(name="tiny", path=tiny_backbone)
    page = client.get("/admin/training/basemodel/").content.decode()
    assert "tiny" in page and "icon-yes" in page  # the found column's boolean icon
    response = client.post(
        "/admin/training/basemodel/add/", {"name": "bert", "path": bert_dir, "kind": "causal_lm"}
    )
    assert response.status_code == 200  # the form again, with the error
    assert "not a causal (decoder-only) model" in response.content.decode()
    assert not BaseModel.objects.filter(name="bert").exists()
    response = client.post(
        "/admin/training/basemodel/add/",
        {"name": "tiny2", "path": tiny_backbone, "kind": "causal_lm", "notes": ""},
    )
    assert response.status_code == 302
    assert BaseModel.objects.get(name="tiny2").parameter_count > 0


def test_training_options_reach_the_trainer_and_defaults_fill_the_rest(
    tmp_path, settings, synthetic_labelings
):
    """A version trains with STEPWISE_TRAIN_DEFAULTS under its own hyperparameters."""
    from training.prm.synthetic import build_tiny_backbone

    backbone = build_tiny_backbone(
        str(tmp_path / "two-layers"), hidden_size=32, num_layers=2, num_heads=2, max_positions=512
    )
    services.base_model_register(name="tiny2", path=backbone)
    settings.STEPWISE_ARTIFACT_DIR = tmp_path / "artifacts"
    settings.STEPWISE_TRAIN_DEFAULTS = {"train_layers": 1, "epochs": 1.0, "max_length": 256}
    frozen = services.prm_version_create(name="top1", base_model="tiny2")
    full = services.prm_version_create(
        name="full", base_model="tiny2", hyperparameters={"train_layers": 0}
    )
    for version in (frozen, full):
        run = services.training_run_start(prm_version_id=version.id, enqueue=False)
        services.train_prm_version(run_id=run.id)
        run.refresh_from_db()
        assert run.state == "succeeded", run.error
        version.refresh_from_db()
    frozen.refresh_from_db()
    assert frozen.metrics["train_frozen_layers"] == 1 and frozen.hyperparameters == {}
    assert "computing the 1 frozen layers once" in frozen.runs.get().log
    assert full.metrics["train_frozen_layers"] == 0
    assert full.metrics["train_trainable_parameters"] > frozen.metrics["train_trainable_parameters"]
    with pytest.raises(ValidationError, match="Unknown keys: lora"):
        services.prm_version_create(name="x", base_model="tiny2", hyperparameters={"lora": 8})


def test_api_launch_takes_a_base_model_name_and_layer_options(tiny_backbone):
    services.base_model_register(name="tiny", path=tiny_backbone)
    admin = _client("admin")
    response = admin.post(
        "/api/training/versions/",
        {"name": "v1", "base_model": "tiny", "train_layers": 1, "backbone_layers": 0},
        format="json",
    )
    assert response.status_code == 201, response.json()
    version = PRMVersion.objects.get(name="v1")
    assert version.base_model == BaseModel.objects.get(name="tiny").path
    assert version.hyperparameters == {"train_layers": 1, "backbone_layers": 0}
    response = admin.post(
        "/api/training/versions/",
        {"name": "v2", "base_model": "tiny", "train_layers": -1},
        format="json",
    )
    assert response.status_code == 400 and set(response.json()) == {"train_layers"}
