"""Model parts, registered in Detectron2's registries on import."""
