"""Notifications: message events turned into durable outbox items and delivered by e-mail and webhooks."""
