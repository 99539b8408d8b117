"""The model table. A factory is `build(cfg: ModelConfig, input_shape, n_outputs) -> nn.Module`;
its registered `options` are the ModelConfig fields it reads, with their defaults."""

from ..registry import Registry

models = Registry("model")
