"""Fixtures of the model tests: small configurations and a fixed seed."""
import pytest
import torch
from model_helpers import small_model_config

from tagvis_lib.config import ExperimentConfig, ModelConfig


@pytest.fixture
def small_cfg() -> ModelConfig:
    return small_model_config()


@pytest.fixture
def small_experiment() -> ExperimentConfig:
    return ExperimentConfig(profile="smoke", model=small_model_config())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
