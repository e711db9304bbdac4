"""Pages of the LoRA library (/loras/, /loras/<id>/)."""

urlpatterns = []
