"""DRS Desktop GUI (PySide6): the task window and the Create Disaster Recovery Task wizard."""
