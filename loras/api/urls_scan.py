urlpatterns = []  # the scanner's routes (POST /api/loras/scan/)
