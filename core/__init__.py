"""Small shared pieces of the domain layer: errors, request context. No Django apps here."""
