"""Example images of LoRAs (issue #4 fills this app)."""
