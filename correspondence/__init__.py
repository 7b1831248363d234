"""Correspondence: the legislative correspondent's work. Form letters (a per-office library with versions and
approval) and bulk replies (one approved letter to everyone who wrote, paced to the sending number's limit,
exactly once, never after STOP and never in the recipient's quiet hours)."""
