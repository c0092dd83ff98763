"""ReHyAt training code: world, VAE, text encoder, DiT teacher/student, distillation, eval, export."""
