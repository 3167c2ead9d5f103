"""Loss landscapes of networks: directions, surfaces (torch engines and the fused C kernel), curvature (Lanczos), surfaces of a live race."""
