"""Domain package shared by the web front and the Celery worker (knows neither)."""
