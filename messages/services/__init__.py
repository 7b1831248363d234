"""The only writers of conversation and message data. Split by sub-domain; see each module."""
