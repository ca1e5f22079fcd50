"""Admin views for webhook deliveries and their attempts."""
