"""The mapping model, its YAML loader, filter language, transforms, dependency order and catalog checks."""
