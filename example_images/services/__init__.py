"""Services of the example_images app, one module per concern."""
