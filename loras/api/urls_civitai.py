urlpatterns = []  # Civitai refresh and downloads routes
