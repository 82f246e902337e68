"""The headless command line (Typer). Never imports textual."""
