"""Small shared pieces of the domain layer: errors, request context. No models here (core/apps.py registers the deploy checks and the admin's templates)."""
