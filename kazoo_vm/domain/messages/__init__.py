"""Voicemail messages in monthly databases: reading, listing, counting, creating, changing, moving, audio."""
