"""Causal video autoencoder: 4x temporal, 8x spatial, chunk-wise decoding with a carried cache."""
from .model import VAEConfig, CausalVideoVAE, CausalConv3d

__all__ = ["VAEConfig", "CausalVideoVAE", "CausalConv3d"]
