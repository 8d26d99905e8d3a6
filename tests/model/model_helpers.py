"""Small model configurations shared by the model tests (width 0.125, embed 16: fast on one core)."""
from tagvis_lib.config import ModelConfig


def small_model_config(**changes) -> ModelConfig:
    """A ModelConfig small enough for a forward + backward in well under a second."""
    fields = dict(num_classes=3, encoder_width=0.125, embed_dim=16, attention_heads=2)
    fields.update(changes)
    return ModelConfig(**fields)
