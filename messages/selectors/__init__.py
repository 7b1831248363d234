"""The only readers of conversation data for views and APIs. Every function takes ``office=``."""
