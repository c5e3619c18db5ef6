"""The served model's versions: their contract, repository and registry."""
