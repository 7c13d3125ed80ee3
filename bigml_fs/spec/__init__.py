"""Pydantic models of project.yaml, features/ and models/, and their loading with file:line."""
