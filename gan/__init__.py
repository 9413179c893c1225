"""A classic GAN (Goodfellow et al. 2014) in the DCGAN family, trained on Fashion-MNIST."""

from .models import (Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, generate, sample_latents,
                     seed_latents)
from .pretrained import GAN

__all__ = ["GAN", "Generator", "Discriminator", "GeneratorConfig", "DiscriminatorConfig", "generate",
           "sample_latents", "seed_latents"]
__version__ = "0.1.0"
